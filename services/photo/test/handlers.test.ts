// The PhotoService handlers called directly, as an RPC host calls them (request stream or message +
// handler context), over the domain with hand-made fakes and a fake spool in place of the upload pipeline.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, createHandlerContext, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  DeletePhotoRequestSchema,
  GetPhotoContentRequestSchema,
  GetPhotoContentResponseSchema,
  GetPhotoRequestSchema,
  GetPhotoResponseSchema,
  GetPhotosRequestSchema,
  GetPhotosResponseSchema,
  LoadPhotoRequestSchema,
  LoadPhotoResponseSchema,
  PhotoService,
  type LoadPhotoRequest,
} from "../../../gen/usermesh/photo/v1/photo_pb.js";
import { fieldViolationsOf, reasonOf, reasonedError } from "../../../internal/errors/errors.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createPhotoHandlers, maxContentChunkBytes, type SpooledUpload, type SpoolUpload } from "../handlers.js";
import { createPhotos } from "../photos.js";
import { createFakeBlobStore, createFakePhotoDb, createFakePhotoListCache, createRecordingLogger } from "./fakes.js";

function contextFor(name: keyof typeof PhotoService.method): HandlerContext {
  const method = PhotoService.method[name];
  return createHandlerContext({
    service: PhotoService,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://127.0.0.1/${PhotoService.typeName}/${method.name}`,
  });
}

async function* stream(...messages: MessageInitShape<typeof LoadPhotoRequestSchema>[]): AsyncGenerator<LoadPhotoRequest> {
  for (const message of messages) yield create(LoadPhotoRequestSchema, message);
}

const header = (userId: string, filename = "cat.png") => ({ part: { case: "header" as const, value: { userId, filename } } });
const chunk = (bytes: Uint8Array | string) => ({
  part: { case: "chunk" as const, value: typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes },
});

/** A spool that reads every chunk into memory and describes it as a PNG, recording what it saw. */
function createFakeSpool() {
  const seen: { bytes?: Buffer; discarded: number; calls: number } = { discarded: 0, calls: 0 };
  const spool: SpoolUpload = async (chunks) => {
    seen.calls++;
    const parts: Uint8Array[] = [];
    for await (const part of chunks) parts.push(part);
    const bytes = Buffer.concat(parts);
    seen.bytes = bytes;
    const spooled: SpooledUpload = {
      path: `/tmp/spool/${randomUUID()}`,
      contentType: "image/png",
      width: 32,
      height: 16,
      sizeBytes: bytes.byteLength,
      sha256: "d".repeat(64),
      discard: async () => void seen.discarded++,
    };
    return spooled;
  };
  return { spool, seen };
}

