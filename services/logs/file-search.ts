// Searching the log files through their indexes: a trace id picks lines by its hash column; any other
// search merges the files newest first through each one's ts order. Every candidate line is read and
// checked in full, and one call's work is bounded (a partial page carries where to resume).
import { open, type FileHandle } from "node:fs/promises";
import { traceHash, type LineIndex } from "./line-index.js";
import { parseLogText, type LogRecord } from "./log-line.js";
import { compareKeys, matchesQuery, type FoundPage, type LineKey, type LogQuery } from "./logs.js";

/** A file as the search sees it: its name (LineKey.file), where it is, how much is indexed. */
export interface SearchableFile {
  readonly name: string;
  readonly path: string;
  /** Bytes indexed; the file may be longer while an append is in progress. */
  readonly size: number;
  readonly index: LineIndex;
}

/** Lines one call may look at in the indexes, and lines it may read from disk, before it stops early. */
export interface SearchBudget {
  readonly examine: number;
  readonly read: number;
}

// A scan reads neighbouring lines, mostly backwards: it fetches this much around each line it needs.
const blockBytes = 256 * 1024;

/**
 * Lines of `files` matching `query`, after `after` in the result order, at most `limit`, with resumeAfter
 * when more may follow. Rejects with the filesystem's error when a file cannot be read (a file removed
 * meanwhile is skipped).
 */
export async function searchFiles(
  files: readonly SearchableFile[],
  query: LogQuery,
  options: { limit: number; after?: LineKey; budget: SearchBudget },
): Promise<FoundPage> {
  const reader = createLineReader(query.traceId === undefined ? blockBytes : 0);
  try {
    const search = query.traceId === undefined ? findByScan : findByTrace;
    return await search(files, query, options.limit, options.after, options.budget, reader);
  } finally {
    await reader.close();
  }
}

/** Collects the result: a line is kept when its full record matches; stops at limit + 1 or the budget. */
function createCollector(query: LogQuery, limit: number, budget: SearchBudget) {
  const lines: LogRecord[] = [];
  const keys: LineKey[] = [];
  let reads = 0;
  // Lines are stored as JSON.stringify wrote them, and it escapes character by character: a msg holding
  // the text holds its escaped form, so a line without that form is skipped before parsing.
  const needle = query.text === undefined ? undefined : JSON.stringify(query.text).slice(1, -1);
  return {
    get full() {
      return lines.length > limit;
    },
    get exhausted() {
      return reads >= budget.read;
    },
    offer(text: string | undefined, key: LineKey): void {
      reads++;
      if (text === undefined || (needle !== undefined && !text.includes(needle))) return;
      const parsed = parseLogText(text);
      if ("record" in parsed && matchesQuery(parsed.record, query)) {
        lines.push(parsed.record);
        keys.push(key);
      }
    },
    /** The page; `stoppedAt` is the last key examined when the budget, not the results, ended the call. */
    page(stoppedAt: LineKey | undefined): FoundPage {
      if (lines.length > limit) return { lines: lines.slice(0, limit), resumeAfter: keys[limit - 1] };
      return stoppedAt ? { lines, resumeAfter: stoppedAt } : { lines };
    },
  };
}

/** A trace id search: the hash column of each file picks the lines, which are read and confirmed. */
async function findByTrace(from: readonly SearchableFile[], query: LogQuery, limit: number, after: LineKey | undefined, budget: SearchBudget, reader: LineReader): Promise<FoundPage> {
  const hash = traceHash(query.traceId!);
  const since = query.sinceMs ?? -Infinity;
  const until = query.untilMs ?? Infinity;
  const hits: { file: SearchableFile; line: number; key: LineKey }[] = [];
  for (const file of from) {
    const { count, tsMs, offset, level, traceHash: hashes } = file.index;
    for (let i = 0; i < count; i++) {
      if (hashes[i] !== hash || level[i] < query.minLevel || tsMs[i] < since || tsMs[i] > until) continue;
      const key = { tsMs: tsMs[i], file: file.name, offset: offset[i] };
      if (!after || compareKeys(key, after) > 0) hits.push({ file, line: i, key });
    }
  }
  hits.sort((a, b) => compareKeys(a.key, b.key));
  const collector = createCollector(query, limit, budget);
  for (const hit of hits) {
    if (collector.full) break;
    if (collector.exhausted) return collector.page(hit.key);
    collector.offer(await reader.read(hit.file, hit.key.offset, hit.file.index.length[hit.line]), hit.key);
  }
  return collector.page(undefined);
}

/**
 * Any other search: the files are merged newest first through each one's ts order (a max-heap of one
 * cursor per file); the index columns filter by level and time, and the lines left are read.
 */
