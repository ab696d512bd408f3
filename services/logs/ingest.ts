// Ingestion: the consumer's handler for the "logs" queue. Checks each message, batches lines into the
// store, and answers "ack" only once the line is stored; skips a redelivered copy of a line already stored.
import { createHash } from "node:crypto";
import type { ConsumeMessage } from "amqplib";
import type { Handler } from "../../internal/events/amqp-consumer.js";
import { formatLogLine, parseLogBody, type Level, type LogRecord, type MalformedReason } from "./log-line.js";

/** Where lines are stored. */
export interface LineWriter {
  /**
   * Stores the records as lines (synced as the store's policy says) and makes them searchable; resolves
   * once all of them are. Rejects, with none of them kept, when storage fails.
   */
  append(records: readonly LogRecord[]): Promise<void>;
  /** False for a ts the store would not keep: older than its retention, or too far in the future. */
  keeps(tsMs: number): boolean;
}

export interface IngestLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface IngestMetrics {
  /** logs_ingested_total{service,level}: lines stored. */
  readonly ingested: { inc(labels: { service: string; level: Level }): void };
  /** logs_malformed_total{reason}: messages acked and dropped. */
  readonly malformed: { inc(labels: { reason: MalformedReason }): void };
  /** logs_duplicates_total: redelivered copies of stored lines, acked without a second write. */
  readonly duplicates: { inc(): void };
  /** logs_write_seconds: one store append (a batch). */
  readonly writeSeconds: { observe(seconds: number): void };
  /** logs_queue_lag_seconds: from a line's ts to its storage. */
  readonly queueLagSeconds: { observe(seconds: number): void };
}

export interface IngestOptions {
  readonly writer: LineWriter;
  /**
   * A batch is written when it holds maxLines, or intervalMs after its first line arrived, whichever
   * comes first ({ maxLines: 1, intervalMs: 0 } writes every line on its own).
   */
  readonly batch: { readonly maxLines: number; readonly intervalMs: number };
  readonly metrics: IngestMetrics;
  readonly logger: IngestLogger;
  /** Told of every line once it is stored (Tail). */
  readonly onStored?: (record: LogRecord) => void;
  /**
   * How many recent lines are remembered to recognise a redelivered copy; it must exceed the lines a
   * connection can hold unacked (the prefetch). Default 20,000.
   */
  readonly redeliveryWindow?: number;
  /** Default Date.now. */
  readonly clock?: () => number;
}

export interface Ingest {
  readonly handler: Handler;
  /**
   * Remembers lines stored before this process started (the tail of the newest files), so a message
   * written but never acked before a crash is not written again when the broker redelivers it.
   */
  seed(storedLines: readonly string[]): void;
  /** Writes what is still batched and refuses new lines (a handler then answers "retry"). Never rejects. */
  close(): Promise<void>;
}

const malformedNoticeMs = 10_000;

/**
 * The handler for createAmqpConsumer. "ack" once the line is stored, and for a message that is not a log
 * line (counted by reason, dropped: no retry can fix it and nobody would read a dead-letter queue of log
 * lines); "retry" when the store fails, so the broker keeps the message. Delivery is at least once: a
 * message redelivered after a lost connection is recognised (digest of its body, or of its stored form
 * for lines seeded from the files) and acked without a second write.
 */
