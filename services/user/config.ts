// The user service's configuration schema: the shared fragments plus the account rules, with defaults.
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

/** The service's own database unless config.yml or the environment names another. */
const userPostgresSchema = postgresSchema.extend({
  url: postgresSchema.shape.url.unwrap().default("postgres://127.0.0.1:5432/usermesh_user"),
});

/** Where SessionService listens; every session of a user is created and ended there. */
export const sessionPeerSchema = z.strictObject({
  /** host:port of SessionService (a grpc-js target). */
  address: z.string().min(1).default("127.0.0.1:50052"),
});

/** The topic exchange the outbox relay publishes user.registration / user.delete to. */
export const eventsSchema = z.strictObject({
  exchange: z.string().min(1).default("usermesh.user"),
});

/** Password hashing (named so that config redaction, which hides keys like "password", leaves it visible). */
export const passwordSchema = z.strictObject({
  /** bcrypt work factor: each +1 doubles the time of a hash and of a login. */
  bcryptCost: z.int().min(4).max(15).default(12),
  /** Hashes running at once, each on its own worker thread (one thread per slot); more wait in a queue. */
  maxConcurrentHashes: z.int().min(1).max(64).default(2),
  /**
   * nice value of the hashing threads (the rest of the process keeps its own): higher yields the CPU to
   * the request path first, so a login storm does not slow every other call. 0 hashes at full priority
   * on libuv's threadpool instead, without the hashing threads (each ~10 MiB of memory).
   */
  niceness: z.int().min(0).max(19).default(10),
});
export type PasswordConfig = z.infer<typeof passwordSchema>;

export const cacheSchema = z.strictObject({
  /** How long a cached profile may be served without reading PostgreSQL (writes invalidate it sooner). */
  profileTtlSeconds: z.int().min(1).default(300),
});

/** Failed logins counted in Redis in a fixed window; past a limit, RESOURCE_EXHAUSTED until it ends. */
export const loginThrottleSchema = z.strictObject({
  maxFailuresPerAccount: z.int().min(1).default(5),
  maxFailuresPerIp: z.int().min(1).default(20),
  windowSeconds: z.int().min(1).default(900),
});
export type LoginThrottleConfig = z.infer<typeof loginThrottleSchema>;

export const userConfigSchema = z.strictObject({
  grpc: grpcServerSchema,
  admin: adminSchema,
  log: logSchema.prefault({}),
  redis: redisSchema.prefault({}),
  postgres: userPostgresSchema.prefault({}),
  /** The broker the outbox relay publishes to. */
  amqp: amqpSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  session: sessionPeerSchema.prefault({}),
  events: eventsSchema.prefault({}),
  hashing: passwordSchema.prefault({}),
  cache: cacheSchema.prefault({}),
  loginThrottle: loginThrottleSchema.prefault({}),
});
export type UserConfig = z.infer<typeof userConfigSchema>;
