// The PostgreSQL photo store against a real PostgreSQL: a fresh database per run, migrated from
// services/photo/migrations; the domain runs over it where paging through real keysets is the point.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { reasonOf } from "../../../internal/errors/errors.js";
import { runMigrations } from "../../../internal/stores/migrations.js";
import { createPgPool } from "../../../internal/stores/postgres.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/pg.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createPgPhotoStore, type PgPhotoStore } from "../pg-photo-store.js";
import { createPhotos, type Photo, type StoredPhoto } from "../photos.js";
import { createFakeBlobStore, createFakePhotoListCache, createRecordingLogger } from "./fakes.js";

const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

describe("postgres photo store (real PostgreSQL)", function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let store: PgPhotoStore;

  before(async () => {
    db = await createTestDatabase("photo_store");
    const { applied } = await runMigrations(db.pool, { dir: migrationsDir });
    expect(applied).to.deep.equal(["0001_users_photos.sql", "0002_blob_deletions.sql"]);
    store = createPgPhotoStore(db.pool);
  });
  after(async () => {
    await db?.drop();
  });

  const newPhoto = (userId: string, overrides: Partial<StoredPhoto> = {}): StoredPhoto => {
    const id = randomUUID();
    return {
      id,
      userId,
      storageKey: `${userId}/${id}`,
      contentType: "image/jpeg",
      sizeBytes: 10 * 1024 * 1024,
      width: 4000,
      height: 3000,
      sha256: "b".repeat(64),
      filename: "IMG_0001.JPG",
      createdAt: new Date("2030-01-01T00:00:00.123Z"),
      ...overrides,
    };
  };

  async function knownUser(): Promise<string> {
    const userId = randomUUID();
    expect(await store.admitUser(userId)).to.equal(true);
    return userId;
  }

  const queued = async (keys: string[]) =>
    (await db.pool.query<{ storage_key: string }>("SELECT storage_key FROM blob_deletions WHERE storage_key = ANY($1)", [keys]))
      .rows.map((r) => r.storage_key)
      .sort();

  it("applies its migrations once: a second run is a no-op", async () => {
    expect((await runMigrations(db.pool, { dir: migrationsDir })).applied).to.deep.equal([]);
  });

  it("inserts a photo and finds it only for its owner", async () => {
    const userId = await knownUser();
    const photo = newPhoto(userId);
    expect(await store.insertPhoto(photo)).to.deep.equal(photo);
    expect(await store.findPhoto(userId, photo.id)).to.deep.equal(photo);
    expect(await store.findPhoto(randomUUID(), photo.id)).to.equal(undefined);
    expect(await store.findPhoto(userId, randomUUID())).to.equal(undefined);
  });

  it("admits a user idempotently", async () => {
    const userId = await knownUser();
    expect(await store.admitUser(userId)).to.equal(true);
    const { rows } = await db.pool.query("SELECT id FROM users WHERE id = $1", [userId]);
    expect(rows).to.have.length(1);
  });

  it("pages 25 photos by 10, newest first, with no duplicate or gap and no token after the last page", async () => {
    const userId = await knownUser();
    const other = await knownUser();
    // Groups of four share a millisecond (the id breaks ties). The first page ends inside the group of
    // photos 12..15, which differ only in microseconds: a millisecond cursor would skip 13 and 14.
    const base = Date.UTC(2030, 5, 1);
    const inserted: StoredPhoto[] = [];
    for (let i = 0; i < 25; i++) {
      inserted.push(await store.insertPhoto(newPhoto(userId, { createdAt: new Date(base + Math.floor(i / 4) * 1000) })));
    }
    await store.insertPhoto(newPhoto(other, { createdAt: new Date(base + 2500) }));
    for (const [i, micros] of [[12, 3], [13, 2], [14, 1]]) {
      await db.pool.query("UPDATE photos SET created_at = created_at + make_interval(secs => $2) WHERE id = $1", [
        inserted[i].id,
        micros / 1e6,
      ]);
    }
    const { rows } = await db.pool.query<{ id: string }>(
      "SELECT id FROM photos WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
      [userId],
    );
    const expected = rows.map((r) => r.id);

    const photos = createPhotos({
      store,
      users: store,
      deletions: store,
      blobs: createFakeBlobStore(),
      cache: createFakePhotoListCache(),
      pagination: { defaultPageSize: 20, maxPageSize: 100 },
      logger: createRecordingLogger(),
    });
    const pages: Photo[][] = [];
    let token = "";
    do {
      const page = await photos.listPhotos(userId, 10, token);
      pages.push([...page.photos]);
      token = page.nextPageToken;
    } while (token !== "" && pages.length < 10);

    expect(pages.map((p) => p.length)).to.deep.equal([10, 10, 5]);
    const seen = pages.flat().map((p) => p.id);
    expect(seen).to.deep.equal(expected);
    expect(pages[0].at(-1)?.id).to.equal(inserted[12].id);
    expect(new Set(seen).size).to.equal(25);
    expect(pages.flat().every((p) => p.userId === userId)).to.equal(true);
  });

  it("ends on a full last page without a token", async () => {
    const userId = await knownUser();
    for (let i = 0; i < 4; i++) await store.insertPhoto(newPhoto(userId, { createdAt: new Date(Date.UTC(2030, 0, 1, 0, 0, i)) }));
    const first = await store.listPhotos(userId, 2);
    expect(first.nextKey).to.not.equal(undefined);
    const second = await store.listPhotos(userId, 2, first.nextKey);
    expect(second.photos).to.have.length(2);
    expect(second.nextKey).to.equal(undefined);
  });

  it("drops a user's photos with the user (ON DELETE CASCADE)", async () => {
    const userId = await knownUser();
    const photo = await store.insertPhoto(newPhoto(userId));
    await db.pool.query("DELETE FROM users WHERE id = $1", [userId]);
    expect(await store.findPhoto(userId, photo.id)).to.equal(undefined);
  });

  it("deletes a user: its blob keys queued, its photos gone with it, a tombstone left; again is a no-op", async () => {
    const userId = await knownUser();
    const bystander = await knownUser();
    const photos = [await store.insertPhoto(newPhoto(userId)), await store.insertPhoto(newPhoto(userId))];
    const kept = await store.insertPhoto(newPhoto(bystander));
    const keys = photos.map((p) => p.storageKey).sort();

    expect((await store.deleteUser(userId)).sort()).to.deep.equal(keys);
    expect(await queued(keys)).to.deep.equal(keys);
    const left = await db.pool.query("SELECT 1 FROM photos WHERE user_id = $1", [userId]);
    expect(left.rowCount).to.equal(0);
    expect((await db.pool.query("SELECT 1 FROM users WHERE id = $1", [userId])).rowCount).to.equal(0);
    expect((await db.pool.query("SELECT 1 FROM deleted_users WHERE id = $1", [userId])).rowCount).to.equal(1);
    expect(await store.findPhoto(bystander, kept.id)).to.deep.equal(kept);

    expect(await store.deleteUser(userId)).to.deep.equal([]);
  });

  it("never admits a deleted user again, and refuses its photos with FAILED_PRECONDITION USER_DELETED", async () => {
    const userId = await knownUser();
    await store.deleteUser(userId);
    expect(await store.admitUser(userId)).to.equal(false);
    expect((await db.pool.query("SELECT 1 FROM users WHERE id = $1", [userId])).rowCount).to.equal(0);
    const error = await rejectionOf(store.insertPhoto(newPhoto(userId)));
    expect(error.code).to.equal(Code.FailedPrecondition);
    expect(reasonOf(error)).to.equal("USER_DELETED");

    // A user never seen before can be tombstoned too (the delete overtook the registration).
    const stranger = randomUUID();
    expect(await store.deleteUser(stranger)).to.deep.equal([]);
    expect(await store.admitUser(stranger)).to.equal(false);
  });

  it("leaves no photo behind when an upload races the deletion of its user", async () => {
    for (let round = 0; round < 10; round++) {
      const userId = await knownUser();
      const results = await Promise.allSettled([
        store.insertPhoto(newPhoto(userId)),
        store.deleteUser(userId),
        store.insertPhoto(newPhoto(userId)),
      ]);
      const keys = results[1].status === "fulfilled" ? results[1].value : [];
      for (const [i, result] of results.entries()) {
        if (i === 1) continue;
        // Either the photo made it before the delete (then its key was queued) or it was refused.
        if (result.status === "fulfilled") expect(keys).to.include((result.value as StoredPhoto).storageKey);
        else expect(reasonOf(result.reason as never)).to.equal("USER_DELETED");
      }
      expect((await db.pool.query("SELECT 1 FROM photos WHERE user_id = $1", [userId])).rowCount).to.equal(0);
    }
  });

  it("deletes a photo and queues its blob key in the same transaction", async () => {
    const userId = await knownUser();
    const photo = await store.insertPhoto(newPhoto(userId));
    expect(await store.deletePhoto(randomUUID(), photo.id)).to.equal(undefined);
    expect(await store.deletePhoto(userId, photo.id)).to.equal(photo.storageKey);
    expect(await store.findPhoto(userId, photo.id)).to.equal(undefined);
    expect(await queued([photo.storageKey])).to.deep.equal([photo.storageKey]);
    expect(await store.deletePhoto(userId, photo.id)).to.equal(undefined);
  });

  it("keeps the photo when its blob key cannot be queued (the two writes commit together or not at all)", async () => {
    const userId = await knownUser();
    const photo = await store.insertPhoto(newPhoto(userId));
    // A trigger in this throwaway database makes the queue insert fail after the photo row is deleted.
    await db.pool.query(`
      CREATE FUNCTION refuse_queue() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'queue refused'; END $$;
      CREATE TRIGGER refuse_queue BEFORE INSERT ON blob_deletions FOR EACH ROW EXECUTE FUNCTION refuse_queue();`);
    try {
      const error = await rejectionOf(store.deletePhoto(userId, photo.id));
      expect(error.code).to.equal(Code.Internal);
      expect(error.rawMessage).to.equal("internal error");
    } finally {
      await db.pool.query("DROP TRIGGER refuse_queue ON blob_deletions; DROP FUNCTION refuse_queue();");
    }
    expect(await store.findPhoto(userId, photo.id)).to.deep.equal(photo);
    expect(await queued([photo.storageKey])).to.deep.equal([]);
  });

  describe("blob deletion queue", () => {
    beforeEach(async () => {
      await db.pool.query("TRUNCATE blob_deletions");
    });

    it("claims due rows once per lease: a second claimer skips them", async () => {
      const keys = Array.from({ length: 6 }, (_, i) => `queue-test/${i}-${randomUUID()}`);
      await store.enqueueBlobDeletions(keys);
      await store.enqueueBlobDeletions(keys.slice(0, 2));
      const [a, b] = await Promise.all([store.claimDueBlobDeletions(4, 60_000), store.claimDueBlobDeletions(4, 60_000)]);
      const claimed = [...a, ...b].map((d) => d.storageKey).sort();
      expect(claimed).to.deep.equal([...keys].sort());
      expect(await store.claimDueBlobDeletions(10, 60_000)).to.deep.equal([]);
    });

    it("records a failure with its backoff, and forgets a completed row", async () => {
      const key = `queue-test/${randomUUID()}`;
      await store.enqueueBlobDeletions([key]);
      expect(await store.claimDueBlobDeletions(10, 60_000)).to.deep.equal([{ storageKey: key, attempts: 0 }]);
      await store.failBlobDeletion(key, "Error: backend down", 90_000);
      const { rows } = await db.pool.query<{ attempts: number; last_error: string; wait_s: number }>(
        "SELECT attempts, last_error, extract(epoch from next_attempt_at - now())::float8 AS wait_s FROM blob_deletions WHERE storage_key = $1",
        [key],
      );
      expect(rows[0]).to.include({ attempts: 1, last_error: "Error: backend down" });
      expect(rows[0].wait_s).to.be.within(85, 90);
      await store.completeBlobDeletion(key);
      expect(await queued([key])).to.deep.equal([]);
    });

    it("never claims the key of a blob that photo metadata still points at", async () => {
      const userId = await knownUser();
      const photo = await store.insertPhoto(newPhoto(userId));
      await store.enqueueBlobDeletions([photo.storageKey]);
      expect(await store.claimDueBlobDeletions(10, 60_000)).to.deep.equal([]);
    });
  });

  it("answers UNAVAILABLE when PostgreSQL cannot be reached", async () => {
    const pool = createPgPool("postgres://127.0.0.1:1/nowhere", {
      max: 1,
      applicationName: "test-unreachable",
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const unreachable = createPgPhotoStore(pool);
      expect((await rejectionOf(unreachable.findPhoto(randomUUID(), randomUUID()))).code).to.equal(Code.Unavailable);
      expect((await rejectionOf(unreachable.deleteUser(randomUUID()))).code).to.equal(Code.Unavailable);
      expect((await rejectionOf(unreachable.claimDueBlobDeletions(1, 1000))).code).to.equal(Code.Unavailable);
    } finally {
      await pool.end();
    }
  });
});
