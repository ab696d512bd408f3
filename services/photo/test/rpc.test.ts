import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { reasonOf } from "../../../internal/errors/errors.js";
import { errorFromStatus } from "../../../internal/rpc/grpc-codec.js";
import { callClientStream, readServerStream } from "../../../test/support/client-stream.js";
import { dropTestDatabase, testDatabaseUrl, uniqueDatabaseName } from "../../../test/support/pg.js";
import { startServiceProcess, type ServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";
import { pixelBombPng, png } from "../upload/test/test-images.js";

// PhotoService through a stock grpc-js client against the real photo process (local storage),
// PostgreSQL and Redis.

const pkg = loadStockPackage(["usermesh/photo/v1/photo.proto"]);
const maxBytes = 2 * 1024 * 1024;

interface WirePhoto { id: string; userId: string; contentType: string; sizeBytes: string; width: number; height: number; sha256: string }

function* uploadMessages(userId: string, bytes: Uint8Array, chunk = 64 * 1024): Generator<object> {
  yield { header: { userId, filename: "photo.png" } };
  for (let offset = 0; offset < bytes.length; offset += chunk) yield { chunk: Buffer.from(bytes.subarray(offset, offset + chunk)) };
}

/** An endless-looking upload: a valid PNG header followed by `totalBytes` of filler, generated lazily. */
function* hugeUpload(userId: string, totalBytes: number): Generator<object> {
  yield* uploadMessages(userId, png(64, 64));
  const filler = Buffer.alloc(64 * 1024, 7);
  for (let sent = 0; sent < totalBytes; sent += filler.length) yield { chunk: filler };
}

describe("PhotoService over gRPC (real photo process, local storage)", function () {
  this.timeout(60_000);
  const databaseName = uniqueDatabaseName("photo_rpc");
  let storageDir: string;
  let proc: ServiceProcess;
  let photos: grpc.Client;

  const upload = (userId: string, bytes: Uint8Array) => callClientStream<{ photo: WirePhoto }>(photos, "loadPhoto", uploadMessages(userId, bytes));
  const failureOf = (result: { error?: grpc.ServiceError }) => {
    expect(result.error, "expected the upload to fail").to.not.equal(undefined);
    return errorFromStatus(result.error!);
  };

  before(async () => {
    storageDir = await mkdtemp(join(tmpdir(), "photo-rpc-"));
    proc = await startServiceProcess("services/photo/main.ts", {
      USERMESH_POSTGRES__URL: testDatabaseUrl(databaseName),
      USERMESH_REDIS__KEY_PREFIX: `test:photo-rpc:${randomUUID()}:`,
      USERMESH_STORAGE__LOCAL__DIR: storageDir,
      USERMESH_UPLOAD__MAX_BYTES: String(maxBytes),
      USERMESH_EVENTS__EXCHANGE: `test.user.${randomUUID()}`,
      USERMESH_EVENTS__QUEUE: `test.photo.${randomUUID()}`,
      USERMESH_EVENTS__DEAD_LETTER_QUEUE: `test.photo.dlq.${randomUUID()}`,
      USERMESH_EVENTS__DEAD_LETTER_EXCHANGE: `test.photo.dlx.${randomUUID()}`,
      USERMESH_LOG__TO_BROKER: "false",
    });
    photos = stockClient(pkg, "usermesh.photo.v1.PhotoService", `127.0.0.1:${proc.grpcPort}`);
  });

  after(async () => {
    photos?.close();
    expect(await proc?.stop()).to.equal(0);
    await dropTestDatabase(databaseName);
    await rm(storageDir, { recursive: true, force: true });
  });

  it("uploads, lists, reads back identical bytes and deletes a photo (and its blob)", async () => {
    const userId = randomUUID();
    const bytes = png(320, 200);
    const { response, error } = await upload(userId, bytes);
    expect(error).to.equal(undefined);
    const photo = response!.photo;
    expect(photo).to.include({ userId, contentType: "image/png", width: 320, height: 200, sizeBytes: String(bytes.length) });

    const listed = await callUnary<{ photos: WirePhoto[] }>(photos, "getPhotos", { userId });
    expect(listed.photos.map((p) => p.id)).to.deep.equal([photo.id]);
    expect((await callUnary<{ photo: WirePhoto }>(photos, "getPhoto", { userId, photoId: photo.id })).photo.sha256).to.equal(photo.sha256);

    const parts = await readServerStream<{ photo?: WirePhoto; chunk?: Buffer }>(
      (photos as unknown as { getPhotoContent(req: object): grpc.ClientReadableStream<{ photo?: WirePhoto; chunk?: Buffer }> }).getPhotoContent({ userId, photoId: photo.id }),
    );
    expect(parts[0]?.photo?.id).to.equal(photo.id);
    expect(Buffer.concat(parts.slice(1).map((p) => p.chunk!)).equals(bytes)).to.equal(true);
    expect(await readdir(join(storageDir, userId))).to.deep.equal([photo.id]);

    await callUnary(photos, "deletePhoto", { userId, photoId: photo.id });
    const gone = await callUnary(photos, "getPhoto", { userId, photoId: photo.id }).catch((e: grpc.ServiceError) => e);
    expect((gone as grpc.ServiceError).code).to.equal(grpc.status.NOT_FOUND);
    const left = await readdir(join(storageDir, userId)).catch(() => []);
    expect(left).to.deep.equal([]);
  });

  it("pages through 25 photos newest first without gaps or repeats", async () => {
    const userId = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await upload(userId, png(8 + i, 8))).response!.photo.id);
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await callUnary<{ photos: WirePhoto[]; nextPageToken: string }>(photos, "getPhotos", { userId, pageSize: 10, pageToken });
      seen.push(...page.photos.map((p) => p.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).to.equal(3);
    expect(seen).to.deep.equal([...ids].reverse());
  });

  it("answers NOT_FOUND for another user's photo, for reading and deleting alike", async () => {
    const owner = randomUUID();
    const { response } = await upload(owner, png(16, 16));
    const stranger = randomUUID();
    for (const method of ["getPhoto", "deletePhoto"]) {
      const error = (await callUnary(photos, method, { userId: stranger, photoId: response!.photo.id }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(error.code, method).to.equal(grpc.status.NOT_FOUND);
    }
    await callUnary(photos, "getPhoto", { userId: owner, photoId: response!.photo.id });
  });

  it("refuses bytes that are not an image, whatever the file is called", async () => {
    const error = failureOf(await upload(randomUUID(), Buffer.from("%PDF-1.7\n%âãÏÓ\n1 0 obj\n")));
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(reasonOf(error)).to.equal("UNSUPPORTED_MEDIA_TYPE");
  });

  it("accepts exactly the size limit and refuses one byte more without reading the rest of the stream", async () => {
    const userId = randomUUID();
    const atLimit = Buffer.concat([png(32, 32)]);
    const padded = Buffer.concat([atLimit, Buffer.alloc(maxBytes - atLimit.length)]);
    expect((await upload(userId, padded)).error).to.equal(undefined);

    const over = failureOf(await upload(userId, Buffer.concat([padded, Buffer.from([0])])));
    expect(reasonOf(over)).to.equal("PHOTO_TOO_LARGE");

    // 200 MiB offered: the server must stop it shortly after 2 MiB.
    const huge = await callClientStream(photos, "loadPhoto", hugeUpload(userId, 200 * 1024 * 1024));
    expect(reasonOf(failureOf(huge))).to.equal("PHOTO_TOO_LARGE");
    expect(huge.written * 64 * 1024).to.be.below(40 * 1024 * 1024);
  });

  it("refuses a pixel bomb fast and with flat memory", async () => {
    const rss = async () => {
      const text = await (await fetch(`http://127.0.0.1:${proc.adminPort}/metrics`)).text();
      return Number(/^process_resident_memory_bytes(?:\{[^}]*\})? (\d+)/m.exec(text)![1]);
    };
    const before = await rss();
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      const error = failureOf(await upload(randomUUID(), pixelBombPng(100_000, 100_000)));
      expect(reasonOf(error)).to.equal("TOO_MANY_PIXELS");
    }
    expect((performance.now() - started) / 20, "ms per refused bomb").to.be.below(200);
    expect(await rss() - before).to.be.below(30 * 1024 * 1024);
  });

  it("stores distinct random bytes under distinct keys", async () => {
    const userId = randomUUID();
    const a = Buffer.concat([png(10, 10), randomBytes(1000)]);
    const b = Buffer.concat([png(10, 10), randomBytes(1000)]);
    const [pa, pb] = await Promise.all([upload(userId, a), upload(userId, b)]);
    expect(pa.response!.photo.id).to.not.equal(pb.response!.photo.id);
    // Each photo reads back its own bytes: two uploads never share or overwrite a blob.
    for (const [photo, bytes] of [[pa.response!.photo, a], [pb.response!.photo, b]] as const) {
      const parts = await readServerStream<{ photo?: WirePhoto; chunk?: Buffer }>(
        (photos as unknown as { getPhotoContent(req: object): grpc.ClientReadableStream<{ photo?: WirePhoto; chunk?: Buffer }> }).getPhotoContent({ userId, photoId: photo.id }),
      );
      expect(Buffer.concat(parts.slice(1).map((p) => p.chunk!)).equals(bytes)).to.equal(true);
    }
  });
});