describe("photo handlers", () => {
  function setup(spool: SpoolUpload = createFakeSpool().spool) {
    const db = createFakePhotoDb();
    const blobs = createFakeBlobStore();
    const photos = createPhotos({
      store: db,
      users: db,
      deletions: db,
      blobs,
      cache: createFakePhotoListCache(),
      pagination: { defaultPageSize: 20, maxPageSize: 100 },
      logger: createRecordingLogger(),
      clock: () => Date.UTC(2030, 0, 1),
    });
    // Typed as the RPC host sees it.
    const handlers: ServiceImpl<typeof PhotoService> = createPhotoHandlers({ photos, spool, logger: createRecordingLogger() });
    return { handlers, db, blobs };
  }

  describe("LoadPhoto", () => {
    it("spools the chunks after the header, stores the photo, answers it and discards the temp file", async () => {
      const { spool, seen } = createFakeSpool();
      const { handlers, db } = setup(spool);
      const userId = randomUUID();
      const response = create(
        LoadPhotoResponseSchema,
        await handlers.loadPhoto(stream(header(userId), chunk("ab"), chunk(""), chunk("cd")), contextFor("loadPhoto")),
      );
      expect(seen.bytes?.toString()).to.equal("abcd");
      expect(seen.discarded).to.equal(1);
      const photo = response.photo!;
      expect(photo).to.include({ userId, contentType: "image/png", sizeBytes: 4n, width: 32, height: 16, sha256: "d".repeat(64) });
      expect(timestampMs(photo.createdAt!)).to.equal(Date.UTC(2030, 0, 1));
      expect(db.photos.get(photo.id)?.filename).to.equal("cat.png");
    });

    it("refuses a stream whose first message is not the header, before spooling", async () => {
      const { spool, seen } = createFakeSpool();
      const { handlers } = setup(spool);
      for (const requests of [stream(chunk("ab"), header(randomUUID())), stream(), stream({})]) {
        const error = await rejectionOf(handlers.loadPhoto(requests, contextFor("loadPhoto")));
        expect(error.code).to.equal(Code.InvalidArgument);
        expect(fieldViolationsOf(error).map((v) => `${v.field} ${v.reason}`)).to.deep.equal(["header REQUIRED"]);
      }
      expect(seen.calls).to.equal(0);
    });

    it("refuses a header sent again after chunks, whatever the spool makes of it", async () => {
      const userId = randomUUID();
      const { handlers } = setup();
      const error = await rejectionOf(
        handlers.loadPhoto(stream(header(userId), chunk("ab"), header(userId), chunk("cd")), contextFor("loadPhoto")),
      );
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => `${v.field} ${v.reason}`)).to.deep.equal(["header UNEXPECTED_HEADER"]);

      // A pipeline that wraps its source's errors still yields the framing error to the caller.
      const wrapping: SpoolUpload = async (chunks) => {
        try {
          for await (const part of chunks) void part;
        } catch (cause) {
          throw reasonedError(Code.Internal, "spool failed", "SPOOL_FAILED", {}, cause);
        }
        throw new Error("unreachable");
      };
      const wrapped = await rejectionOf(
        setup(wrapping).handlers.loadPhoto(stream(header(userId), chunk("ab"), header(userId)), contextFor("loadPhoto")),
      );
      expect(fieldViolationsOf(wrapped).map((v) => v.field)).to.deep.equal(["header"]);
    });

    it("refuses a bad user id in the header before reading any bytes", async () => {
      const { spool, seen } = createFakeSpool();
      const { handlers } = setup(spool);
      const error = await rejectionOf(handlers.loadPhoto(stream(header("nope"), chunk("ab")), contextFor("loadPhoto")));
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["userId"]);
      expect(seen.calls).to.equal(0);
    });

    it("answers the pipeline's refusal as it is", async () => {
      const tooLarge: SpoolUpload = async () => {
        throw reasonedError(Code.InvalidArgument, "photo too large", "PHOTO_TOO_LARGE");
      };
      const { handlers } = setup(tooLarge);
      const error = await rejectionOf(handlers.loadPhoto(stream(header(randomUUID()), chunk("ab")), contextFor("loadPhoto")));
      expect(reasonOf(error)).to.equal("PHOTO_TOO_LARGE");
    });

    it("discards the temp file when storing the photo fails", async () => {
      const { spool, seen } = createFakeSpool();
      const { handlers, db } = setup(spool);
      const userId = randomUUID();
      db.tombstones.add(userId);
      const error = await rejectionOf(handlers.loadPhoto(stream(header(userId), chunk("ab")), contextFor("loadPhoto")));
      expect(reasonOf(error)).to.equal("USER_DELETED");
      expect(seen.discarded).to.equal(1);
    });
  });

  describe("reads and deletes", () => {
    async function uploaded(h: ServiceImpl<typeof PhotoService>, userId: string) {
      const response = create(LoadPhotoResponseSchema, await h.loadPhoto(stream(header(userId), chunk("x")), contextFor("loadPhoto")));
      return response.photo!;
    }

    it("GetPhotoContent yields the metadata first, then the bytes in chunks of at most 64 KiB", async () => {
      const { handlers, blobs } = setup();
      const userId = randomUUID();
      const photo = await uploaded(handlers, userId);
      const bytes = new Uint8Array(200 * 1024 + 7).map((_, i) => i % 251);
      blobs.blobs.set(`${userId}/${photo.id}`, bytes);
      // The store hands over one big chunk and a few small ones.
      blobs.chunkSizes = [150 * 1024, 10, 3];

      const responses = [];
      const request = create(GetPhotoContentRequestSchema, { userId, photoId: photo.id });
      for await (const message of handlers.getPhotoContent(request, contextFor("getPhotoContent"))) {
        responses.push(create(GetPhotoContentResponseSchema, message));
      }
      const [first, ...rest] = responses;
      expect(first.part.case).to.equal("photo");
      expect(first.part.value).to.deep.include({ id: photo.id, userId });
      const chunks = rest.map((r) => {
        if (r.part.case !== "chunk") throw new Error(`expected a chunk, got ${r.part.case}`);
        return r.part.value;
      });
      expect(chunks.every((c) => c.byteLength > 0 && c.byteLength <= maxContentChunkBytes)).to.equal(true);
      expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).to.equal(true);
    });

    it("GetPhotoContent answers NOT_FOUND for another user's photo before yielding anything", async () => {
      const { handlers } = setup();
      const photo = await uploaded(handlers, randomUUID());
      const request = create(GetPhotoContentRequestSchema, { userId: randomUUID(), photoId: photo.id });
      const iterator = handlers.getPhotoContent(request, contextFor("getPhotoContent"))[Symbol.asyncIterator]();
      expect((await rejectionOf(iterator.next())).code).to.equal(Code.NotFound);
    });

    it("GetPhoto, GetPhotos and DeletePhoto map the domain's answers", async () => {
      const { handlers } = setup();
      const userId = randomUUID();
      const photo = await uploaded(handlers, userId);
      const got = create(
        GetPhotoResponseSchema,
        await handlers.getPhoto(create(GetPhotoRequestSchema, { userId, photoId: photo.id }), contextFor("getPhoto")),
      );
      expect(got.photo).to.deep.equal(photo);
      const list = create(
        GetPhotosResponseSchema,
        await handlers.getPhotos(create(GetPhotosRequestSchema, { userId }), contextFor("getPhotos")),
      );
      expect(list.photos).to.deep.equal([photo]);
      expect(list.nextPageToken).to.equal("");
      await handlers.deletePhoto(create(DeletePhotoRequestSchema, { userId, photoId: photo.id }), contextFor("deletePhoto"));
      const error = await rejectionOf(
        Promise.resolve(handlers.getPhoto(create(GetPhotoRequestSchema, { userId, photoId: photo.id }), contextFor("getPhoto"))),
      );
      expect(error.code).to.equal(Code.NotFound);
      const bad = await rejectionOf(
        Promise.resolve(handlers.getPhotos(create(GetPhotosRequestSchema, { userId, pageSize: 101 }), contextFor("getPhotos"))),
      );
      expect(bad.code).to.equal(Code.InvalidArgument);
    });
  });
});
