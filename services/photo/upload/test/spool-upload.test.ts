// The upload pipeline end to end over real temp files: what is refused, when reading stops, what is
// stored, and that nothing is left behind on any failure.
import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imageSize } from "image-size";
import { Code, ConnectError, reasonOf } from "../../../../internal/errors/errors.js";
import { rejectionOf } from "../../../../test/support/rejection.js";
import { spoolUpload, spoolWriteBytes, spoolWriteChunks, type SpoolFile, type UploadLimits } from "../spool-upload.js";
import { chunked, gif, jpeg, largePng, observedSource, pixelBombPng, png, pngHeader, webp, webp1x1 } from "./test-images.js";

const MiB = 1024 * 1024;
const limits: UploadLimits = { maxBytes: 10 * MiB, maxPixels: 40_000_000 };

describe("spoolUpload", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "usermesh-upload-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const spool = (chunks: AsyncIterable<Uint8Array>, overrides: Partial<UploadLimits> = {}) =>
    spoolUpload(chunks, { dir, limits: { ...limits, ...overrides } });

  async function refusal(promise: Promise<unknown>, reason: string): Promise<ConnectError> {
    const error = await rejectionOf(promise);
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(reasonOf(error)).to.equal(reason);
    expect(await readdir(dir), "files left in the spool directory").to.deep.equal([]);
    return error;
  }

  describe("type and dimensions", () => {
    const images = [
      { name: "JPEG", bytes: jpeg(640, 480).bytes, type: "image/jpeg", width: 640, height: 480 },
      { name: "PNG", bytes: png(7, 5), type: "image/png", width: 7, height: 5 },
      { name: "WebP", bytes: webp(1920, 1080), type: "image/webp", width: 1920, height: 1080 },
      { name: "lossless WebP", bytes: webp1x1, type: "image/webp", width: 1, height: 1 },
      { name: "GIF", bytes: gif(3, 2), type: "image/gif", width: 3, height: 2 },
      { name: "PNG larger than the type sample", bytes: png(120, 90), type: "image/png", width: 120, height: 90 },
    ] as const;

    for (const image of images) {
      it(`stores a ${image.name} with its type and dimensions whatever the chunk boundaries`, async () => {
        for (const size of [1, 3, 4096, image.bytes.length]) {
          const spooled = await spool(chunked(image.bytes, size));
          expect(spooled, `${size}-byte chunks`).to.include({
            contentType: image.type,
            width: image.width,
            height: image.height,
          });
          await spooled.discard();
        }
      });
    }

    it("stores PNG, WebP and GIF bytes unchanged", async () => {
      for (const bytes of [png(7, 5), webp(10, 10), gif(3, 2)]) {
        const spooled = await spool(chunked(bytes, 5));
        expect((await readFile(spooled.path)).equals(bytes)).to.equal(true);
        await spooled.discard();
      }
    });

    it("refuses a text file, a PDF and random bytes as UNSUPPORTED_MEDIA_TYPE", async () => {
      await refusal(spool(chunked(Buffer.from("hello, this is not a photo\n"), 4)), "UNSUPPORTED_MEDIA_TYPE");
      const pdf = Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "latin1");
      await refusal(spool(chunked(pdf, 16)), "UNSUPPORTED_MEDIA_TYPE");
      await refusal(spool(chunked(randomBytes(100_000), 1000)), "UNSUPPORTED_MEDIA_TYPE");
    });

    it("stops reading a long upload as soon as its magic bytes are refused", async () => {
      const head = Buffer.from("%PDF-1.7\n");
      const source = observedSource(head, 50 * MiB);
      await refusal(spool(source), "UNSUPPORTED_MEDIA_TYPE");
      expect(source.stopped).to.equal(true);
      expect(source.yieldedBytes).to.be.at.most(head.length + 64 * 1024);
    });

    it("refuses an upload of zero bytes as EMPTY_UPLOAD", async () => {
      await refusal(spool(chunked(Buffer.alloc(0), 1)), "EMPTY_UPLOAD");
      async function* emptyChunks() {
        yield new Uint8Array(0);
        yield new Uint8Array(0);
      }
      await refusal(spool(emptyChunks()), "EMPTY_UPLOAD");
    });

    it("measures a JPEG whose SOF comes after 100 KiB of APP1 metadata", async () => {
      const image = jpeg(800, 600, 100 * 1024);
      for (const size of [1, 16 * 1024]) {
        const spooled = await spool(chunked(image.bytes, size));
        expect(spooled).to.include({ contentType: "image/jpeg", width: 800, height: 600 });
        expect((await readFile(spooled.path)).equals(image.stripped)).to.equal(true);
        await spooled.discard();
      }
    });

    it("measures a JPEG whose SOF lies past the first 4 KiB of one large chunk", async () => {
      const image = jpeg(800, 600, 20 * 1024);
      for (const size of [64 * 1024, image.bytes.length]) {
        const spooled = await spool(chunked(image.bytes, size));
        expect(spooled, `${size}-byte chunks`).to.include({ contentType: "image/jpeg", width: 800, height: 600 });
        expect((await readFile(spooled.path)).equals(image.stripped)).to.equal(true);
        await spooled.discard();
      }
    });

    it("refuses an image whose header cannot be read within the first 256 KiB as UNSUPPORTED_MEDIA_TYPE", async () => {
      const error = await refusal(spool(chunked(jpeg(800, 600, 300 * 1024).bytes, 64 * 1024)), "UNSUPPORTED_MEDIA_TYPE");
      expect(error.rawMessage).to.equal("unreadable image header");
    });

    it("refuses a PNG cut off inside its header as UNSUPPORTED_MEDIA_TYPE", async () => {
      await refusal(spool(chunked(pngHeader(50, 50).subarray(0, 22), 4)), "UNSUPPORTED_MEDIA_TYPE");
    });
  });

  describe("size limit", () => {
    const image = png(64, 48);

    it("accepts a photo of exactly maxBytes", async () => {
      const spooled = await spool(chunked(image, 100), { maxBytes: image.length });
      expect(spooled.sizeBytes).to.equal(image.length);
      await spooled.discard();
    });

    it("refuses a photo of maxBytes + 1 as PHOTO_TOO_LARGE", async () => {
      const error = await refusal(spool(chunked(image, 1), { maxBytes: image.length - 1 }), "PHOTO_TOO_LARGE");
      expect(error.rawMessage).to.contain(String(image.length - 1));
    });

    it("stops reading a 50 MiB upload right after the limit and removes what was written", async () => {
      const source = observedSource(pngHeader(1000, 1000), 50 * MiB);
      await refusal(spool(source, { maxBytes: MiB }), "PHOTO_TOO_LARGE");
      expect(source.stopped, "source stopped").to.equal(true);
      expect(source.yieldedBytes).to.be.above(MiB).and.at.most(MiB + 64 * 1024);
    });

    it("counts the bytes received, before metadata is stripped", async () => {
      const { bytes, stripped } = jpeg(640, 480, 20_000);
      await refusal(spool(chunked(bytes, 1000), { maxBytes: bytes.length - 1 }), "PHOTO_TOO_LARGE");
      const spooled = await spool(chunked(bytes, 1000), { maxBytes: bytes.length });
      expect(spooled.sizeBytes).to.equal(stripped.length).and.below(bytes.length);
      await spooled.discard();
    });

    it("streams a large upload to disk with the size and hash of what it stored", async () => {
      const body = largePng(4000, 3000, 20 * MiB);
      const spooled = await spool(chunked(body, 64 * 1024), { maxBytes: 32 * MiB });
      expect(spooled.sizeBytes).to.equal(body.length);
      expect(spooled.sha256).to.equal(createHash("sha256").update(body).digest("hex"));
    });
  });

  describe("pixel limit", () => {
    it("refuses a pixel-bomb PNG fast, before reading the rest of the stream", async () => {
      const bomb = pixelBombPng(100_000, 100_000);
      const source = observedSource(bomb, 50 * MiB);
      const started = performance.now();
      const error = await refusal(spool(source), "TOO_MANY_PIXELS");
      expect(performance.now() - started).to.be.below(50);
      expect(source.stopped, "source stopped").to.equal(true);
      expect(source.yieldedBytes).to.be.at.most(bomb.length + 64 * 1024);
      expect(error.rawMessage).to.contain("100000x100000");
    });

    it("refuses a complete pixel-bomb PNG of a few hundred bytes", async () => {
      const bomb = pixelBombPng(100_000, 100_000);
      expect(bomb.length).to.be.below(200);
      await refusal(spool(chunked(bomb, 7)), "TOO_MANY_PIXELS");
    });

    it("accepts exactly maxPixels and refuses one pixel more", async () => {
      const spooled = await spool(chunked(png(10, 10), 50), { maxPixels: 100 });
      expect(spooled).to.include({ width: 10, height: 10 });
      await spooled.discard();
      await refusal(spool(chunked(png(101, 1), 50), { maxPixels: 100 }), "TOO_MANY_PIXELS");
    });
  });

  describe("JPEG metadata", () => {
    it("stores the JPEG without its Exif/GPS segment and every other segment identical", async () => {
      const image = jpeg(640, 480);
      expect(image.bytes.includes("GPS")).to.equal(true);
      const spooled = await spool(chunked(image.bytes, 512));
      const stored = await readFile(spooled.path);
      expect(stored.includes("Exif")).to.equal(false);
      expect(stored.includes("GPS")).to.equal(false);
      expect(stored.subarray(0, 2)).to.deep.equal(Buffer.from([0xff, 0xd8]));
      // APP0, ICC, Adobe, DQT, SOF, DHT, SOS, entropy-coded bytes and EOI, byte for byte.
      expect(stored.equals(image.stripped)).to.equal(true);
      expect(stored.subarray(stored.length - image.scan.length).equals(image.scan)).to.equal(true);
      expect(imageSize(stored)).to.include({ width: 640, height: 480 });
      expect(spooled.sizeBytes).to.equal(stored.length);
      expect(spooled.sha256).to.equal(createHash("sha256").update(stored).digest("hex"));
    });

    it("refuses a JPEG that ends before its image data and removes the partly written file", async () => {
      const { bytes } = jpeg(640, 480, 8000);
      const truncated = bytes.subarray(0, bytes.indexOf(Buffer.from([0xff, 0xda])));
      await refusal(spool(chunked(truncated, 1000)), "UNSUPPORTED_MEDIA_TYPE");
    });
  });

  describe("writing", () => {
    /** Opens the spool file for real and records each writev (buffers, bytes) and when close ran. */
    function recordingFile(options: { maxBytesPerWrite?: number; failOnWrite?: number; delayMs?: number } = {}) {
      const writes: { buffers: number; bytes: number }[] = [];
      const events: string[] = [];
      const openFile = async (path: string): Promise<SpoolFile> => {
        const handle = await open(path, "wx", 0o600);
        return {
          async writev(buffers, position) {
            writes.push({ buffers: buffers.length, bytes: buffers.reduce((sum, b) => sum + b.length, 0) });
            if (writes.length === options.failOnWrite) {
              events.push("write failed");
              throw Object.assign(new Error("injected write failure"), { code: "EIO" });
            }
            let budget = options.maxBytesPerWrite ?? Infinity;
            const taken: Uint8Array[] = [];
            for (const buffer of buffers) {
              if (budget <= 0) break;
              taken.push(buffer.subarray(0, budget));
              budget -= buffer.length;
            }
            const result = await handle.writev(taken, position);
            if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
            events.push("write done");
            return result;
          },
          async close() {
            events.push("close");
            await handle.close();
          },
        };
      };
      return { openFile, writes, events };
    }

    it("writes a 1 MiB upload that arrives in 64 KiB chunks in batches, not chunk by chunk", async () => {
      const body = largePng(1024, 1024, MiB - 57);
      const file = recordingFile();

      const spooled = await spoolUpload(chunked(body, 64 * 1024), { dir, limits, openFile: file.openFile });

      expect(file.writes).to.have.lengthOf(MiB / spoolWriteBytes);
      expect((await readFile(spooled.path)).equals(body)).to.equal(true);
      expect(spooled.sha256).to.equal(createHash("sha256").update(body).digest("hex"));
    });

    it("holds a stream of tiny chunks to spoolWriteChunks per write", async () => {
      const body = png(120, 90);
      const file = recordingFile();

      const spooled = await spoolUpload(chunked(body, 3), { dir, limits, openFile: file.openFile });

      expect(Math.max(...file.writes.map((w) => w.buffers))).to.equal(spoolWriteChunks);
      expect((await readFile(spooled.path)).equals(body)).to.equal(true);
    });

    it("goes on after short writes until every byte is in the file", async () => {
      const body = largePng(300, 200, 700_000);
      const file = recordingFile({ maxBytesPerWrite: 10_000 });

      const spooled = await spoolUpload(chunked(body, 64 * 1024), { dir, limits, openFile: file.openFile });

      expect((await readFile(spooled.path)).equals(body)).to.equal(true);
      expect(spooled.sizeBytes).to.equal(body.length);
    });

    it("passes a failed write on, stops the source and removes the file, closed after the write settled", async () => {
      const source = observedSource(pngHeader(100, 100), 10 * MiB);
      const file = recordingFile({ failOnWrite: 2 });

      let thrown: unknown;
      await spoolUpload(source, { dir, limits, openFile: file.openFile }).catch((error: unknown) => (thrown = error));

      expect(thrown).to.have.property("code", "EIO");
      expect(source.stopped, "source stopped").to.equal(true);
      expect(source.yieldedBytes).to.be.below(4 * spoolWriteBytes);
      expect(file.events).to.deep.equal(["write done", "write failed", "close"]);
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it("closes the file only once the write in flight is done when the sender fails meanwhile", async () => {
      const failure = new Error("client went away");
      async function* failing() {
        yield largePng(300, 200, spoolWriteBytes);
        throw failure;
      }
      const file = recordingFile({ delayMs: 50 });

      let thrown: unknown;
      await spoolUpload(failing(), { dir, limits, openFile: file.openFile }).catch((error: unknown) => (thrown = error));

      expect(thrown).to.equal(failure);
      expect(file.events).to.deep.equal(["write done", "close"]);
      expect(await readdir(dir)).to.deep.equal([]);
    });
  });

  describe("cleanup", () => {
    it("removes the temp file when the sender fails mid-upload, and passes the failure on", async () => {
      const failure = new Error("client went away");
      async function* failing() {
        yield pngHeader(100, 100);
        yield new Uint8Array(100_000);
        throw failure;
      }
      let thrown: unknown;
      await spool(failing()).catch((error: unknown) => (thrown = error));
      expect(thrown).to.equal(failure);
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it("passes a disk failure on unchanged and stops the source", async () => {
      const source = observedSource(pngHeader(100, 100), 10 * MiB);
      let thrown: unknown;
      await spoolUpload(source, { dir: join(dir, "missing"), limits }).catch((error: unknown) => (thrown = error));
      expect(thrown).to.not.be.instanceOf(ConnectError);
      expect(thrown).to.have.property("code", "ENOENT");
      expect(source.stopped).to.equal(true);
    });

    it("leaves exactly one file per stored upload, which discard removes, twice without harm", async () => {
      const spooled = await spool(chunked(gif(3, 2), 4));
      expect(await readdir(dir)).to.have.lengthOf(1);
      expect(join(dir, (await readdir(dir))[0])).to.equal(spooled.path);
      await spooled.discard();
      await spooled.discard();
      expect(await readdir(dir)).to.deep.equal([]);
    });
  });
});
