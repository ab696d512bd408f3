// The session service's configuration schema: the shared fragments plus the session rules, with defaults.
import { z } from "zod";
import {
  adminSchema,
  grpcServerSchema,
  logSchema,
  redisSchema,
  shutdownSchema,
} from "../../internal/config/common-schema.js";
import type { SessionSettings } from "./sessions.js";

const day = 86_400;

/** How long sessions live and how many one user may hold. */
export const sessionSectionSchema = z
  .strictObject({
    /** Lifetime of a new session, and of each sliding extension. */
    ttlSeconds: z.int().min(1).default(day),
    /** Extend a session used in the last half of its life (never past absoluteMaxSeconds). */
    slidingExpiry: z.boolean().default(true),
    /** Hard limit on a session's life, counted from its creation, whatever the sliding does. */
    absoluteMaxSeconds: z.int().min(1).default(30 * day),
    /** Creating one more ends the user's session nearest its expiry; this bounds the per-user index. */
    maxSessionsPerUser: z.int().min(1).max(10_000).default(100),
  })
  .refine((s) => s.absoluteMaxSeconds >= s.ttlSeconds, {
    path: ["absoluteMaxSeconds"],
    message: "must be at least ttlSeconds",
  });
export type SessionSection = z.infer<typeof sessionSectionSchema>;

export const sessionConfigSchema = z.strictObject({
  grpc: grpcServerSchema,
  admin: adminSchema,
  log: logSchema.prefault({}),
  redis: redisSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  session: sessionSectionSchema.prefault({}),
});
export type SessionConfig = z.infer<typeof sessionConfigSchema>;

/** The domain's settings (milliseconds) from the config section (seconds). */
export function sessionSettingsFrom(section: SessionSection): SessionSettings {
  return {
    ttlMs: section.ttlSeconds * 1000,
    slidingExpiry: section.slidingExpiry,
    absoluteMaxMs: section.absoluteMaxSeconds * 1000,
    maxSessionsPerUser: section.maxSessionsPerUser,
  };
}
