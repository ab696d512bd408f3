// PostgreSQL configured the same way in every process: a bounded pool with timeouts, a readiness
// check, database bootstrap, transactions, and the one place that classifies pg errors.
import { userInfo } from "node:os";
import pg from "pg";
import type { DependencyCheck } from "../health/dependency-check.js";

// Type parsing stays at pg's defaults on purpose: timestamptz → Date, int8 (OID 20, also count(*))
// → string, since a JS number loses precision above 2^53. pg.types.setTypeParser is process-wide,
// so changing it here would silently change every other pool in the process.

export interface PgLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface PgPoolOptions {
  /** Most connections the pool opens at once; further checkouts queue for up to 5 s. */
  readonly max: number;
  /** Shown in pg_stat_activity, so a DBA can tell which process holds a connection. */
  readonly applicationName: string;
  readonly logger: PgLogger;
  /** Server-side limit per statement (error 57014 when exceeded); 10 000 ms by default; 0 leaves the server's setting (normally none). */
  readonly statementTimeoutMs?: number;
}

/**
 * A pool with production settings: at most `max` connections, 5 s to connect or to wait for a free
 * client (then the query rejects with an error `isPgUnavailable` recognises), idle connections closed
 * after 30 s, TCP keep-alive, a per-statement timeout and a 60 s limit on sessions left idle inside a
 * transaction. Errors of idle connections (a server restart, a network drop) are logged and the
 * connection discarded; they never crash the process. Never throws: connecting happens on first use.
 */
export function createPgPool(url: string, options: PgPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: withDefaultUser(url),
    max: options.max,
    application_name: options.applicationName,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    // A transaction left open (a handler awaiting something slow between queries) holds locks and
    // blocks vacuum; the server ends such a session rather than let it block everything else.
    idle_in_transaction_session_timeout: 60_000,
  });
  pool.on("error", (error: Error) => {
    // pg-pool drops the broken client itself; the next checkout opens a fresh connection.
    if (isPgUnavailable(error)) options.logger.warn("postgres idle connection lost", { err: error });
    else options.logger.error("postgres idle connection error", { err: error });
  });
  return pool;
}

/** Readiness: the pool can run SELECT 1. Rejects when no connection can be had (dead server, full pool). */
export function pgDependency(pool: pg.Pool): DependencyCheck {
  return {
    name: "postgres",
    check: async () => (await pool.query<{ ok: number }>("SELECT 1 AS ok")).rows[0]?.ok === 1,
  };
}

/**
 * Creates the database named in `url` unless it exists, connected to the "postgres" database of the
 * same server with the same credentials. Concurrent calls (several processes starting together) all
 * succeed. Rejects with a message naming host:port when the server cannot be reached or refuses the
 * login, and naming the database when CREATE DATABASE is refused (e.g. no CREATEDB privilege); the pg
 * error stays in `cause`. Throws at once if `url` is not a URL naming a database.
 */
export async function ensureDatabase(url: string): Promise<void> {
  const target = parsePgUrl(url);
  const database = decodeURIComponent(target.pathname.slice(1));
  if (database === "") throw new Error("ensureDatabase: the url names no database");
  const where = `${target.hostname || "localhost"}:${target.port || "5432"}`;
  const adminUrl = new URL(target);
  adminUrl.pathname = "/postgres";

  const client = new pg.Client({ connectionString: withDefaultUser(adminUrl.toString()), connectionTimeoutMillis: 5000 });
  // Errors reach the connect() and query() promises; this only stops a late connection drop from
  // being an unhandled 'error' event.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new Error(`postgres not reachable at ${where}: ${describe(error)}`, { cause: error });
  }
  try {
    const existing = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (existing.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } catch (error) {
    // 42P04 duplicate_database: another process created it since our check. 23505: the same race
    // caught one step later, by the unique index of pg_database itself.
    const code = pgErrorCode(error);
    if (code !== "42P04" && code !== "23505") {
      throw new Error(`cannot create database "${database}" on ${where}: ${describe(error)}`, { cause: error });
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Runs `fn` between BEGIN and COMMIT on one pooled client and resolves with its result. On any error
 * (from BEGIN, `fn` or COMMIT) it issues ROLLBACK and rethrows the original error unchanged. The client
 * always goes back to the pool, or is destroyed when ROLLBACK itself failed or the connection broke, so
 * a half-open transaction never reaches another caller. `fn` must not keep using the client after it
 * settles.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // While checked out the pool does not listen for the client's errors; an unheard 'error' event (the
  // connection dropping between two queries) would crash the process.
  let broken: Error | undefined;
  const onError = (error: Error) => (broken ??= error);
  client.on("error", onError);
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    try {
      await client.query("ROLLBACK");
    } catch (rollbackError) {
      broken ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}

/**
 * The SQLSTATE of a pg server error (e.g. "23505"), looking through `cause` chains, or undefined for
 * anything else (Node socket errors such as ECONNREFUSED included).
 */
export function pgErrorCode(error: unknown): string | undefined {
  for (const e of causeChain(error)) {
    if (isDatabaseError(e)) return e.code;
  }
  return undefined;
}

// Class 08 connection_exception is matched by prefix; these are the others meaning "not now".
const unavailableSqlStates = new Set([
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down, in recovery)
  "53300", // too_many_connections
]);

const unavailableSocketCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNABORTED",
]);

// pg and pg-pool raise these without any code, so their fixed texts are the only handle on them.
const unavailableDriverMessages = new Set([
  "Connection terminated unexpectedly",
  "Connection terminated due to connection timeout",
  "timeout exceeded when trying to connect",
  "timeout expired",
  "Client has encountered a connection error and is not queryable",
  "Query read timeout",
]);

/**
 * True when `error` (or anything in its `cause` chain) means the database cannot be reached or is
 * going away: refused/reset/timed-out connections, a full pool, admin or crash shutdown, a server not
 * accepting connections yet, too many connections, any class 08 SQLSTATE. Services map these to
 * UNAVAILABLE, which clients may retry. False for everything else, statement errors included.
 */
export function isPgUnavailable(error: unknown): boolean {
  return causeChain(error).some((e) => {
    if (isDatabaseError(e)) return e.code.startsWith("08") || unavailableSqlStates.has(e.code);
    if (!(e instanceof Error)) return false;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && unavailableSocketCodes.has(code)) return true;
    // Node's happy-eyeballs connect reports one error per address tried.
    if (e instanceof AggregateError && e.errors.some((inner) => isPgUnavailable(inner))) return true;
    return unavailableDriverMessages.has(e.message);
  });
}

// Duck-typed rather than `instanceof pg.DatabaseError`, so errors from another copy of pg count too;
// the severity field is what tells a server error from a Node socket error with a 5-letter code (EPIPE).
function isDatabaseError(error: unknown): error is Error & { code: string; severity: string } {
  if (!(error instanceof Error)) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && typeof severity === "string";
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
    if (!(e instanceof Error)) break;
  }
  return chain;
}

function parsePgUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new Error("ensureDatabase: expected a postgres:// url");
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node's AggregateError for a refused connection has an empty message and the reason in `code`.
  return error.message || (error as NodeJS.ErrnoException).code || error.name;
}

/**
 * A URL without a user gets the OS user's name, as psql would: pg itself falls back only to $USER,
 * which is unset in some service environments. PGUSER, when set, still wins.
 */
export function withDefaultUser(url: string): string {
  const parsed = new URL(url);
  if (parsed.username !== "" || process.env.PGUSER !== undefined) return url;
  parsed.username = process.env.USER ?? userInfo().username;
  return parsed.toString();
}
