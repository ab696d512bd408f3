// The photo domain over hand-made fakes: ordering of blob and metadata writes, clean-up after failures,
// ownership, tombstones, paging and the list cache.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { fieldViolationsOf, reasonOf } from "../../../internal/errors/errors.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createPhotos, decodePageToken, encodePageToken, type Photo } from "../photos.js";
import {
  createFakeBlobStore,
  createFakePhotoDb,
  createFakePhotoListCache,
  createRecordingLogger,
  spooledPhoto,
} from "./fakes.js";

describe("photos (domain)", () => {
  function setup() {
    const log: string[] = [];
    const db = createFakePhotoDb(log);
    const blobs = createFakeBlobStore(log);
    const cache = createFakePhotoListCache();
    const logger = createRecordingLogger();
    let now = Date.UTC(2030, 0, 1);
    const photos = createPhotos({
      store: db,
      users: db,
      deletions: db,
      blobs,
      cache,
      pagination: { defaultPageSize: 20, maxPageSize: 100 },
      logger,
      // Each call a millisecond later, so uploads are ordered.
      clock: () => now++,
    });
    return { photos, db, blobs, cache, logger, log };
  }

  const ada = randomUUID();
  const bob = randomUUID();

  describe("upload", () => {
    it("stores the blob first, then the metadata", async () => {
      const { photos, db, blobs, log } = setup();
      const photo = await photos.addPhoto(ada, "holiday.png", spooledPhoto());
      expect(log).to.deep.equal(["admit user", "blob put", "insert photo"]);
      expect(blobs.calls).to.deep.equal([`put ${ada}/${photo.id}`]);
      expect(db.photos.get(photo.id)).to.deep.include({ userId: ada, storageKey: `${ada}/${photo.id}`, filename: "holiday.png" });
      expect(photo).to.deep.equal({
        id: photo.id,
        userId: ada,
        contentType: "image/png",
        sizeBytes: 1234,
        width: 640,
        height: 480,
        sha256: "a".repeat(64),
        filename: "holiday.png",
        createdAt: new Date(Date.UTC(2030, 0, 1)),
      });
    });

    it("makes a user known whose registration event has not arrived yet", async () => {
      const { photos, db } = setup();
      await photos.addPhoto(ada, "", spooledPhoto());
      expect(db.users.has(ada)).to.equal(true);
    });

    it("deletes the blob again when the metadata cannot be written", async () => {
      const { photos, db, blobs } = setup();
      db.failNextInsert = true;
      const error = await rejectionOf(photos.addPhoto(ada, "x.png", spooledPhoto()));
      expect(error.code).to.equal(Code.Unavailable);
      const [put, del] = blobs.calls;
      expect(put).to.match(/^put /);
      expect(del).to.equal(`delete ${put.slice(4)}`);
      expect(blobs.blobs.size).to.equal(0);
      expect(db.photos.size).to.equal(0);
      expect(db.queue.size).to.equal(0);
    });

    it("queues the blob for the janitor when the metadata write and the blob delete both fail", async () => {
      const { photos, db, blobs, logger } = setup();
      db.failNextInsert = true;
      blobs.failNext("delete");
      const error = await rejectionOf(photos.addPhoto(ada, "x.png", spooledPhoto()));
      expect(error.code).to.equal(Code.Unavailable);
      const key = blobs.calls[0].slice(4);
      expect([...db.queue.keys()]).to.deep.equal([key]);
      expect(logger.lines.map((l) => l.level)).to.deep.equal(["warn"]);
    });

    it("logs the blob it could not delete nor queue, and still answers the metadata error", async () => {
      const { photos, db, blobs, logger } = setup();
      db.failNextInsert = true;
      db.queueDown = true;
      blobs.failNext("delete");
      expect((await rejectionOf(photos.addPhoto(ada, "x.png", spooledPhoto()))).code).to.equal(Code.Unavailable);
      expect(logger.lines.map((l) => l.level)).to.deep.equal(["warn", "error"]);
    });

    it("refuses an upload for a deleted user with FAILED_PRECONDITION USER_DELETED, storing nothing", async () => {
      const { photos, db, blobs } = setup();
      db.tombstones.add(ada);
      const error = await rejectionOf(photos.addPhoto(ada, "late.png", spooledPhoto()));
      expect(error.code).to.equal(Code.FailedPrecondition);
      expect(reasonOf(error)).to.equal("USER_DELETED");
      expect(blobs.calls).to.deep.equal([]);
      expect(db.users.has(ada)).to.equal(false);
    });

    it("removes the blob when the user is deleted between the blob and the metadata", async () => {
      const { photos, db, blobs } = setup();
      // The store refuses the photo as PostgreSQL's foreign key would once the user row is gone.
      const insert = db.insertPhoto.bind(db);
      db.insertPhoto = async (photo) => {
        db.users.delete(ada);
        return insert(photo);
      };
      const error = await rejectionOf(photos.addPhoto(ada, "x.png", spooledPhoto()));
      expect(reasonOf(error)).to.equal("USER_DELETED");
      expect(blobs.blobs.size).to.equal(0);
    });

    it("refuses a bad user id or filename before storing anything, naming each field", async () => {
      const { photos, blobs } = setup();
      const error = await rejectionOf(photos.addPhoto("not-a-uuid", "a\u0000b".padEnd(300, "x"), spooledPhoto()));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => `${v.field} ${v.reason}`)).to.deep.equal([
        "userId INVALID_FORMAT",
        "filename TOO_LONG",
        "filename INVALID_CHARACTERS",
      ]);
      expect(blobs.calls).to.deep.equal([]);
    });

    it("invalidates the user's cached list pages", async () => {
      const { photos, cache } = setup();
      await photos.listPhotos(ada, 0, "");
      expect(cache.pages.size).to.equal(1);
      await photos.addPhoto(ada, "x.png", spooledPhoto());
      expect(cache.pages.size).to.equal(0);
    });
  });

  describe("ownership", () => {
    it("answers NOT_FOUND for another user's photo on get, content and delete, as for a missing one", async () => {
      const { photos, db, blobs } = setup();
      const photo = await photos.addPhoto(ada, "mine.png", spooledPhoto());
      const missing = await rejectionOf(photos.getPhoto(bob, randomUUID()));
      for (const attempt of [
        photos.getPhoto(bob, photo.id),
        photos.openContent(bob, photo.id),
        photos.deletePhoto(bob, photo.id),
      ]) {
        const error = await rejectionOf(attempt);
        expect(error.code).to.equal(Code.NotFound);
        expect(error.rawMessage).to.equal(missing.rawMessage);
      }
      expect(db.photos.has(photo.id)).to.equal(true);
      expect(blobs.calls.filter((c) => !c.startsWith("put"))).to.deep.equal([]);
    });

    it("gets the owner's photo and streams its bytes", async () => {
      const { photos } = setup();
      const photo = await photos.addPhoto(ada, "mine.png", spooledPhoto({ path: "/tmp/spool/abc" }));
      expect(await photos.getPhoto(ada, photo.id)).to.deep.equal(photo);
      const content = await photos.openContent(ada, photo.id);
      expect(content.photo).to.deep.equal(photo);
      const chunks: Uint8Array[] = [];
      for await (const chunk of content.bytes) chunks.push(chunk);
      expect(Buffer.concat(chunks).toString()).to.equal("/tmp/spool/abc");
    });

    it("answers the photo's NOT_FOUND when its blob vanished after the metadata was read", async () => {
      const { photos, blobs } = setup();
      const photo = await photos.addPhoto(ada, "mine.png", spooledPhoto());
      blobs.blobs.clear();
      const error = await rejectionOf(photos.openContent(ada, photo.id));
      expect(error.code).to.equal(Code.NotFound);
      expect(error.rawMessage).to.equal("photo not found");
    });

    it("refuses ids that are not UUIDs with field violations", async () => {
      const { photos } = setup();
      const error = await rejectionOf(photos.getPhoto("", "nope"));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => `${v.field} ${v.reason}`)).to.deep.equal([
        "userId REQUIRED",
        "photoId INVALID_FORMAT",
      ]);
    });
  });

  describe("deletion", () => {
    it("deletes the metadata, then the blob, and clears the queued deletion", async () => {
      const { photos, db, blobs, cache } = setup();
      const photo = await photos.addPhoto(ada, "x.png", spooledPhoto());
      await photos.listPhotos(ada, 0, "");
      await photos.deletePhoto(ada, photo.id);
      expect(db.photos.has(photo.id)).to.equal(false);
      expect(blobs.deleted).to.deep.equal([`${ada}/${photo.id}`]);
      expect(db.queue.size).to.equal(0);
      expect(cache.pages.size).to.equal(0);
      expect((await rejectionOf(photos.deletePhoto(ada, photo.id))).code).to.equal(Code.NotFound);
    });

    it("leaves a blob that cannot be deleted now queued, with the failure recorded", async () => {
      const { photos, db, blobs } = setup();
      const photo = await photos.addPhoto(ada, "x.png", spooledPhoto());
      blobs.failNext("delete");
      await photos.deletePhoto(ada, photo.id);
      expect(db.photos.has(photo.id)).to.equal(false);
      expect(db.queue.get(`${ada}/${photo.id}`)).to.deep.include({ attempts: 1, retryInMs: 0 });
      expect(db.queue.get(`${ada}/${photo.id}`)?.lastError).to.contain("blob store unavailable");
    });
  });

  describe("listing", () => {
    async function upload(photos: ReturnType<typeof setup>["photos"], n: number): Promise<Photo[]> {
      const added: Photo[] = [];
      for (let i = 0; i < n; i++) added.push(await photos.addPhoto(ada, `p${i}.png`, spooledPhoto()));
      return added;
    }

    it("round-trips a page token through its opaque form", () => {
      const key = { createdAt: "2030-01-01T00:00:00.123456Z", id: randomUUID() };
      const token = encodePageToken(key);
      expect(token).to.match(/^[A-Za-z0-9_-]+$/);
      expect(decodePageToken(token)).to.deep.equal(key);
    });

    it("pages newest first with tokens until the last page, which has none", async () => {
      const { photos } = setup();
      const added = await upload(photos, 5);
      const first = await photos.listPhotos(ada, 2, "");
      const second = await photos.listPhotos(ada, 2, first.nextPageToken);
      const third = await photos.listPhotos(ada, 2, second.nextPageToken);
      const ids = [...first.photos, ...second.photos, ...third.photos].map((p) => p.id);
      expect(ids).to.deep.equal(added.map((p) => p.id).reverse());
      expect(first.nextPageToken).to.not.equal("");
      expect(third.nextPageToken).to.equal("");
    });

    it("uses the default page size for 0 and caches pages under the size actually used", async () => {
      const { photos, cache } = setup();
      await upload(photos, 3);
      expect((await photos.listPhotos(ada, 0, "")).photos).to.have.length(3);
      expect([...cache.pages.keys()]).to.deep.equal([`${ada} 20 `]);
      // Served from the cache: a page the store no longer matches.
      cache.pages.set(`${ada} 20 `, { photos: [], nextPageToken: "" });
      expect((await photos.listPhotos(ada, 20, "")).photos).to.deep.equal([]);
    });

    it("rejects a malformed page token and a page size out of range with INVALID_ARGUMENT", async () => {
      const { photos } = setup();
      const notJson = Buffer.from("hello").toString("base64url");
      const wrongShape = Buffer.from(JSON.stringify(["yesterday", "x"])).toString("base64url");
      for (const token of ["!!!", notJson, wrongShape, "a".repeat(500)]) {
        const error = await rejectionOf(photos.listPhotos(ada, 10, token));
        expect(error.code).to.equal(Code.InvalidArgument);
        expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["pageToken"]);
      }
      for (const size of [-1, 101, 1.5]) {
        const error = await rejectionOf(photos.listPhotos(ada, size, ""));
        expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["pageSize"]);
      }
    });
  });
});
