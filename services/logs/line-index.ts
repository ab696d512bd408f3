// The in-memory index of one log file: per line its ts, byte offset and length, level and a 32-bit hash of
// its trace id, in typed-array columns (21 bytes a line), so filters run without reading the file.

/** The hash column's value for a line without a trace id. */
export const noTrace = 0;

/**
 * FNV-1a over the UTF-16 code units of a trace id, never noTrace for a non-empty id. Two ids may share a
 * hash: a match must be confirmed against the line itself.
 */
export function traceHash(traceId: string): number {
  if (traceId === "") return noTrace;
  let hash = 0x811c9dc5;
  for (let i = 0; i < traceId.length; i++) {
    hash ^= traceId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0 || 1;
}

export interface LineIndex {
  /** Lines indexed; the columns may be longer (spare capacity). */
  readonly count: number;
  readonly tsMs: Float64Array;
  /** Byte offset of each line in the file (files stay far below 2^53 bytes). */
  readonly offset: Float64Array;
  /** Bytes of each line, without its newline. */
  readonly length: Uint32Array;
  /** levelRank of each line. */
  readonly level: Uint8Array;
  readonly traceHash: Uint32Array;
  /** Smallest and largest ts indexed; +Infinity / -Infinity while empty. */
  readonly minTs: number;
  readonly maxTs: number;
  push(tsMs: number, offset: number, length: number, level: number, hash: number): void;
  /**
   * Line numbers 0..count-1 ordered by (ts, offset) ascending. Cached; after appends it is rebuilt, which is
   * nearly linear because appended lines are nearly in ts order already.
   */
  sortedOrder(): Uint32Array;
}

/** An empty index, growing by doubling from `capacity` lines. */
export function createLineIndex(capacity = 256): LineIndex {
  let count = 0;
  let tsMs = new Float64Array(capacity);
  let offset = new Float64Array(capacity);
  let length = new Uint32Array(capacity);
  let level = new Uint8Array(capacity);
  let hashes = new Uint32Array(capacity);
  let minTs = Infinity;
  let maxTs = -Infinity;
  let order = new Uint32Array(0);

  function grow(): void {
    const size = Math.max(16, tsMs.length * 2);
    const copy = <T extends Float64Array | Uint32Array | Uint8Array>(from: T, to: T): T => {
      to.set(from);
      return to;
    };
    tsMs = copy(tsMs, new Float64Array(size));
    offset = copy(offset, new Float64Array(size));
    length = copy(length, new Uint32Array(size));
    level = copy(level, new Uint8Array(size));
    hashes = copy(hashes, new Uint32Array(size));
  }

  return {
    get count() {
      return count;
    },
    get tsMs() {
      return tsMs;
    },
    get offset() {
      return offset;
    },
    get length() {
      return length;
    },
    get level() {
      return level;
    },
    get traceHash() {
      return hashes;
    },
    get minTs() {
      return minTs;
    },
    get maxTs() {
      return maxTs;
    },
    push(lineTs, lineOffset, lineLength, lineLevel, hash) {
      if (count === tsMs.length) grow();
      tsMs[count] = lineTs;
      offset[count] = lineOffset;
      length[count] = lineLength;
      level[count] = lineLevel;
      hashes[count] = hash;
      count++;
      if (lineTs < minTs) minTs = lineTs;
      if (lineTs > maxTs) maxTs = lineTs;
    },
    sortedOrder() {
      if (order.length === count) return order;
      const lines: number[] = Array.from(order);
      for (let i = order.length; i < count; i++) lines.push(i);
      // Offsets grow with line numbers, so the line number breaks ts ties the same way.
      lines.sort((a, b) => tsMs[a] - tsMs[b] || a - b);
      order = Uint32Array.from(lines);
      return order;
    },
  };
}
