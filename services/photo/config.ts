// The photo service's configuration schema: the shared fragments plus uploads, storage, events, cache,
// pagination and the blob janitor, with defaults.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import {
  adminSchema,
  amqpSchema,
  grpcServerSchema,
  logSchema,
  postgresSchema,
  redisSchema,
  shutdownSchema,
} from "../../internal/config/common-schema.js";

const mebibyte = 1024 * 1024;

/** The service's own database unless config.yml or the environment names another. */
const photoPostgresSchema = postgresSchema.extend({
  url: postgresSchema.shape.url.unwrap().default("postgres://127.0.0.1:5432/usermesh_photo"),
});

/** What an upload may be; both limits are enforced while streaming, before anything is decoded. */
export const uploadSchema = z.strictObject({
  /** Largest accepted file; the upload is cut off at the first byte past it. */
  maxBytes: z.int().min(1).default(10 * mebibyte),
  /** Largest width × height, read from the image header (a decompression bomb is refused cheaply). */
  maxPixels: z.int().min(1).default(40_000_000),
  /** Where uploads are spooled while they are checked; created when missing. */
  tempDir: z.string().min(1).default(join(tmpdir(), "usermesh-photo-uploads")),
});
export type UploadConfig = z.infer<typeof uploadSchema>;

/** Where blobs live: a local directory (the default) or a MEGA account. */
export const storageSchema = z
  .strictObject({
    backend: z.enum(["local", "mega"]).default("local"),
    local: z
      .strictObject({
        dir: z.string().min(1).default("./.data/photos"),
      })
      .prefault({}),
    mega: z
      .strictObject({
        email: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        /** MEGA API base URL; absent means MEGA itself (tests point it at the stand-in). */
        gateway: z.url({ protocol: /^https?$/ }).optional(),
      })
      .prefault({}),
  })
  .superRefine((storage, ctx) => {
    if (storage.backend !== "mega") return;
    for (const key of ["email", "password"] as const) {
      if (!storage.mega[key]) {
        ctx.addIssue({ code: "custom", path: ["mega", key], message: "required when storage.backend is mega" });
      }
    }
  });
export type StorageConfig = z.infer<typeof storageSchema>;

/** The durable queue consuming user.registration / user.delete from the user service's exchange. */
export const eventsSchema = z.strictObject({
  exchange: z.string().min(1).default("usermesh.user"),
  queue: z.string().min(1).default("photo.user-events"),
  /** Direct exchange rejected messages are routed through (with the queue's name as routing key). */
  deadLetterExchange: z.string().min(1).default("photo.user-events.dlx"),
  deadLetterQueue: z.string().min(1).default("photo.user-events.dlq"),
  /** Most unacked deliveries, hence concurrent handler calls, at once. */
  prefetch: z.int().min(1).max(65_535).default(10),
});
export type EventsConfig = z.infer<typeof eventsSchema>;

export const cacheSchema = z.strictObject({
  /** How long a cached page of a user's photo list may be served (writes invalidate it sooner). */
  listTtlSeconds: z.int().min(1).default(60),
});

export const paginationSchema = z
  .strictObject({
    /** Used when a request asks for page size 0. */
    defaultPageSize: z.int().min(1).default(20),
    maxPageSize: z.int().min(1).default(100),
  })
  .refine((p) => p.defaultPageSize <= p.maxPageSize, {
    path: ["defaultPageSize"],
    message: "must be at most maxPageSize",
  });
export type PaginationConfig = z.infer<typeof paginationSchema>;

/** The retry loop for blob deletions that failed when first tried. */
export const janitorSchema = z
  .strictObject({
    intervalSeconds: z.int().min(1).default(30),
    /** Rows claimed per pass; each is one blob-store call. */
    batchSize: z.int().min(1).max(1000).default(10),
    /** Delay after the first failure, doubled per further failure up to maxBackoffSeconds. */
    minBackoffSeconds: z.int().min(1).default(30),
    maxBackoffSeconds: z.int().min(1).default(3600),
  })
  .refine((j) => j.minBackoffSeconds <= j.maxBackoffSeconds, {
    path: ["minBackoffSeconds"],
    message: "must be at most maxBackoffSeconds",
  });
export type JanitorConfig = z.infer<typeof janitorSchema>;

export const photoConfigSchema = z.strictObject({
  grpc: grpcServerSchema,
  admin: adminSchema,
  log: logSchema.prefault({}),
  redis: redisSchema.prefault({}),
  postgres: photoPostgresSchema.prefault({}),
  /** The broker the user events are consumed from. */
  amqp: amqpSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  upload: uploadSchema.prefault({}),
  storage: storageSchema.prefault({}),
  events: eventsSchema.prefault({}),
  cache: cacheSchema.prefault({}),
  pagination: paginationSchema.prefault({}),
  janitor: janitorSchema.prefault({}),
});
export type PhotoConfig = z.infer<typeof photoConfigSchema>;
