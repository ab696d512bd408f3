// Test kit for the logs service: temp directories, a settable clock, a recording logger, records and
// lines as the shared logger writes them.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Level, LogRecord } from "../log-line.js";

export async function tempDir(prefix = "logs-test-"): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A clock the test moves by hand. */
export function settableClock(startMs: number): { now: () => number; set(ms: number): void; advance(ms: number): void } {
  let current = startMs;
  return { now: () => current, set: (ms) => void (current = ms), advance: (ms) => void (current += ms) };
}

export interface Recorded {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export function recordingLogger(): { lines: Recorded[]; info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void; error(msg: string, fields?: Record<string, unknown>): void } {
  const lines: Recorded[] = [];
  return {
    lines,
    info: (msg, fields) => void lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => void lines.push({ level: "warn", msg, fields }),
    error: (msg, fields) => void lines.push({ level: "error", msg, fields }),
  };
}

export function newTraceId(): string {
  return randomBytes(16).toString("hex");
}

export function record(overrides: Partial<LogRecord> & { tsMs: number }): LogRecord {
  return { level: "info", service: "user", msg: "rpc handled", traceId: "", fields: {}, ...overrides };
}

/** A line exactly as internal/logging/logger.ts formats it: ts, level, service, msg, traceId, fields. */
export function loggerLine(service: string, level: Level, msg: string, traceId: string | undefined, fields: Record<string, unknown> = {}, tsMs = Date.now()): string {
  return JSON.stringify({ ts: new Date(tsMs).toISOString(), level, service, msg, ...(traceId && { traceId }), ...fields });
}

/** Every line of every .jsonl file under dir/service, parsed, with the file it came from. */
export async function storedLines(dir: string, service: string): Promise<{ file: string; line: Record<string, unknown> }[]> {
  const files = (await readdir(join(dir, service)).catch(() => [])).filter((f) => f.endsWith(".jsonl")).sort();
  const out: { file: string; line: Record<string, unknown> }[] = [];
  for (const file of files) {
    const text = await readFile(join(dir, service, file), "utf8");
    for (const raw of text.split("\n")) if (raw !== "") out.push({ file, line: JSON.parse(raw) as Record<string, unknown> });
  }
  return out;
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
