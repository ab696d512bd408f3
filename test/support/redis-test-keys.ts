// A real Redis for integration tests: one client and a key prefix unique to the run, removed afterwards.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";

export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export interface RedisTestKeys {
  readonly redis: Redis;
  /** e.g. "test:session:<uuid>:"; every key the test writes starts with it. */
  readonly keyPrefix: string;
  /** Every key under the prefix, found with SCAN. */
  keys(): Promise<string[]>;
  /** Deletes every key under the prefix and closes the client. */
  close(): Promise<void>;
}

export function createRedisTestKeys(label = "session"): RedisTestKeys {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const keyPrefix = `test:${label}:${randomUUID()}:`;

  async function keys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
      found.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    return found;
  }

  return {
    redis,
    keyPrefix,
    keys,
    async close() {
      const left = await keys();
      for (let i = 0; i < left.length; i += 500) await redis.del(...left.slice(i, i + 500));
      await redis.quit();
    },
  };
}
