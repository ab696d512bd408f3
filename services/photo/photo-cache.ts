// Pages of users' photo lists cached in Redis: one hash per user (a field per page size and token), so one
// DEL drops every page of that user. A cache outage degrades to a miss (and writes to no-ops), never to an
// error: PostgreSQL stays the source of truth.
import { z } from "zod";
import type { Redis } from "ioredis";
import type { PhotoListCache, PhotoPage } from "./photos.js";
import { createFailOpen } from "../../internal/stores/fail-open.js";

export interface PhotoCacheLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface RedisPhotoListCacheOptions {
  /** Prepended to every key, e.g. "usermesh:"; a user's pages live in the hash P photos:<userId>. */
  readonly keyPrefix: string;
  /** The longest any cached page lives (writes invalidate it sooner). */
  readonly ttlSeconds: number;
  readonly logger: PhotoCacheLogger;
}

// What is stored: times as epoch milliseconds. An entry that does not parse is treated as a miss.
const cachedPageSchema = z.object({
  photos: z.array(
    z.object({
      id: z.string(),
      userId: z.string(),
      contentType: z.string(),
      sizeBytes: z.number(),
      width: z.number(),
      height: z.number(),
      sha256: z.string(),
      filename: z.string(),
      createdAtMs: z.number(),
    }),
  ),
  nextPageToken: z.string(),
});

/**
 * A PhotoListCache on Redis. get resolves undefined on a miss, on an unreadable entry and when Redis fails;
 * set and invalidate resolve in every case. Failures are logged at warn, once per outage, and the recovery
 * at info.
 *
 * The hash's TTL is set only when it has none (EXPIRE NX), so no page outlives ttlSeconds even while other
 * pages keep being added to the hash.
 */
export function createRedisPhotoListCache(redis: Redis, options: RedisPhotoListCacheOptions): PhotoListCache {
  const { keyPrefix, ttlSeconds, logger } = options;
  const key = (userId: string) => `${keyPrefix}photos:${userId}`;
  const field = (pageSize: number, pageToken: string) => `${pageSize}:${pageToken}`;

  const failOpen = createFailOpen(logger, "photo list cache");

  return {
    async get(userId, pageSize, pageToken) {
      const text = await failOpen(() => redis.hget(key(userId), field(pageSize, pageToken)), null);
      if (text === null) return undefined;
      const parsed = cachedPageSchema.safeParse(parseJson(text));
      if (!parsed.success) return undefined;
      return {
        photos: parsed.data.photos.map(({ createdAtMs, ...photo }) => ({ ...photo, createdAt: new Date(createdAtMs) })),
        nextPageToken: parsed.data.nextPageToken,
      };
    },

    async set(userId, pageSize, pageToken, page: PhotoPage) {
      const entry = JSON.stringify({
        photos: page.photos.map((p) => ({
          id: p.id,
          userId: p.userId,
          contentType: p.contentType,
          sizeBytes: p.sizeBytes,
          width: p.width,
          height: p.height,
          sha256: p.sha256,
          filename: p.filename,
          createdAtMs: p.createdAt.getTime(),
        })),
        nextPageToken: page.nextPageToken,
      });
      await failOpen(async () => {
        const replies = await redis
          .multi()
          .hset(key(userId), field(pageSize, pageToken), entry)
          .expire(key(userId), ttlSeconds, "NX")
          .exec();
        // A MULTI that Redis refused resolves with the error inside its replies.
        const refused = replies?.find(([error]) => error !== null)?.[0];
        if (refused) throw refused;
      }, undefined);
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