export function createIngest(options: IngestOptions): Ingest {
  const { writer, metrics, logger, onStored } = options;
  const clock = options.clock ?? Date.now;
  const window = Math.max(1, options.redeliveryWindow ?? 20_000);
  const batcher = createBatcher(options);
  /** Body digest -> its write and its slot in `ring`, for the last `window` lines delivered. */
  const recent = new Map<string, { written: Promise<void>; slot: number }>();
  const ring: (string | undefined)[] = new Array<string | undefined>(window);
  let ringNext = 0;
  /** Stored-form digests of lines found in the files at start. */
  const seeded = new Set<string>();
  let malformedSince = 0;
  let lastMalformedNotice = -Infinity;

  function dropMalformed(reason: MalformedReason, detail: string, message: ConsumeMessage): "ack" {
    metrics.malformed.inc({ reason });
    malformedSince++;
    const now = clock();
    if (now - lastMalformedNotice >= malformedNoticeMs) {
      // The body is never logged: it may be anything, of any size.
      logger.warn("dropped malformed log messages", { reason, detail, routingKey: message.fields.routingKey.slice(0, 200), count: malformedSince });
      lastMalformedNotice = now;
      malformedSince = 0;
    }
    return "ack";
  }

  function remember(digest: string, written: Promise<void>): void {
    // A ring rather than deleting the Map's first key: that walks over every earlier deletion.
    const evicted = ring[ringNext];
    if (evicted !== undefined && recent.get(evicted)?.slot === ringNext) recent.delete(evicted);
    ring[ringNext] = digest;
    const entry = { written, slot: ringNext };
    recent.set(digest, entry);
    ringNext = (ringNext + 1) % window;
    written.catch(() => {
      if (recent.get(digest) === entry) recent.delete(digest);
    });
  }

  async function storedBefore(message: ConsumeMessage, digest: string, record: LogRecord): Promise<boolean> {
    if (!message.fields.redelivered) return false;
    const earlier = recent.get(digest);
    if (earlier) return earlier.written.then(() => true, () => false);
    return seeded.has(digestOf(formatLogLine(record)));
  }

  const handler: Handler = async (message) => {
    const parsed = parseLogBody(message.content);
    if ("malformed" in parsed) return dropMalformed(parsed.malformed, parsed.detail, message);
    const { record } = parsed;
    if (!writer.keeps(record.tsMs)) return dropMalformed("ts_out_of_range", "ts outside the retention window", message);
    const digest = digestOf(message.content);
    if (await storedBefore(message, digest, record)) {
      metrics.duplicates.inc();
      return "ack";
    }
    const written = batcher.add(record);
    remember(digest, written);
    try {
      await written;
    } catch {
      return "retry";
    }
    metrics.ingested.inc({ service: record.service, level: record.level });
    metrics.queueLagSeconds.observe(Math.max(0, clock() - record.tsMs) / 1000);
    onStored?.(record);
    return "ack";
  };

  return {
    handler,
    seed(storedLines) {
      for (const line of storedLines) seeded.add(digestOf(line));
    },
    close: () => batcher.close(),
  };
}

function digestOf(content: string | Uint8Array): string {
  return createHash("sha1").update(content).digest("base64");
}

interface Pending {
  readonly record: LogRecord;
  resolve(): void;
  reject(error: unknown): void;
}

/** Collects lines into batches and appends one batch at a time. */
function createBatcher(options: IngestOptions) {
  const { writer, metrics, logger } = options;
  const { maxLines, intervalMs } = options.batch;
  const pending: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let closed = false;

  function schedule(): void {
    // Once closed, close() itself writes what is left.
    if (writing || closed || pending.length === 0) return;
    if (pending.length >= maxLines || intervalMs === 0) {
      clearTimeout(timer);
      timer = undefined;
      writing = write();
    } else {
      timer ??= setTimeout(() => {
        timer = undefined;
        writing ??= write();
      }, intervalMs);
    }
  }

  async function write(): Promise<void> {
    const batch = pending.splice(0, maxLines);
    const started = performance.now();
    try {
      await writer.append(batch.map((p) => p.record));
      metrics.writeSeconds.observe((performance.now() - started) / 1000);
      for (const p of batch) p.resolve();
    } catch (error) {
      logger.warn("could not store log lines; the broker keeps them for a retry", { lines: batch.length, err: error });
      for (const p of batch) p.reject(error);
    } finally {
      writing = undefined;
      schedule();
    }
  }

  return {
    add(record: LogRecord): Promise<void> {
      if (closed) return Promise.reject(new Error("ingestion is closed"));
      return new Promise<void>((resolve, reject) => {
        pending.push({ record, resolve, reject });
        schedule();
      });
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      while (writing || pending.length > 0) {
        writing ??= write();
        await writing;
      }
    },
  };
}
