import { request } from "node:http";
import { expect } from "chai";
import type { StoredSession } from "./fake-services.js";
import { fakePng, pngSignature } from "./fake-services.js";
import { startHarness, type Harness } from "./route-harness.js";

const maxBytes = 1024 * 1024;
const hugeBytes = 20 * 1024 * 1024;

interface StreamedUpload {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Bytes the client managed to hand to its socket before the answer came. */
  written: number;
}

/**
 * POSTs `prefix` and then zeros up to `total` bytes with chunked encoding (no Content-Length), honouring
 * backpressure, and stops writing as soon as the response arrives.
 */
function streamUpload(harness: Harness, session: StoredSession, headers: Record<string, string>, prefix: Uint8Array, total: number): Promise<StreamedUpload> {
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = request({
      host: "127.0.0.1",
      port: harness.port,
      method: "POST",
      path: "/me/photos",
      agent: false,
      headers: { ...harness.authHeaders(session), ...headers, "transfer-encoding": "chunked" },
    });
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), written });
        req.destroy();
      });
    });
    // Writes after the server closed the connection fail; only a failure before the answer matters.
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (!answered && !req.destroyed && written < total) {
        const piece = written === 0 ? Buffer.from(prefix) : chunk.subarray(0, Math.min(chunk.byteLength, total - written));
        written += piece.byteLength;
        if (!req.write(piece)) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered && written >= total) req.end();
    };
    pump();
  });
}

async function closedConnectionBytes(harness: Harness): Promise<number> {
  for (let i = 0; i < 100 && harness.bytesReadByClosedConnections.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(harness.bytesReadByClosedConnections, "the server closed the upload's connection").to.have.length.greaterThan(0);
  return harness.bytesReadByClosedConnections.at(-1) ?? 0;
}

describe("photo upload route", () => {
  let harness: Harness;
  let session: StoredSession;
  beforeEach(async () => {
    harness = await startHarness({ uploadMaxBytes: maxBytes });
    session = harness.mesh.addSession(harness.mesh.addUser({ email: "up@example.com", name: "Up" }).id);
  });
  afterEach(() => harness.close());

  it("streams a multipart upload to LoadPhoto as a header and chunks of at most 64 KiB, bytes intact", async () => {
    const bytes = fakePng(300 * 1024 + 17);
    const form = new FormData();
    form.append("caption", "ignored");
    form.append("photo", new Blob([bytes], { type: "image/png" }), "cät.png");
    const res = await harness.call("POST", "/me/photos", { as: session, body: form });
    expect(res.status).to.equal(201);

    const [upload] = harness.mesh.uploads;
    expect(upload.header).to.deep.equal({ userId: session.userId, filename: "cät.png" });
    expect(Math.max(...upload.chunkSizes)).to.be.at.most(64 * 1024);
    expect(Buffer.concat(upload.chunks).equals(Buffer.from(bytes))).to.equal(true);
    const { photo } = res.json<{ photo: { userId: string; sizeBytes: string } }>();
    expect(photo).to.include({ userId: session.userId, sizeBytes: String(bytes.byteLength) });
  });

  it("streams a raw image/* body the same way, naming it from Content-Disposition", async () => {
    const bytes = fakePng(200 * 1024 + 3);
    const res = await harness.call("POST", "/me/photos", {
      as: session,
      body: bytes,
      headers: { "content-type": "image/png", "content-disposition": `inline; filename="raw.png"` },
    });
    expect(res.status).to.equal(201);
    const [upload] = harness.mesh.uploads;
    expect(upload.header).to.deep.equal({ userId: session.userId, filename: "raw.png" });
    expect(Math.max(...upload.chunkSizes)).to.be.at.most(64 * 1024);
    expect(Buffer.concat(upload.chunks).equals(Buffer.from(bytes))).to.equal(true);
  });

  it("answers 413 from Content-Length alone, before reading the body or calling LoadPhoto", async () => {
    const answer = await new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: harness.port,
        method: "POST",
        path: "/me/photos",
        agent: false,
        headers: { ...harness.authHeaders(session), "content-type": "image/png", "content-length": String(maxBytes + 1) },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(answer.status).to.equal(413);
    expect(answer.connection).to.equal("close");
    harness.validator.validateResponse("POST", "/me/photos", 413, "application/problem+json", answer.body);
    expect(harness.mesh.calls).not.to.include("PhotoService.loadPhoto");
  });

  for (const form of ["raw", "multipart"] as const) {
    it(`cuts a ${form} upload off with 413 the moment it passes the limit, cancelling LoadPhoto and never reading the rest`, async () => {
      const boundary = "----route-test-boundary";
      const headers =
        form === "raw" ? { "content-type": "image/png" } : { "content-type": `multipart/form-data; boundary=${boundary}` };
      const prefix =
        form === "raw"
          ? pngSignature
          : Buffer.concat([
              Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`),
              pngSignature,
            ]);
      const answer = await streamUpload(harness, session, headers, prefix, hugeBytes);

      expect(answer.status).to.equal(413);
      expect(answer.headers.connection).to.equal("close");
      harness.validator.validateResponse("POST", "/me/photos", 413, String(answer.headers["content-type"]), answer.body);
      const [upload] = harness.mesh.uploads;
      expect(await upload.ended).to.equal("aborted");
      expect(upload.chunkSizes.reduce((a, b) => a + b, 0)).to.be.at.most(maxBytes);
      // Whatever sits in socket buffers aside, the gateway read about the limit, not the 20 MiB.
      const bytesRead = await closedConnectionBytes(harness);
      expect(bytesRead).to.be.below(hugeBytes / 4);
      expect(bytesRead).to.be.above(maxBytes);
    });
  }

  it("answers 415 for a body that is neither multipart nor an image, without calling LoadPhoto", async () => {
    const res = await harness.call("POST", "/me/photos", { as: session, body: "hello", headers: { "content-type": "text/plain" } });
    expect(res.status).to.equal(415);
    expect(harness.mesh.calls).not.to.include("PhotoService.loadPhoto");
  });

  it("answers 400 for a second file part and cancels the upload", async () => {
    const form = new FormData();
    form.append("photo", new Blob([fakePng(1000)], { type: "image/png" }), "one.png");
    form.append("photo", new Blob([fakePng(1000)], { type: "image/png" }), "two.png");
    const res = await harness.call("POST", "/me/photos", { as: session, body: form });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: unknown[] }>().errors).to.deep.equal([{ field: "photo", message: "only one file part, named photo, is accepted" }]);
    expect(await harness.mesh.uploads[0].ended).to.equal("aborted");
    expect(harness.mesh.state.photos.size).to.equal(0);
  });

  it("answers 400 for a form without a photo part", async () => {
    const form = new FormData();
    form.append("caption", "no file here");
    const res = await harness.call("POST", "/me/photos", { as: session, body: form });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: unknown[] }>().errors).to.deep.equal([{ field: "photo", message: "is required" }]);
  });

  it("passes the photo service's refusal on (bytes that are no image → 415)", async () => {
    const res = await harness.call("POST", "/me/photos", { as: session, body: Buffer.alloc(5000, 1), headers: { "content-type": "image/png" } });
    expect(res.status).to.equal(415);
  });
});
