// Child process for the migrations test: runs runMigrations once against argv's database URL and
// folder, writes each log line and then {"msg":"done","applied":[…]} as JSON on stdout, exits 1 on error.
import { createPgPool } from "../postgres.js";
import { runMigrations } from "../migrations.js";

const [url, dir] = process.argv.slice(2);
if (url === undefined || dir === undefined) {
  process.stderr.write("usage: run-migrations.ts <database url> <migrations dir>\n");
  process.exit(2);
}

const write = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const logger = {
  info: (msg: string, fields?: Record<string, unknown>) => write({ level: "info", msg, ...fields }),
  warn: (msg: string, fields?: Record<string, unknown>) => write({ level: "warn", msg, ...fields }),
  error: (msg: string, fields?: Record<string, unknown>) => write({ level: "error", msg, ...fields }),
};
const pool = createPgPool(url, { max: 2, applicationName: "run-migrations-fixture", logger });
try {
  const { applied } = await runMigrations(pool, { dir, logger });
  write({ msg: "done", applied });
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