async function findByScan(from: readonly SearchableFile[], query: LogQuery, limit: number, after: LineKey | undefined, budget: SearchBudget, reader: LineReader): Promise<FoundPage> {
  const since = query.sinceMs ?? -Infinity;
  const until = query.untilMs ?? Infinity;
  const heap = createCursorHeap();
  // A file joins with its largest ts as the key: an upper bound, so it is opened only when it may hold
  // the next line, and a search for the newest lines never sorts the older days.
  for (const file of from) heap.push({ file, order: undefined, position: 0, tsMs: file.index.maxTs, offset: Infinity });
  const collector = createCollector(query, limit, budget);
  let examined = 0;
  let lastKey: LineKey | undefined;
  while (heap.size > 0 && !collector.full) {
    if (examined >= budget.examine || collector.exhausted) return collector.page(lastKey);
    const cursor = heap.top();
    const { tsMs, offset, level, length } = cursor.file.index;
    if (!cursor.order) {
      cursor.order = cursor.file.index.sortedOrder();
      cursor.position = startPosition(cursor.order, tsMs, offset, cursor.file.name, until, after);
    } else {
      const line = cursor.order[cursor.position];
      const key = { tsMs: tsMs[line], file: cursor.file.name, offset: offset[line] };
      examined++;
      lastKey = key;
      if (level[line] >= query.minLevel) collector.offer(await reader.read(cursor.file, key.offset, length[line]), key);
      cursor.position--;
    }
    const next = cursor.position >= 0 ? cursor.order[cursor.position] : -1;
    if (next < 0 || tsMs[next] < since) {
      heap.pop();
      continue;
    }
    cursor.tsMs = tsMs[next];
    cursor.offset = offset[next];
    heap.siftTop();
  }
  return collector.page(undefined);
}

/**
 * The position in `order` (ascending by ts, offset) of the newest line a page may start with: before
 * `after` in the result order and not after `until`; -1 when there is none.
 */
function startPosition(order: Uint32Array, tsMs: Float64Array, offset: Float64Array, file: string, until: number, after: LineKey | undefined): number {
  // The last position whose (ts, offset) is below the bound, by binary search.
  const lastBelow = (boundTs: number, boundOffset: number): number => {
    let low = 0;
    let high = order.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const line = order[mid];
      if (tsMs[line] < boundTs || (tsMs[line] === boundTs && offset[line] < boundOffset)) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  };
  let position = lastBelow(until, Infinity);
  if (after) {
    // Equal ts: a file that sorts before after.file comes later in the results, so its lines at that ts remain.
    const bound = file === after.file ? after.offset : file < after.file ? Infinity : -Infinity;
    position = Math.min(position, lastBelow(after.tsMs, bound));
  }
  return position;
}

interface Cursor {
  readonly file: SearchableFile;
  order: Uint32Array | undefined;
  position: number;
  /** Key of the line at position (or the file's upper bound before it is opened). */
  tsMs: number;
  offset: number;
}

/** A max-heap of cursors by their current line's key in result order (newest on top). */
function createCursorHeap() {
  const items: Cursor[] = [];
  const newer = (a: Cursor, b: Cursor) =>
    a.tsMs !== b.tsMs ? a.tsMs > b.tsMs : a.file.name !== b.file.name ? a.file.name > b.file.name : a.offset > b.offset;
  const swap = (i: number, j: number) => ([items[i], items[j]] = [items[j], items[i]]);
  function down(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < items.length && newer(items[left], items[top])) top = left;
      if (right < items.length && newer(items[right], items[top])) top = right;
      if (top === i) return;
      swap(i, top);
      i = top;
    }
  }
  return {
    get size() {
      return items.length;
    },
    top: () => items[0],
    push(cursor: Cursor): void {
      items.push(cursor);
      for (let i = items.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!newer(items[i], items[parent])) break;
        swap(i, parent);
        i = parent;
      }
    },
    pop(): void {
      const last = items.pop()!;
      if (items.length > 0) {
        items[0] = last;
        down(0);
      }
    },
    /** Restores the heap after the top cursor's key changed (it only ever gets older). */
    siftTop: () => down(0),
  };
}

interface LineReader {
  /** The line's text, or undefined when its file is gone (swept meanwhile). */
  read(file: SearchableFile, offset: number, length: number): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Reads lines for one search. With a block size, each read fetches the block around the line (a scan
 * reads neighbouring lines, mostly backwards); with 0, exactly the line.
 */
function createLineReader(block: number): LineReader {
  const handles = new Map<SearchableFile, FileHandle | undefined>();
  const blocks = new Map<SearchableFile, { start: number; bytes: Buffer }>();
  return {
    async read(file, offset, length) {
      const cached = blocks.get(file);
      if (cached && offset >= cached.start && offset + length <= cached.start + cached.bytes.length) {
        return cached.bytes.toString("utf8", offset - cached.start, offset - cached.start + length);
      }
      let handle = handles.get(file);
      if (!handles.has(file)) {
        handle = await open(file.path, "r").catch((error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return undefined;
          throw error;
        });
        handles.set(file, handle);
      }
      if (!handle) return undefined;
      const start = block > length ? Math.max(0, offset + length - Math.floor(block * 0.75)) : offset;
      const end = block > length ? Math.min(file.size, Math.max(offset + length, start + block)) : offset + length;
      const bytes = Buffer.allocUnsafe(end - start);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, start);
      if (bytesRead < offset + length - start) return undefined;
      if (block > length) blocks.set(file, { start, bytes: bytes.subarray(0, bytesRead) });
      return bytes.toString("utf8", offset - start, offset - start + length);
    },
    async close() {
      const open = [...handles.values()].filter((handle) => handle !== undefined);
      await Promise.all(open.map((handle) => handle.close()));
    },
  };
}
