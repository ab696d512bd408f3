// A throwaway database per test on the local PostgreSQL, so runs in parallel never share state.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createPgPool, withDefaultUser } from "../../internal/stores/postgres.js";

export interface TestDatabase {
  /** Connection URL of the new database (base URL with its path replaced). */
  readonly url: string;
  readonly name: string;
  /** A pool made by createPgPool, as production code would get it. */
  readonly pool: pg.Pool;
  /** Closes the pool and drops the database, ending any other connection to it. Safe to call twice. */
  drop(): Promise<void>;
}

/**
 * The server tests use: USERMESH_TEST_PG_URL, or the local one with trust auth. A URL without a user
 * gets the OS user's name, as psql would; pg itself reads only $USER, which is unset in some shells.
 */
export const testPgBaseUrl = withDefaultUser(process.env.USERMESH_TEST_PG_URL ?? "postgres://127.0.0.1:5432/postgres");

/** Builds the URL of database `name` on the test server, without creating it. */
export function testDatabaseUrl(name: string): string {
  const url = new URL(testPgBaseUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** A fresh name test_<label>_<random>, lower-case and within PostgreSQL's 63-byte identifier limit. */
export function uniqueDatabaseName(label: string): string {
  const safe = label.toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 40);
  return `test_${safe}_${randomBytes(6).toString("hex")}`;
}

/**
 * Creates database test_<label>_<random> on the test server and a pool on it. Rejects if the server
 * cannot be reached or the role may not create databases.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = uniqueDatabaseName(label);
  await adminQuery(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = testDatabaseUrl(name);
  // Errors of idle connections are expected only once drop() has ended the pool; stay quiet.
  const silent = { warn: () => {}, error: () => {} };
  const pool = createPgPool(url, { max: 5, applicationName: `test-${name}`, logger: silent });
  let dropped: Promise<void> | undefined;
  return {
    url,
    name,
    pool,
    drop: () =>
      (dropped ??= (async () => {
        await pool.end();
        await dropTestDatabase(name);
      })()),
  };
}

/** Drops database `name` if it exists, terminating whatever is still connected to it. */
export async function dropTestDatabase(name: string): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: testPgBaseUrl, connectionTimeoutMillis: 5000 });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
