// The gateway's configuration schema: the shared fragments plus HTTP, upstreams, limits and cookies.
import { z } from "zod";
import { adminSchema, logSchema, portSchema, redisSchema, shutdownSchema } from "../internal/config/common-schema.js";

const kibibyte = 1024;
const mebibyte = 1024 * kibibyte;

const httpSchema = z.strictObject({
  host: z.string().min(1).default("0.0.0.0"),
  port: portSchema,
  /** Express "trust proxy": false when clients connect directly; a hop count or subnet list behind a proxy. */
  trustProxy: z.union([z.boolean(), z.int().min(0), z.string().min(1)]).default(false),
  /** The origins browsers use to reach the gateway; cookie-authenticated unsafe requests must come from one. */
  publicOrigins: z.array(z.url()).default(["http://localhost:8080", "http://127.0.0.1:8080"]),
  /** Origins allowed to call the API from other sites (CORS); empty means none. */
  corsOrigins: z.array(z.url()).default([]),
});

/** host:port of each service (grpc-js targets). */
const upstreamsSchema = z.strictObject({
  user: z.string().min(1).default("127.0.0.1:50051"),
  session: z.string().min(1).default("127.0.0.1:50052"),
  photo: z.string().min(1).default("127.0.0.1:50053"),
});

const deadlinesSchema = z.strictObject({
  /** Time budget of a request; it becomes the gRPC deadline of every call it makes. */
  defaultMs: z.int().min(100).default(5000),
  uploadMs: z.int().min(100).default(60_000),
});

const limitSchema = z.strictObject({ points: z.int().min(1), durationSeconds: z.int().min(1) });

const rateLimitSchema = z.strictObject({
  perIp: limitSchema.default({ points: 600, durationSeconds: 60 }),
  /** Stricter, for /auth/*: registrations and logins are expensive (bcrypt) and attractive to brute force. */
  authPerIp: limitSchema.default({ points: 30, durationSeconds: 60 }),
  perUser: limitSchema.default({ points: 600, durationSeconds: 60 }),
});

const cookieSchema = z.strictObject({
  name: z.string().min(1).default("session"),
  /** Set wherever the gateway is reached over HTTPS. */
  secure: z.boolean().default(false),
});

export const gatewayConfigSchema = z.strictObject({
  http: httpSchema,
  admin: adminSchema,
  log: logSchema.prefault({}),
  redis: redisSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  upstreams: upstreamsSchema.prefault({}),
  deadlines: deadlinesSchema.prefault({}),
  rateLimit: rateLimitSchema.prefault({}),
  cookie: cookieSchema.prefault({}),
  body: z.strictObject({ jsonLimitBytes: z.int().min(1).default(16 * kibibyte) }).prefault({}),
  upload: z.strictObject({ maxBytes: z.int().min(1).default(10 * mebibyte) }).prefault({}),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
