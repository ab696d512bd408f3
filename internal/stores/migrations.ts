// Applies a folder of numbered .sql files to PostgreSQL exactly once each, also when several
// instances start together (they queue on an advisory lock instead of failing).
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";

export interface MigrationLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface MigrationOptions {
  /** Folder holding NNNN_description.sql files; other files are ignored. */
  readonly dir: string;
  /** Bookkeeping table, optionally schema-qualified; "schema_migrations" by default. */
  readonly table?: string;
  readonly logger?: MigrationLogger;
}

interface MigrationFile {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

const fileNamePattern = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;
const tablePattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const maxVersion = 2_147_483_647; // the version column is an int

/**
 * Applies the .sql files of `dir` named NNNN_description.sql (NNNN the version: unique, applied in
 * increasing order, gaps allowed) that `table` does not record yet, creating the table (version int
 * primary key, name, checksum = sha256 of the file, applied_at) if needed. Resolves with the file names
 * this call applied, in order.
 *
 * One dedicated client holds a session-level pg_advisory_lock (key derived from the table name) for the
 * whole run, so a second instance waits for the first and then finds nothing to do. The run has no
 * statement timeout (a migration or that wait may take long); the client is destroyed afterwards so the
 * setting never returns to the pool. Each file runs in its own transaction together with its bookkeeping
 * row, so a file must not contain BEGIN/COMMIT nor statements that refuse a transaction (CREATE INDEX
 * CONCURRENTLY, VACUUM).
 *
 * Rejects, before touching the database, if `dir` cannot be read, a .sql file name is malformed, two files
 * share a version, or the table name is not a plain identifier. Rejects, applying nothing, if an applied
 * migration's file was edited (checksum mismatch) or is gone. When a migration fails it is rolled back
 * entirely and the error names its file (the pg error in `cause`); the ones before it stay applied.
 */
export async function runMigrations(pool: pg.Pool, options: MigrationOptions): Promise<{ applied: string[] }> {
  const table = options.table ?? "schema_migrations";
  if (!tablePattern.test(table)) throw new Error(`runMigrations: table name ${JSON.stringify(table)} is not a plain identifier`);
  const files = await readMigrationFiles(options.dir);
  const quotedTable = table.split(".").map((part) => pg.escapeIdentifier(part)).join(".");
  const lockKey = advisoryLockKey(table);

  const client = await pool.connect();
  // A checked-out client has no pool listener; an unheard 'error' event would crash the process.
  let broken: Error | undefined;
  const onError = (error: Error) => (broken ??= error);
  client.on("error", onError);
  try {
    await client.query("SET statement_timeout = 0");
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [lockKey]);
    if (rows[0]?.locked !== true) {
      options.logger?.info("waiting for the migration lock held by another instance", { table });
      await client.query("SELECT pg_advisory_lock($1::bigint)", [lockKey]);
    }
    try {
      return { applied: await applyPending(client, files, quotedTable, options) };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey]).catch(() => {});
    }
  } finally {
    client.off("error", onError);
    // Destroyed rather than returned: it carries statement_timeout = 0 (and, had the unlock failed, the lock).
    client.release(broken ?? true);
  }
}

async function applyPending(client: pg.PoolClient, files: MigrationFile[], quotedTable: string, options: MigrationOptions): Promise<string[]> {
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${quotedTable} (
       version integer PRIMARY KEY,
       name text NOT NULL,
       checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  const recorded = await client.query<{ version: number; name: string; checksum: string }>(
    `SELECT version, name, checksum FROM ${quotedTable} ORDER BY version`,
  );
  const byVersion = new Map(files.map((file) => [file.version, file]));
  for (const row of recorded.rows) {
    const file = byVersion.get(row.version);
    if (file === undefined || file.name !== row.name) {
      throw new Error(`migration ${row.name} was applied but is no longer in ${options.dir}`);
    }
    if (file.checksum !== row.checksum) {
      throw new Error(`migration ${row.name} was edited after it was applied (checksum mismatch); add a new migration instead`);
    }
  }

  const done = new Set(recorded.rows.map((row) => row.version));
  const applied: string[] = [];
  for (const file of files) {
    if (done.has(file.version)) continue;
    const started = performance.now();
    try {
      await client.query("BEGIN");
      await client.query(file.sql);
      await client.query(`INSERT INTO ${quotedTable} (version, name, checksum) VALUES ($1, $2, $3)`, [file.version, file.name, file.checksum]);
      await client.query("COMMIT");
    } catch (error) {
      // If ROLLBACK fails too the connection is gone, and the server discards the transaction anyway.
      await client.query("ROLLBACK").catch(() => {});
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`migration ${file.name} failed: ${reason}`, { cause: error });
    }
    applied.push(file.name);
    options.logger?.info("migration applied", { migration: file.name, durationMs: Math.round(performance.now() - started) });
  }
  return applied;
}

async function readMigrationFiles(dir: string): Promise<MigrationFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new Error(`runMigrations: cannot read migrations directory ${dir}`, { cause: error });
  }
  const files: MigrationFile[] = [];
  for (const name of names.filter((n) => n.endsWith(".sql")).sort()) {
    const match = fileNamePattern.exec(name);
    const version = match ? Number(match[1]) : NaN;
    if (!(version <= maxVersion)) {
      throw new Error(`runMigrations: ${name} in ${dir} is not named NNNN_description.sql (version up to ${maxVersion})`);
    }
    const bytes = await readFile(join(dir, name));
    files.push({ version, name, sql: bytes.toString("utf8"), checksum: createHash("sha256").update(bytes).digest("hex") });
  }
  files.sort((a, b) => a.version - b.version);
  for (let i = 1; i < files.length; i++) {
    if (files[i].version === files[i - 1].version) {
      throw new Error(`runMigrations: ${files[i - 1].name} and ${files[i].name} share version ${files[i].version}`);
    }
  }
  return files;
}

// Advisory locks are per database, so the key only has to tell migration tables of one database apart.
function advisoryLockKey(table: string): string {
  return createHash("sha256").update(`usermesh:migrations:${table}`).digest().readBigInt64BE(0).toString();
}
