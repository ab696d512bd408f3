// The blob janitor over the real PostgreSQL deletion queue and a fake blob store that fails on demand:
// failed deletes are retried with a recorded backoff until they succeed, and their rows go then.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { waitFor } from "../../../internal/events/test-fixtures/broker.js";
import { runMigrations } from "../../../internal/stores/migrations.js";
import { createPgPool } from "../../../internal/stores/postgres.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/pg.js";
import { backoffDelay, createBlobJanitor, type BlobJanitorOptions } from "../blob-janitor.js";
import { createPgPhotoStore, type PgPhotoStore } from "../pg-photo-store.js";
import { createFakeBlobStore, createRecordingLogger } from "./fakes.js";

const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

interface QueueRow {
  attempts: number;
  last_error: string | null;
  /** Seconds from now until the next attempt. */
  wait_s: number;
}

describe("blob janitor (real PostgreSQL)", function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let store: PgPhotoStore;

  before(async () => {
    db = await createTestDatabase("blob_janitor");
    await runMigrations(db.pool, { dir: migrationsDir });
    store = createPgPhotoStore(db.pool);
  });
  after(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db.pool.query("TRUNCATE blob_deletions");
  });

  const rowOf = async (key: string): Promise<QueueRow | undefined> =>
    (
      await db.pool.query<QueueRow>(
        `SELECT attempts, last_error, extract(epoch from next_attempt_at - now())::float8 AS wait_s
         FROM blob_deletions WHERE storage_key = $1`,
        [key],
      )
    ).rows[0];
  const makeDue = (key: string) =>
    db.pool.query("UPDATE blob_deletions SET next_attempt_at = now() WHERE storage_key = $1", [key]);

  function janitor(overrides: Partial<BlobJanitorOptions> = {}) {
    const blobs = createFakeBlobStore();
    const logger = createRecordingLogger();
    const counts = { deleted: 0, failed: 0 };
    const created = createBlobJanitor({
      deletions: store,
      blobs,
      logger,
      intervalMs: 30_000,
      batchSize: 2,
      backoffMs: { min: 60_000, max: 300_000 },
      counters: { deleted: { inc: () => counts.deleted++ }, failed: { inc: () => counts.failed++ } },
      ...overrides,
    });
    return { janitor: created, blobs, logger, counts };
  }

  it("doubles the backoff per failure up to its maximum", () => {
    const bounds = { min: 1000, max: 5000 };
    expect([1, 2, 3, 4, 10].map((n) => backoffDelay(n, bounds))).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
  });

  it("retries a failing delete with a recorded backoff until it succeeds, then removes the row", async () => {
    const { janitor: j, blobs, counts } = janitor();
    const key = `${randomUUID()}/${randomUUID()}`;
    await store.enqueueBlobDeletions([key]);
    blobs.failNext("delete", 2);

    expect(await j.runOnce()).to.deep.equal({ deleted: 0, failed: 1 });
    const first = await rowOf(key);
    expect(first).to.include({ attempts: 1 });
    expect(first?.last_error).to.contain("blob store unavailable");
    expect(first?.wait_s).to.be.within(55, 60);
    // Not due yet: a pass leaves it alone.
    expect(await j.runOnce()).to.deep.equal({ deleted: 0, failed: 0 });

    await makeDue(key);
    expect(await j.runOnce()).to.deep.equal({ deleted: 0, failed: 1 });
    const second = await rowOf(key);
    expect(second).to.include({ attempts: 2 });
    expect(second?.wait_s).to.be.within(115, 120);

    await makeDue(key);
    expect(await j.runOnce()).to.deep.equal({ deleted: 1, failed: 0 });
    expect(await rowOf(key)).to.equal(undefined);
    expect(blobs.calls).to.deep.equal([`delete ${key}`, `delete ${key}`, `delete ${key}`]);
    expect(counts).to.deep.equal({ deleted: 1, failed: 2 });
  });

  it("works through more due rows than one batch in a single pass", async () => {
    const { janitor: j, blobs } = janitor({ batchSize: 2 });
    const keys = Array.from({ length: 5 }, () => `${randomUUID()}/${randomUUID()}`);
    await store.enqueueBlobDeletions(keys);
    expect(await j.runOnce()).to.deep.equal({ deleted: 5, failed: 0 });
    expect([...blobs.deleted].sort()).to.deep.equal([...keys].sort());
    expect((await db.pool.query("SELECT 1 FROM blob_deletions")).rowCount).to.equal(0);
  });

  it("deletes queued blobs on its own once started, and stops", async () => {
    const { janitor: j, blobs } = janitor({ intervalMs: 20, backoffMs: { min: 10, max: 20 } });
    const key = `${randomUUID()}/${randomUUID()}`;
    await store.enqueueBlobDeletions([key]);
    blobs.failNext("delete", 2);
    j.start();
    try {
      await waitFor(async () => (await rowOf(key)) === undefined, "the janitor to delete the blob", 5000);
    } finally {
      await j.stop();
    }
    expect(blobs.deleted).to.deep.equal([key]);
  });

  it("keeps going when its queue cannot be read, warning once per outage", async () => {
    const pool = createPgPool("postgres://127.0.0.1:1/nowhere", {
      max: 1,
      applicationName: "test-unreachable",
      logger: { warn: () => {}, error: () => {} },
    });
    const logger = createRecordingLogger();
    const j = createBlobJanitor({
      deletions: createPgPhotoStore(pool),
      blobs: createFakeBlobStore(),
      logger,
      intervalMs: 10,
      batchSize: 2,
      backoffMs: { min: 10, max: 20 },
    });
    j.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      await j.stop();
      await pool.end();
    }
    expect(logger.lines.map((l) => `${l.level} ${l.msg}`)).to.deep.equal(["warn blob janitor could not read its queue; retrying"]);
  });
});
