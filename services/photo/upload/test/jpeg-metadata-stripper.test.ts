// The streaming JPEG segment filter: metadata out, every other byte identical, whatever the chunking.
import { expect } from "chai";
import { imageSize } from "image-size";
import { reasonOf } from "../../../../internal/errors/errors.js";
import { rejectionOf } from "../../../../test/support/rejection.js";
import { stripJpegMetadata } from "../jpeg-metadata-stripper.js";
import { chunked, jpeg } from "./test-images.js";

async function strip(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const chunk of stripJpegMetadata(source)) out.push(chunk);
  return Buffer.concat(out);
}

describe("JPEG metadata stripper", () => {
  it("drops the Exif, XMP, IPTC and comment segments and keeps every other byte", async () => {
    const image = jpeg(640, 480);
    const stored = await strip(chunked(image.bytes, 4096));
    expect(stored.equals(image.stripped)).to.equal(true);
    expect(stored.includes("Exif")).to.equal(false);
    expect(stored.includes("GPS")).to.equal(false);
    expect(stored.includes("Photoshop")).to.equal(false);
    expect(stored.subarray(0, 2)).to.deep.equal(Buffer.from([0xff, 0xd8]));
    expect(imageSize(stored)).to.include({ width: 640, height: 480 });
  });

  it("gives the same bytes whatever the chunk boundaries", async () => {
    const image = jpeg(33, 44, 3000);
    for (const size of [1, 2, 3, 5, 7, 64, 1000]) {
      expect((await strip(chunked(image.bytes, size))).equals(image.stripped), `${size}-byte chunks`).to.equal(true);
    }
  });

  it("passes everything from the first scan on untouched, even bytes that look like metadata markers", async () => {
    const image = jpeg(8, 8);
    const trailer = Buffer.from([0xff, 0xe1, 0x00, 0x10, ...Buffer.from("Exif\0\0GPS data"), 0xff, 0xd9]);
    const stored = await strip(chunked(Buffer.concat([image.bytes, trailer]), 3));
    expect(stored.subarray(stored.length - image.scan.length - trailer.length)).to.deep.equal(Buffer.concat([image.scan, trailer]));
  });

  it("passes a chunk of scan data through as it is, without copying it", async () => {
    const image = jpeg(8, 8);
    const scanData = new Uint8Array(1024 * 1024).fill(0x55);
    async function* source() {
      yield image.bytes;
      yield scanData;
    }
    const outputs: Uint8Array[] = [];
    for await (const chunk of stripJpegMetadata(source())) outputs.push(chunk);
    expect(outputs.at(-1)).to.equal(scanData);
  });

  it("drops fill bytes before a marker and keeps the segment they precede", async () => {
    const image = jpeg(8, 8);
    const sof = image.bytes.indexOf(Buffer.from([0xff, 0xc0]));
    const padded = Buffer.concat([image.bytes.subarray(0, sof), Buffer.from([0xff, 0xff, 0xff]), image.bytes.subarray(sof)]);
    expect((await strip(chunked(padded, 2))).equals(image.stripped)).to.equal(true);
  });

  it("refuses a JPEG that ends before its first scan", async () => {
    const { bytes } = jpeg(8, 8);
    const error = await rejectionOf(strip(chunked(bytes.subarray(0, bytes.indexOf(Buffer.from([0xff, 0xda]))), 100)));
    expect(reasonOf(error)).to.equal("UNSUPPORTED_MEDIA_TYPE");
  });

  it("refuses a segment whose length is shorter than its own length field", async () => {
    const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0xff, 0xda, 0x00, 0x02]);
    expect(reasonOf(await rejectionOf(strip(chunked(bytes, 1))))).to.equal("UNSUPPORTED_MEDIA_TYPE");
  });

  it("refuses bytes that do not start with SOI", async () => {
    expect(reasonOf(await rejectionOf(strip(chunked(Buffer.from("not a jpeg"), 4))))).to.equal("UNSUPPORTED_MEDIA_TYPE");
  });
});
