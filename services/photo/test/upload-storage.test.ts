// LoadPhoto over the real upload pipeline and the real local blob store (the database and cache faked):
// the spooled file becomes the blob (linked, or copied across filesystems) and never outlives the call.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { link, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, createHandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { LoadPhotoRequestSchema, LoadPhotoResponseSchema, PhotoService, type LoadPhotoRequest } from "../../../gen/usermesh/photo/v1/photo_pb.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createPhotoHandlers } from "../handlers.js";
import { createPhotos } from "../photos.js";
import { createLocalBlobStore, type LocalBlobStoreOptions } from "../storage/local-blob-store.js";
import { spoolUpload } from "../upload/spool-upload.js";
import { largePng } from "../upload/test/test-images.js";
import { createFakePhotoDb, createFakePhotoListCache, createRecordingLogger } from "./fakes.js";

const MiB = 1024 * 1024;
const context = createHandlerContext({
  service: PhotoService,
  method: PhotoService.method.loadPhoto,
  protocolName: "grpc",
  requestMethod: "POST",
  url: `http://127.0.0.1/${PhotoService.typeName}/LoadPhoto`,
});

async function* upload(userId: string, bytes: Uint8Array): AsyncGenerator<LoadPhotoRequest> {
  const messages: MessageInitShape<typeof LoadPhotoRequestSchema>[] = [{ part: { case: "header", value: { userId, filename: "p.png" } } }];
  for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
    messages.push({ part: { case: "chunk", value: bytes.subarray(offset, offset + 64 * 1024) } });
  }
  for (const message of messages) yield create(LoadPhotoRequestSchema, message);
}

describe("LoadPhoto with the upload pipeline and the local blob store", () => {
  const scratch: string[] = [];
  let spoolDir: string;
  let blobDir: string;

  beforeEach(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), "photo-spool-"));
    blobDir = await mkdtemp(join(tmpdir(), "photo-blobs-"));
    scratch.push(spoolDir, blobDir);
  });
  afterEach(async () => {
    await Promise.all(scratch.splice(0).map((path) => rm(path, { recursive: true, force: true })));
  });

  function handlersWith(options: { spoolDir?: string; link?: LocalBlobStoreOptions["link"] } = {}) {
    const db = createFakePhotoDb();
    const photos = createPhotos({
      store: db,
      users: db,
      deletions: db,
      blobs: createLocalBlobStore({ dir: blobDir, link: options.link }),
      cache: createFakePhotoListCache(),
      pagination: { defaultPageSize: 20, maxPageSize: 100 },
      logger: createRecordingLogger(),
    });
    const dir = options.spoolDir ?? spoolDir;
    const handlers: ServiceImpl<typeof PhotoService> = createPhotoHandlers({
      photos,
      spool: (chunks) => spoolUpload(chunks, { dir, limits: { maxBytes: 10 * MiB, maxPixels: 40_000_000 } }),
      logger: createRecordingLogger(),
    });
    return handlers;
  }

  async function loadPhoto(handlers: ServiceImpl<typeof PhotoService>, userId: string, bytes: Uint8Array) {
    const response = create(LoadPhotoResponseSchema, await handlers.loadPhoto(upload(userId, bytes), context));
    return join(blobDir, userId, response.photo!.id);
  }

  it("links the spooled upload into the store and leaves no spooled file", async () => {
    let links = 0;
    const counted = async (existing: string, target: string) => {
      await link(existing, target);
      links++;
    };
    const handlers = handlersWith({ link: counted });
    const bytes = largePng(1024, 1024, MiB - 57);

    const blob = await loadPhoto(handlers, randomUUID(), bytes);

    expect(links).to.equal(1);
    expect(await readdir(spoolDir)).to.deep.equal([]);
    expect((await readFile(blob)).equals(bytes)).to.equal(true);
    expect((await stat(blob)).nlink, "only the blob's name is left").to.equal(1);
  });

  it("copies when the spool is on another filesystem (EXDEV) and leaves no spooled file", async () => {
    const exdev = async () => {
      throw Object.assign(new Error("cross-device link not permitted"), { code: "EXDEV" });
    };
    const handlers = handlersWith({ link: exdev });
    const bytes = largePng(640, 480, 300_000);

    const blob = await loadPhoto(handlers, randomUUID(), bytes);

    expect(await readdir(spoolDir)).to.deep.equal([]);
    expect((await readFile(blob)).equals(bytes)).to.equal(true);
  });

  it("copies from a spool on a real other filesystem (tmpfs at /dev/shm)", async function () {
    const shm = await mkdtemp("/dev/shm/photo-spool-").catch(() => undefined);
    if (!shm) this.skip();
    scratch.push(shm);
    if ((await stat(shm)).dev === (await stat(blobDir)).dev) this.skip();
    const bytes = largePng(640, 480, 300_000);

    const blob = await loadPhoto(handlersWith({ spoolDir: shm }), randomUUID(), bytes);

    expect(await readdir(shm)).to.deep.equal([]);
    expect((await readFile(blob)).equals(bytes)).to.equal(true);
  });

  it("leaves neither a spooled file nor a blob when the store fails", async () => {
    const eio = async () => {
      throw Object.assign(new Error("i/o error"), { code: "EIO" });
    };
    const userId = randomUUID();

    const error = await rejectionOf(loadPhoto(handlersWith({ link: eio }), userId, largePng(64, 64, 100_000)));

    expect(error.code).to.equal(Code.Unavailable);
    expect(await readdir(spoolDir)).to.deep.equal([]);
    expect(await readdir(join(blobDir, userId)).catch(() => [])).to.deep.equal([]);
  });
});
