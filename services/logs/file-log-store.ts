// Log lines as JSON-lines files, <dir>/<service>/<YYYY-MM-DD>[-N].jsonl (the UTC day of each line's ts,
// rotated by size), with an in-memory index per file (line-index.ts) built while writing and rebuilt
// from the files at open, searched by file-search.ts, and a retention sweep that removes whole days.
import { constants } from "node:fs";
import { access, mkdir, open, readFile, readdir, rmdir, truncate, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { internal, unavailable } from "../../internal/errors/errors.js";
import type { LineWriter } from "./ingest.js";
import { createLineIndex, traceHash, type LineIndex } from "./line-index.js";
import { searchFiles, type SearchBudget } from "./file-search.js";
import { formatLogLine, isServiceName, levelRank, readLineHead, traceIdKey, utcDay, type LogRecord } from "./log-line.js";
import type { LogQuery, LogStore } from "./logs.js";

export interface FileLogStoreOptions {
  /** Root directory; created when missing. One process per directory: two writers would corrupt offsets. */
  readonly dir: string;
  /** A file is rotated before a line would take it past this size (a larger line gets a file of its own). */
  readonly maxFileBytes: number;
  /** Days kept before today (UTC); older days are removed by sweep() and their lines refused by keeps(). */
  readonly retentionDays: number;
  /** fdatasync every file an append wrote to before the append resolves. */
  readonly fsync: boolean;
  /** sweep() runs at open and then this often (unref'd timer); 0 or absent: only when called. */
  readonly sweepIntervalMs?: number;
  /** Milliseconds since the epoch; injectable for tests (days, retention). Default Date.now. */
  readonly clock?: () => number;
  readonly logger: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void };
  /**
   * Work one find() may do before it returns a partial page with resumeAfter: lines looked at in the index
   * and lines read from disk. Defaults 2,000,000 and 200,000 (about half a second at most on a small
   * machine).
   */
  readonly budget?: SearchBudget;
}

export interface FileLogStore extends LogStore, LineWriter {
  /** Removes the files of days older than the retention; resolves with how many were removed. */
  sweep(): Promise<number>;
  /** The last `perService` lines of each service's newest file, as stored (for duplicate detection). */
  lastLines(perService: number): Promise<string[]>;
  /** Whether the directory is writable and the last append did not fail. */
  writable(): Promise<boolean>;
  readonly stats: { readonly files: number; readonly lines: number };
  /** Stops the sweep timer; waits for a running append or sweep. */
  close(): Promise<void>;
}

interface LogFile {
  /** "<service>/<file name>": LineKey.file, and the tie-break between files in the result order. */
  readonly name: string;
  readonly service: string;
  readonly day: string;
  readonly seq: number;
  readonly path: string;
  size: number;
  readonly index: LineIndex;
}

const dayMs = 86_400_000;
/** A line stamped further ahead than this is refused: a broken clock would otherwise pin a future file. */
const maxFutureMs = dayMs;
const fileNamePattern = /^(\d{4}-\d{2}-\d{2})(?:-([1-9]\d{0,8}))?\.jsonl$/;
// The fast path of the scan decodes this much of each line; readLineHead needs only its head.
const headBytes = 512;
const defaultBudget = { examine: 2_000_000, read: 200_000 };

function fileNameOf(day: string, seq: number): string {
  return seq === 0 ? `${day}.jsonl` : `${day}-${seq}.jsonl`;
}

/**
 * Opens the store: creates the directory, indexes every file found (cutting off a torn last line left by a
 * crash mid-write: its message was never acked, so it comes again), runs a first sweep and starts the
 * periodic one. Rejects when the directory cannot be created or read.
 */
