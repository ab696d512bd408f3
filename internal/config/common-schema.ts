// Config fragments every process composes into its own schema, with defaults for local development.
// The fragments are strict objects, so a misspelt key in config.yml ("prot: 50051") fails at start
// instead of being silently ignored.
import { z } from "zod";

/** A TCP port; 0 asks the OS for a free one (tests). */
export const portSchema = z.int().min(0).max(65535);

function urlSchema(protocols: readonly string[]) {
  return z.url({
    protocol: new RegExp(`^(?:${protocols.join("|")})$`),
    error: `must be a URL starting with ${protocols.map((p) => `${p}://`).join(" or ")}`,
  });
}

/** The process's gRPC listener. No default port: each service's config.yml sets its own. */
export const grpcServerSchema = z.strictObject({
  host: z.string().min(1).default("0.0.0.0"),
  port: portSchema,
});
export type GrpcServerConfig = z.infer<typeof grpcServerSchema>;

/** The admin HTTP listener (health, /metrics). No default port: each service's config.yml sets its own. */
export const adminSchema = z.strictObject({
  host: z.string().min(1).default("0.0.0.0"),
  port: portSchema,
});
export type AdminConfig = z.infer<typeof adminSchema>;

/** Structured logging; lines are also published to the broker unless toBroker is false. */
export const logSchema = z.strictObject({
  level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  amqpUrl: urlSchema(["amqp", "amqps"]).default("amqp://guest:guest@127.0.0.1:5672"),
  exchange: z.string().min(1).default("logs"),
  /** Lines kept in memory while the broker is unreachable; older ones are dropped beyond this. */
  maxBuffered: z.int().min(0).default(10000),
  toBroker: z.boolean().default(true),
});
export type LogConfig = z.infer<typeof logSchema>;

export const redisSchema = z.strictObject({
  url: urlSchema(["redis", "rediss"]).default("redis://127.0.0.1:6379"),
  keyPrefix: z.string().default("usermesh:"),
});
export type RedisConfig = z.infer<typeof redisSchema>;

export const postgresSchema = z.strictObject({
  url: urlSchema(["postgres", "postgresql"]).default("postgres://127.0.0.1:5432/usermesh"),
  poolMax: z.int().min(1).default(10),
});
export type PostgresConfig = z.infer<typeof postgresSchema>;

export const amqpSchema = z.strictObject({
  url: urlSchema(["amqp", "amqps"]).default("amqp://guest:guest@127.0.0.1:5672"),
});
export type AmqpConfig = z.infer<typeof amqpSchema>;

/** Total time the shutdown steps may take after SIGTERM before the process gives up on them. */
export const shutdownSchema = z.strictObject({
  graceMs: z.int().min(0).default(10000),
});
export type ShutdownConfig = z.infer<typeof shutdownSchema>;
