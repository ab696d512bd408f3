// Cache-aside storage of profiles in Redis, as JSON with a TTL. A cache outage degrades to a miss (and
// writes to no-ops), never to an error: PostgreSQL stays the source of truth.
import { z } from "zod";
import type { Redis } from "ioredis";
import { createFailOpen, type FailOpenLogger } from "../../internal/stores/fail-open.js";
import type { ProfileCache, UserProfile } from "./users.js";

export interface RedisProfileCacheOptions {
  /** Prepended to every key, e.g. "usermesh:"; profiles live at P profile:<userId>. */
  readonly keyPrefix: string;
  readonly ttlSeconds: number;
  readonly logger: FailOpenLogger;
}

// What is stored: times as epoch milliseconds. An entry that does not parse is treated as a miss.
const cachedProfileSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
});

/**
 * A ProfileCache on Redis. get resolves undefined on a miss, on an unreadable entry and when Redis
 * fails; set and invalidate resolve in every case. Failures are logged at warn, once per outage.
 */
export function createRedisProfileCache(redis: Redis, options: RedisProfileCacheOptions): ProfileCache {
  const { keyPrefix, ttlSeconds } = options;
  const failOpen = createFailOpen(options.logger, "profile cache");
  const key = (userId: string) => `${keyPrefix}profile:${userId}`;

  return {
    async get(userId) {
      const text = await failOpen(() => redis.get(key(userId)), null);
      if (text === null) return undefined;
      const parsed = cachedProfileSchema.safeParse(parseJson(text));
      if (!parsed.success) return undefined;
      const { createdAtMs, updatedAtMs, ...rest } = parsed.data;
      return { ...rest, createdAt: new Date(createdAtMs), updatedAt: new Date(updatedAtMs) };
    },

    async set(profile: UserProfile) {
      const entry = JSON.stringify({
        id: profile.id,
        email: profile.email,
        name: profile.name,
        createdAtMs: profile.createdAt.getTime(),
        updatedAtMs: profile.updatedAt.getTime(),
      });
      await failOpen(() => redis.set(key(profile.id), entry, "EX", ttlSeconds), null);
    },

    async invalidate(userId) {
      await failOpen(() => redis.del(key(userId)), 0);
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
