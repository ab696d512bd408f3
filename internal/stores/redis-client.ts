// A Redis client configured the same way in every process: fails fast while disconnected (so a
// cache outage degrades instead of queueing requests), reconnects with capped backoff.
import { Redis } from "ioredis";
import type { DependencyCheck } from "../health/dependency-check.js";

export interface RedisClientLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Connects to `url`. Commands issued while the connection is down reject at once (no offline
 * queue) instead of waiting; callers map that to UNAVAILABLE or fall back, as their contract says.
 */
export function createRedisClient(url: string, logger: RedisClientLogger, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    // Commands issued in the same tick go out in one write: under load every command was its own
    // socket write (about a tenth of the session service's CPU, docs/performance.md).
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 5000),
  });
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) logger.warn("redis connection error", { err: error });
    down = true;
  });
  redis.on("ready", () => {
    if (down) logger.info("redis reconnected");
    down = false;
  });
  return redis;
}

/** Readiness: Redis answers PING. */
export function redisDependency(redis: Redis): DependencyCheck {
  return { name: "redis", check: async () => (await redis.ping()) === "PONG" };
}

/** Waits until the client is ready, or rejects after timeoutMs naming the URL's host. */
export function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis not reachable at ${redis.options.host}:${redis.options.port} after ${timeoutMs} ms`)), timeoutMs);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
