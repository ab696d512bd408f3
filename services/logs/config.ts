// The logs service's configuration schema: the shared fragments plus ingestion, storage and tail, with
// defaults.
import { z } from "zod";
import {
  adminSchema,
  amqpSchema,
  grpcServerSchema,
  logSchema,
  shutdownSchema,
} from "../../internal/config/common-schema.js";

const mebibyte = 1024 * 1024;

/** The durable queue every process's log lines reach, and how lines are batched into the files. */
export const ingestSchema = z
  .strictObject({
    /** The topic exchange the loggers publish to (routing key <service>.<level>). */
    exchange: z.string().min(1).default("logs"),
    queue: z.string().min(1).default("logs.ingest"),
    /** Binding on the exchange; "#" takes every service and level. */
    bindingKey: z.string().min(1).default("#"),
    /** Most unacked lines at once: the largest batch that can form. */
    prefetch: z.int().min(1).max(65_535).default(500),
    /** A batch is written this long after its first line, unless it filled up sooner. */
    flushIntervalMs: z.int().min(0).max(60_000).default(200),
    flushMaxLines: z.int().min(1).default(500),
  })
  .refine((i) => i.flushMaxLines <= i.prefetch, {
    path: ["flushMaxLines"],
    message: "must be at most ingest.prefetch (a batch never holds more than the unacked lines)",
  });
export type IngestConfig = z.infer<typeof ingestSchema>;

/** The files: <dir>/<service>/<YYYY-MM-DD>[-N].jsonl. */
export const storageSchema = z.strictObject({
  dir: z.string().min(1).default("./.data/logs"),
  /** Size at which a day's file is rotated to the next -N file. */
  maxFileBytes: z.int().min(256).max(1024 * mebibyte).default(64 * mebibyte),
  /** Days kept before today (UTC); older files are removed by the sweep. */
  retentionDays: z.int().min(1).max(3650).default(14),
  /**
   * always: every line written and fdatasync'ed on its own before its ack (slowest); batch: one fdatasync
   * per batch, before the batch's acks; never: acked once written, the OS flushes when it likes (a power
   * cut can lose acked lines, a process crash cannot).
   */
  fsync: z.enum(["always", "batch", "never"]).default("batch"),
  sweepIntervalSeconds: z.int().min(1).default(3600),
});
export type StorageConfig = z.infer<typeof storageSchema>;

export const tailSchema = z.strictObject({
  /** Lines waiting for one slow Tail subscriber before its oldest are dropped. */
  bufferLines: z.int().min(1).max(100_000).default(1000),
});

export const logsConfigSchema = z.strictObject({
  grpc: grpcServerSchema,
  admin: adminSchema,
  /** The service's own logging; log.toBroker is ignored (main.ts: its lines go to stdout only). */
  log: logSchema.prefault({}),
  /** The broker the lines are consumed from. */
  amqp: amqpSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  ingest: ingestSchema.prefault({}),
  storage: storageSchema.prefault({}),
  tail: tailSchema.prefault({}),
});
export type LogsConfig = z.infer<typeof logsConfigSchema>;

/** How writes are batched and synced, from the fsync policy and the batch settings. */
export function writePolicyFrom(config: Pick<LogsConfig, "ingest" | "storage">): {
  fsync: boolean;
  batch: { maxLines: number; intervalMs: number };
} {
  if (config.storage.fsync === "always") return { fsync: true, batch: { maxLines: 1, intervalMs: 0 } };
  return {
    fsync: config.storage.fsync === "batch",
    batch: { maxLines: config.ingest.flushMaxLines, intervalMs: config.ingest.flushIntervalMs },
  };
}
