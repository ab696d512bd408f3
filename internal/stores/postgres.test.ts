import { expect } from "chai";
import type pg from "pg";
import { createTestDatabase, dropTestDatabase, testDatabaseUrl, uniqueDatabaseName, type TestDatabase } from "../../test/support/pg.js";
import { createPgPool, ensureDatabase, isPgUnavailable, pgDependency, pgErrorCode, withTransaction } from "./postgres.js";

const closedPortUrl = "postgres://127.0.0.1:1/nothing";

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function recordingLogger() {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  return {
    lines,
    warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: "warn", msg, fields }),
    error: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: "error", msg, fields }),
  };
}

describe("postgres", () => {
  let db: TestDatabase;
  const pools: pg.Pool[] = [];
  const databases: string[] = [];

  beforeEach(async () => {
    db = await createTestDatabase("postgres");
    await db.pool.query("CREATE TABLE items (id int PRIMARY KEY, name text)");
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.end()));
    await Promise.all(databases.splice(0).map((name) => dropTestDatabase(name)));
    await db.drop();
  });

  const count = async () => (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM items")).rows[0].n;
  const databaseExists = async (name: string) => (await db.pool.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
  const deadPool = () => {
    const pool = createPgPool(closedPortUrl, { max: 1, applicationName: "postgres-test", logger: recordingLogger() });
    pools.push(pool);
    return pool;
  };

  describe("createPgPool", () => {
    it("applies the statement timeout it is given", async () => {
      const pool = createPgPool(db.url, { max: 1, applicationName: "postgres-test", logger: recordingLogger(), statementTimeoutMs: 100 });
      pools.push(pool);

      const error = await rejection(pool.query("SELECT pg_sleep(1)"));

      expect(pgErrorCode(error)).to.equal("57014");
    });

    it("logs an idle connection killed by the server instead of crashing", async () => {
      const logger = recordingLogger();
      const pool = createPgPool(db.url, { max: 1, applicationName: "postgres-test-idle", logger });
      pools.push(pool);
      await pool.query("SELECT 1");

      await db.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'postgres-test-idle'");
      for (let i = 0; i < 100 && logger.lines.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));

      expect(logger.lines.map((l) => [l.level, l.msg])).to.deep.equal([["warn", "postgres idle connection lost"]]);
      expect((await pool.query<{ ok: number }>("SELECT 1 AS ok")).rows[0].ok).to.equal(1);
    });

    it("reads bigint as a string and timestamptz as a Date", async () => {
      const { rows } = await db.pool.query<{ big: unknown; at: unknown }>("SELECT 9007199254740993::bigint AS big, now() AS at");

      expect(rows[0].big).to.equal("9007199254740993");
      expect(rows[0].at).to.be.instanceOf(Date);
    });
  });

  describe("withTransaction", () => {
    it("commits what the callback wrote and resolves with its result", async () => {
      const result = await withTransaction(db.pool, async (client) => {
        await client.query("INSERT INTO items VALUES (1, 'one')");
        return "done";
      });

      expect(result).to.equal("done");
      expect(await count()).to.equal(1);
    });

    it("rolls back everything and rethrows the callback's error", async () => {
      const boom = new Error("boom");

      const error = await rejection(
        withTransaction(db.pool, async (client) => {
          await client.query("INSERT INTO items VALUES (1, 'one')");
          throw boom;
        }),
      );

      expect(error).to.equal(boom);
      expect(await count()).to.equal(0);
      expect(db.pool.idleCount).to.equal(db.pool.totalCount);
    });

    it("destroys the client when the connection died inside the transaction", async () => {
      const error = await rejection(withTransaction(db.pool, (client) => client.query("SELECT pg_terminate_backend(pg_backend_pid())")));

      expect(isPgUnavailable(error)).to.equal(true);
      expect(db.pool.totalCount).to.equal(0);
      // The dead client left the pool; the next query gets a working one.
      expect(await count()).to.equal(0);
      expect((await db.pool.query<{ ok: number }>("SELECT 1 AS ok")).rows[0].ok).to.equal(1);
    });
  });

  describe("ensureDatabase", () => {
    it("creates a missing database and leaves an existing one alone", async () => {
      const name = uniqueDatabaseName("ensure");
      databases.push(name);

      await ensureDatabase(testDatabaseUrl(name));
      expect(await databaseExists(name)).to.equal(true);
      await ensureDatabase(testDatabaseUrl(name));

      expect(await databaseExists(name)).to.equal(true);
    });

    it("succeeds for every one of five racing calls", async () => {
      const name = uniqueDatabaseName("ensure_race");
      databases.push(name);

      await Promise.all(Array.from({ length: 5 }, () => ensureDatabase(testDatabaseUrl(name))));

      expect(await databaseExists(name)).to.equal(true);
    });

    it("names host and port when the server is unreachable", async () => {
      const error = await rejection(ensureDatabase(closedPortUrl));

      expect((error as Error).message).to.include("127.0.0.1:1");
      expect(isPgUnavailable(error)).to.equal(true);
    });
  });

  describe("pgErrorCode", () => {
    it("gives 23505 for a unique violation", async () => {
      await db.pool.query("INSERT INTO items VALUES (1, 'one')");

      const error = await rejection(db.pool.query("INSERT INTO items VALUES (1, 'again')"));

      expect(pgErrorCode(error)).to.equal("23505");
    });

    it("gives undefined for errors that are not from the server", async () => {
      const refused = await rejection(deadPool().query("SELECT 1"));

      expect(pgErrorCode(refused)).to.equal(undefined);
      expect(pgErrorCode(new Error("plain"))).to.equal(undefined);
      expect(pgErrorCode("23505")).to.equal(undefined);
    });
  });

  describe("isPgUnavailable", () => {
    it("is true for a pool pointed at a closed port", async () => {
      const error = await rejection(deadPool().query("SELECT 1"));

      expect(isPgUnavailable(error)).to.equal(true);
    });

    it("is true when the server terminates the session (57P01)", async () => {
      const client = await db.pool.connect();
      // The dropped connection also surfaces as an 'error' event, which must be heard.
      client.on("error", () => {});
      try {
        const error = await rejection(client.query("SELECT pg_terminate_backend(pg_backend_pid())"));

        expect(pgErrorCode(error)).to.equal("57P01");
        expect(isPgUnavailable(error)).to.equal(true);
      } finally {
        client.release(true);
      }
    });

    it("is false for a syntax error and for a constraint violation", async () => {
      const syntax = await rejection(db.pool.query("SELEC 1"));
      const notNull = await rejection(db.pool.query("INSERT INTO items VALUES (NULL, 'x')"));

      expect(pgErrorCode(syntax)).to.equal("42601");
      expect(isPgUnavailable(syntax)).to.equal(false);
      expect(isPgUnavailable(notNull)).to.equal(false);
      expect(isPgUnavailable(new Error("other"))).to.equal(false);
    });
  });

  describe("pgDependency", () => {
    it("is named postgres and up on a live pool", async () => {
      const dependency = pgDependency(db.pool);

      expect(dependency.name).to.equal("postgres");
      expect(await dependency.check()).to.equal(true);
    });

    it("is down on a pool that cannot connect", async () => {
      const dependency = pgDependency(deadPool());

      const up = await dependency.check().catch(() => false);

      expect(up).to.equal(false);
    });
  });
});