export async function openFileLogStore(options: FileLogStoreOptions): Promise<FileLogStore> {
  const root = resolve(options.dir);
  const clock = options.clock ?? Date.now;
  const { logger, maxFileBytes } = options;
  const budget = options.budget ?? defaultBudget;
  const files = new Map<string, LogFile>();
  /** The newest segment of each "<service>/<day>", where the next line of that day goes. */
  const current = new Map<string, LogFile>();
  /** Names whose bytes on disk no longer match the index (a failed write could not be undone). */
  const unusable = new Set<string>();
  const knownDirs = new Set<string>();
  let lastAppendFailed = false;
  // Appends and sweeps run one at a time: both change `files` and the files themselves.
  let exclusive: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = exclusive.then(work, work);
    exclusive = run.catch(() => undefined);
    return run;
  };

  function register(file: LogFile): void {
    files.set(file.name, file);
    const key = `${file.service}/${file.day}`;
    const newest = current.get(key);
    if (!newest || newest.seq < file.seq) current.set(key, file);
  }

  function newFile(service: string, day: string, seq: number): LogFile {
    let next = seq;
    while (unusable.has(`${service}/${fileNameOf(day, next)}`)) next++;
    const fileName = fileNameOf(day, next);
    return { name: `${service}/${fileName}`, service, day, seq: next, path: join(root, service, fileName), size: 0, index: createLineIndex() };
  }

  await mkdir(root, { recursive: true });
  const scanned = { files: 0, lines: 0, unreadable: 0, torn: 0 };
  const started = performance.now();
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !isServiceName(entry.name)) continue;
    knownDirs.add(entry.name);
    for (const fileName of await readdir(join(root, entry.name))) {
      const match = fileNamePattern.exec(fileName);
      if (!match) continue;
      const file: LogFile = {
        name: `${entry.name}/${fileName}`,
        service: entry.name,
        day: match[1],
        seq: match[2] ? Number(match[2]) : 0,
        path: join(root, entry.name, fileName),
        size: 0,
        index: createLineIndex(),
      };
      const result = await scanFile(file);
      scanned.files++;
      scanned.lines += file.index.count;
      scanned.unreadable += result.unreadable;
      if (result.torn) scanned.torn++;
      register(file);
    }
  }
  logger.info("log store opened", { dir: root, ...scanned, ms: Math.round(performance.now() - started) });

  async function scanFile(file: LogFile): Promise<{ unreadable: number; torn: boolean }> {
    const bytes = await readFile(file.path);
    const end = bytes.lastIndexOf(10) + 1;
    const torn = end < bytes.length;
    if (torn) {
      await truncate(file.path, end);
      logger.warn("cut a torn last line off a log file", { file: file.name, bytes: bytes.length - end });
    }
    let unreadable = 0;
    for (let start = 0; start < end; ) {
      const newline = bytes.indexOf(10, start);
      if (newline > start) {
        const whole = newline - start <= headBytes;
        let head = readLineHead(bytes.toString("utf8", start, whole ? newline : start + headBytes));
        // Past the decoded head: the rest of the line may still hold a traceId, in another layout.
        if (!whole && (head === undefined || (head.traceId === "" && bytes.subarray(start, newline).includes(traceIdKey)))) {
          head = readLineHead(bytes.toString("utf8", start, newline));
        }
        if (head) file.index.push(head.tsMs, start, newline - start, levelRank[head.level], traceHash(head.traceId));
        else unreadable++;
      }
      start = newline + 1;
    }
    file.size = end;
    if (unreadable > 0) logger.warn("log file holds lines that are not log lines; they are not searchable", { file: file.name, unreadable });
    return { unreadable, torn };
  }

  /** The first day kept: days before it are swept. */
  function cutoffDay(): string {
    return utcDay(clock() - options.retentionDays * dayMs);
  }

  async function appendNow(records: readonly LogRecord[]): Promise<void> {
    interface Planned { file: LogFile; isNew: boolean; texts: string[]; lengths: number[]; records: LogRecord[]; bytes: number }
    const plans = new Map<LogFile, Planned>();
    const target = new Map<string, LogFile>();
    for (const record of records) {
      const text = formatLogLine(record);
      const length = Buffer.byteLength(text);
      const day = utcDay(record.tsMs);
      const key = `${record.service}/${day}`;
      let file = target.get(key) ?? current.get(key) ?? newFile(record.service, day, 0);
      let plan = plans.get(file);
      const used = file.size + (plan?.bytes ?? 0);
      if (used > 0 && used + length + 1 > maxFileBytes) {
        file = newFile(record.service, day, file.seq + 1);
        plan = undefined;
      }
      target.set(key, file);
      if (!plan) {
        plan = { file, isNew: !files.has(file.name), texts: [], lengths: [], records: [], bytes: 0 };
        plans.set(file, plan);
      }
      plan.texts.push(text, "\n");
      plan.lengths.push(length);
      plan.records.push(record);
      plan.bytes += length + 1;
    }

    const written: Planned[] = [];
    try {
      for (const plan of plans.values()) {
        written.push(plan);
        if (plan.isNew) {
          // Once per new file, so a directory removed behind the store's back comes back.
          await mkdir(join(root, plan.file.service), { recursive: true });
          knownDirs.add(plan.file.service);
        }
        await writeAll(plan.file.path, Buffer.from(plan.texts.join(""), "utf8"), options.fsync);
      }
      if (options.fsync) {
        // A new file's directory entry must be durable too, or the file may vanish with a power cut.
        for (const service of new Set(written.filter((p) => p.isNew).map((p) => p.file.service))) {
          await syncDirectory(join(root, service));
        }
      }
    } catch (error) {
      lastAppendFailed = true;
      await Promise.all(written.map((plan) => undo(plan.file, plan.isNew)));
      throw error;
    }
    lastAppendFailed = false;
    for (const plan of plans.values()) {
      const { file } = plan;
      let offset = file.size;
      plan.records.forEach((record, i) => {
        file.index.push(record.tsMs, offset, plan.lengths[i], levelRank[record.level], traceHash(record.traceId));
        offset += plan.lengths[i] + 1;
      });
      file.size = offset;
      if (plan.isNew) register(file);
    }
  }

  /** Takes a failed append's bytes back off a file; when that fails too, the file takes no more lines. */
  async function undo(file: LogFile, isNew: boolean): Promise<void> {
    try {
      if (isNew) await unlink(file.path).catch((error: NodeJS.ErrnoException) => { if (error.code !== "ENOENT") throw error; });
      else await truncate(file.path, file.size);
    } catch (error) {
      unusable.add(file.name);
      const key = `${file.service}/${file.day}`;
      if (!isNew && current.get(key) === file) current.set(key, newFile(file.service, file.day, file.seq + 1));
      logger.warn("a failed write could not be undone; the file takes no more lines", { file: file.name, err: error });
    }
  }

  async function sweepNow(): Promise<number> {
    const cutoff = cutoffDay();
    let removed = 0;
    for (const file of [...files.values()]) {
      if (file.day >= cutoff) continue;
      files.delete(file.name);
      const key = `${file.service}/${file.day}`;
      if (current.get(key) === file) current.delete(key);
      try {
        await unlink(file.path);
        removed++;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") logger.warn("could not remove an expired log file", { file: file.name, err: error });
      }
    }
    for (const service of [...knownDirs]) {
      if ([...files.values()].some((f) => f.service === service)) continue;
      // Only an empty directory goes; anything else found there stays, and so does the directory.
      await rmdir(join(root, service)).then(() => knownDirs.delete(service), () => undefined);
    }
    if (removed > 0) logger.info("removed expired log files", { removed, olderThan: cutoff });
    return removed;
  }

  let sweeper: NodeJS.Timeout | undefined;
  const sweepLogged = () =>
    serially(sweepNow).catch((error: unknown) => logger.warn("log retention sweep failed", { err: error }));
  await sweepLogged();
  if (options.sweepIntervalMs) {
    sweeper = setInterval(() => void sweepLogged(), options.sweepIntervalMs);
    sweeper.unref();
  }

  function candidates(query: LogQuery): LogFile[] {
    return [...files.values()].filter(
      (f) =>
        f.index.count > 0 &&
        (query.service === undefined || f.service === query.service) &&
        (query.sinceMs === undefined || f.index.maxTs >= query.sinceMs) &&
        (query.untilMs === undefined || f.index.minTs <= query.untilMs),
    );
  }

  return {
    append: (records) => (records.length === 0 ? Promise.resolve() : serially(() => appendNow(records))),
    keeps(tsMs) {
      const now = clock();
      // The start of the cutoff day, as cutoffDay() names it (UTC days are whole multiples of dayMs).
      const firstKeptMs = Math.floor((now - options.retentionDays * dayMs) / dayMs) * dayMs;
      return tsMs >= firstKeptMs && tsMs <= now + maxFutureMs;
    },
    async find(query, { limit, after }) {
      try {
        return await searchFiles(candidates(query), query, { limit, ...(after && { after }), budget });
      } catch (error) {
        throw storageError(error);
      }
    },
    sweep: () => serially(sweepNow),
    async lastLines(perService) {
      const newest = new Map<string, LogFile>();
      for (const file of files.values()) {
        const seen = newest.get(file.service);
        if (!seen || seen.day < file.day || (seen.day === file.day && seen.seq < file.seq)) newest.set(file.service, file);
      }
      const lines: string[] = [];
      for (const file of newest.values()) {
        const { count, offset } = file.index;
        if (count === 0) continue;
        const from = offset[Math.max(0, count - perService)];
        const handle = await open(file.path, "r").catch(() => undefined);
        if (!handle) continue;
        try {
          const bytes = Buffer.alloc(file.size - from);
          await handle.read(bytes, 0, bytes.length, from);
          lines.push(...bytes.toString("utf8").split("\n").filter((line) => line !== ""));
        } finally {
          await handle.close();
        }
      }
      return lines;
    },
    async writable() {
      if (lastAppendFailed) return false;
      return access(root, constants.W_OK).then(() => true, () => false);
    },
    get stats() {
      let lines = 0;
      for (const file of files.values()) lines += file.index.count;
      return { files: files.size, lines };
    },
    async close() {
      clearInterval(sweeper);
      await exclusive;
    },
  };
}

async function writeAll(path: string, bytes: Buffer, sync: boolean): Promise<void> {
  const handle = await open(path, "a");
  try {
    for (let done = 0; done < bytes.length; ) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
    if (sync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Storage errors of a search, mapped in one place: a full, failing or exhausted system is UNAVAILABLE. */
function storageError(error: unknown) {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EIO" || code === "EMFILE" || code === "ENFILE" || code === "ENOSPC" || code === "EACCES") {
    return unavailable("log storage unavailable", error);
  }
  return internal(error);
}
