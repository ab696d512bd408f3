// The sniffer on hand-made images: type from magic bytes only, dimensions only from bytes that arrived.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { detectImageType, readDimensions } from "../image-sniffer.js";
import { gif, jpeg, png, pngHeader, webp, webp1x1 } from "./test-images.js";

describe("image sniffer", () => {
  const images = [
    { name: "JPEG", bytes: jpeg(640, 480).bytes, type: "image/jpeg", width: 640, height: 480 },
    { name: "PNG", bytes: png(7, 5), type: "image/png", width: 7, height: 5 },
    { name: "WebP (VP8X)", bytes: webp(1920, 1080), type: "image/webp", width: 1920, height: 1080 },
    { name: "WebP (VP8L)", bytes: webp1x1, type: "image/webp", width: 1, height: 1 },
    { name: "GIF", bytes: gif(3, 2), type: "image/gif", width: 3, height: 2 },
  ] as const;

  for (const image of images) {
    it(`detects a ${image.name} and reads its dimensions`, async () => {
      const type = await detectImageType(image.bytes);
      expect(type).to.equal(image.type);
      expect(readDimensions(image.bytes, type!)).to.deep.equal({ width: image.width, height: image.height });
    });
  }

  it("finds no image type in text, a PDF or random bytes", async () => {
    expect(await detectImageType(Buffer.from("just some text, not a photo\n"))).to.equal(undefined);
    expect(await detectImageType(Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "latin1"))).to.equal(undefined);
    expect(await detectImageType(randomBytes(8192).fill(0, 0, 1))).to.equal(undefined);
  });

  it("reads no dimensions from a header cut short, even where the buffer behind it holds bytes", () => {
    // A subarray of a larger buffer: image-size's DataView would read past its end into these bytes.
    const whole = png(300, 200);
    for (const length of [8, 16, 20, 23]) {
      expect(readDimensions(whole.subarray(0, length), "image/png"), `${length} bytes`).to.equal(undefined);
    }
    expect(readDimensions(whole.subarray(0, 24), "image/png")).to.deep.equal({ width: 300, height: 200 });
  });

  it("reads a JPEG's dimensions only once its SOF segment has fully arrived", () => {
    const { bytes } = jpeg(1234, 567);
    const sofEnd = bytes.indexOf(Buffer.from([0xff, 0xc0])) + 2 + 2 + 5;
    for (let length = sofEnd - 6; length < sofEnd; length++) {
      expect(readDimensions(bytes.subarray(0, length), "image/jpeg"), `${length} bytes`).to.equal(undefined);
    }
    expect(readDimensions(bytes.subarray(0, sofEnd), "image/jpeg")).to.deep.equal({ width: 1234, height: 567 });
  });

  it("reads no dimensions when the header belongs to another format than the one detected", () => {
    expect(readDimensions(pngHeader(10, 10), "image/gif")).to.equal(undefined);
  });
});
