import { expect } from "chai";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../test/support/pg.js";
import { runMigrations } from "./migrations.js";
import { createPgPool, pgErrorCode } from "./postgres.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const fixtureScript = fileURLToPath(new URL("./test-fixtures/run-migrations.ts", import.meta.url));
const silent = { warn: () => {}, error: () => {} };

interface Recorded {
  version: number;
  name: string;
  checksum: string;
  applied_at: Date;
}

describe("runMigrations", () => {
  let db: TestDatabase;
  let dir: string;
  const extraPools: pg.Pool[] = [];

  beforeEach(async () => {
    db = await createTestDatabase("migrations");
    dir = await mkdtemp(join(tmpdir(), "usermesh-migrations-"));
  });
  afterEach(async () => {
    await Promise.all(extraPools.splice(0).map((pool) => pool.end()));
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const write = (files: Record<string, string>) => Promise.all(Object.entries(files).map(([name, sql]) => writeFile(join(dir, name), sql)));
  const recorded = async (table = "schema_migrations") =>
    (await db.pool.query<Recorded>(`SELECT version, name, checksum, applied_at FROM ${table} ORDER BY version`)).rows;
  const exists = async (relation: string) =>
    (await db.pool.query<{ oid: string | null }>("SELECT to_regclass($1)::text AS oid", [relation])).rows[0].oid !== null;
  const rejection = async (promise: Promise<unknown>): Promise<Error> => {
    try {
      await promise;
    } catch (error) {
      return error as Error;
    }
    throw new Error("expected a rejection");
  };

  it("applies every migration of a fresh database in version order and records each one", async () => {
    // Sorted as text, 10_ would come before 1_ and fail on the missing table.
    const files = {
      "1_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);",
      "2_add_email.sql": "ALTER TABLE users ADD COLUMN email text;",
      "10_index_email.sql": "CREATE UNIQUE INDEX users_email ON users (email);",
    };
    await write(files);

    const result = await runMigrations(db.pool, { dir });

    expect(result.applied).to.deep.equal(["1_create_users.sql", "2_add_email.sql", "10_index_email.sql"]);
    const rows = await recorded();
    expect(rows.map((r) => [r.version, r.name])).to.deep.equal([
      [1, "1_create_users.sql"],
      [2, "2_add_email.sql"],
      [10, "10_index_email.sql"],
    ]);
    expect(rows[0].checksum).to.equal(createHash("sha256").update(files["1_create_users.sql"]).digest("hex"));
    expect(rows[0].applied_at).to.be.instanceOf(Date);
    expect(await exists("users_email")).to.equal(true);
  });

  it("applies nothing when run again", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);" });
    await runMigrations(db.pool, { dir });

    const again = await runMigrations(db.pool, { dir });

    expect(again.applied).to.deep.equal([]);
    expect(await recorded()).to.have.length(1);
  });

  it("applies a file added later on its own", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);" });
    await runMigrations(db.pool, { dir });
    await write({ "0002_create_photos.sql": "CREATE TABLE photos (id int PRIMARY KEY, user_id int REFERENCES users);" });

    const later = await runMigrations(db.pool, { dir });

    expect(later.applied).to.deep.equal(["0002_create_photos.sql"]);
    expect((await recorded()).map((r) => r.version)).to.deep.equal([1, 2]);
  });

  it("rolls a failing migration back completely and names its file in the error", async () => {
    await write({
      "0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);",
      "0002_broken.sql": "CREATE TABLE half_done (id int);\nCREAT TABLE oops (id int);",
      "0003_never.sql": "CREATE TABLE never (id int);",
    });

    const error = await rejection(runMigrations(db.pool, { dir }));

    expect(error.message).to.include("0002_broken.sql");
    expect(pgErrorCode(error)).to.equal("42601");
    expect(await exists("half_done")).to.equal(false);
    expect(await exists("never")).to.equal(false);
    expect((await recorded()).map((r) => r.name)).to.deep.equal(["0001_create_users.sql"]);
  });

  it("refuses to run when an applied file was edited, naming the file", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);" });
    await runMigrations(db.pool, { dir });
    await write({
      "0001_create_users.sql": "CREATE TABLE users (id bigint PRIMARY KEY);",
      "0002_create_photos.sql": "CREATE TABLE photos (id int);",
    });

    const error = await rejection(runMigrations(db.pool, { dir }));

    expect(error.message).to.include("0001_create_users.sql").and.include("checksum");
    expect(await exists("photos")).to.equal(false);
  });

  it("refuses to run when an applied file disappeared, naming the file", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);" });
    await runMigrations(db.pool, { dir });
    await unlink(join(dir, "0001_create_users.sql"));
    await write({ "0002_create_photos.sql": "CREATE TABLE photos (id int);" });

    const error = await rejection(runMigrations(db.pool, { dir }));

    expect(error.message).to.include("0001_create_users.sql");
    expect(await exists("photos")).to.equal(false);
  });

  it("rejects a malformed file name before touching the database", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int);", "create_photos.sql": "CREATE TABLE photos (id int);" });

    const error = await rejection(runMigrations(db.pool, { dir }));

    expect(error.message).to.include("create_photos.sql");
    expect(await exists("schema_migrations")).to.equal(false);
    expect(await exists("users")).to.equal(false);
  });

  it("rejects two files with the same version before touching the database", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int);", "1_create_photos.sql": "CREATE TABLE photos (id int);" });

    const error = await rejection(runMigrations(db.pool, { dir }));

    expect(error.message).to.include("0001_create_users.sql").and.include("1_create_photos.sql");
    expect(await exists("schema_migrations")).to.equal(false);
  });

  it("keeps its bookkeeping in the table it is given and ignores files that are not .sql", async () => {
    await write({ "0001_create_users.sql": "CREATE TABLE users (id int);", "README.md": "not a migration" });

    const result = await runMigrations(db.pool, { dir, table: "user_schema_versions" });

    expect(result.applied).to.deep.equal(["0001_create_users.sql"]);
    expect((await recorded("user_schema_versions")).map((r) => r.name)).to.deep.equal(["0001_create_users.sql"]);
    expect(await exists("schema_migrations")).to.equal(false);
  });

  describe("when two runs start at once", () => {
    const names = ["0001_create_a.sql", "0002_create_b.sql", "0003_create_c.sql", "0004_create_d.sql"];

    // The first migration waits on a table lock the test holds, so the test can see both runs
    // started (one stuck on that lock, the other queued on the advisory lock) before letting go.
    beforeEach(async () => {
      await db.pool.query("CREATE TABLE gate (id int)");
      await write({
        [names[0]]: "LOCK TABLE gate IN SHARE MODE; SELECT pg_sleep(0.2); CREATE TABLE a (id int);",
        [names[1]]: "SELECT pg_sleep(0.2); CREATE TABLE b (id int);",
        [names[2]]: "SELECT pg_sleep(0.2); CREATE TABLE c (id int);",
        [names[3]]: "SELECT pg_sleep(0.2); CREATE TABLE d (id int);",
      });
    });

    const closeGate = async () => {
      const client = await db.pool.connect();
      await client.query("BEGIN");
      await client.query("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
      let opened: Promise<void> | undefined;
      return () =>
        (opened ??= (async () => {
          await client.query("COMMIT").catch(() => {});
          client.release();
        })());
    };

    const waitForBothRuns = async () => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const { rows } = await db.pool.query<{ wait_event: string }>(
          "SELECT wait_event FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
          [db.name],
        );
        const events = rows.map((r) => r.wait_event).sort();
        if (events.join() === "advisory,relation") return;
        if (Date.now() > deadline) throw new Error(`both runs never waited together; lock waits seen: ${JSON.stringify(events)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    const expectEachAppliedOnce = async (appliedByRun: string[][]) => {
      expect(appliedByRun.flat().sort()).to.deep.equal(names);
      expect(appliedByRun.map((applied) => applied.length).sort()).to.deep.equal([0, names.length]);
      expect((await recorded()).map((r) => r.name)).to.deep.equal(names);
    };

    it("applies each migration once from two pools of one process", async () => {
      const otherPool = createPgPool(db.url, { max: 2, applicationName: "migrations-test-b", logger: silent });
      extraPools.push(otherPool);
      const openGate = await closeGate();
      let results: { applied: string[] }[];
      try {
        const runs = Promise.all([runMigrations(db.pool, { dir }), runMigrations(otherPool, { dir })]);
        runs.catch(() => {}); // observed below; only guards against an unhandled rejection meanwhile
        await waitForBothRuns();
        await openGate();
        results = await runs;
      } finally {
        await openGate();
      }

      await expectEachAppliedOnce(results.map((r) => r.applied));
    });

    it("applies each migration once from two OS processes, both exiting 0", async () => {
      const openGate = await closeGate();
      let outcomes: { code: number | null; stdout: string; stderr: string }[];
      const children = [0, 1].map(() =>
        spawn(process.execPath, ["--import", "tsx", fixtureScript, db.url, dir], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] }),
      );
      try {
        const exits = Promise.all(
          children.map(
            (child) =>
              new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
                let stdout = "";
                let stderr = "";
                child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
                child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
                child.once("error", reject);
                child.once("close", (code) => resolve({ code, stdout, stderr }));
              }),
          ),
        );
        await waitForBothRuns();
        await openGate();
        outcomes = await exits;
      } finally {
        await openGate();
        for (const child of children) if (child.exitCode === null) child.kill();
      }

      for (const outcome of outcomes) expect(outcome.code, outcome.stderr).to.equal(0);
      const applied = outcomes.map((outcome) => {
        const done = outcome.stdout
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { msg: string; applied?: string[] })
          .find((line) => line.msg === "done");
        expect(done, outcome.stdout).to.not.equal(undefined);
        return done?.applied ?? [];
      });
      await expectEachAppliedOnce(applied);
    });
  });
});
