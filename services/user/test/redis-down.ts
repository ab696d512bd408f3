// A Redis client that can never connect (port 1) and fails every command at once, as in an outage.
import { Redis } from "ioredis";

export function createUnreachableRedis(): Redis {
  const redis = new Redis("redis://127.0.0.1:1", {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 200,
    retryStrategy: () => 1000,
  });
  // Connection errors are the point here; without a listener ioredis prints each one.
  redis.on("error", () => {});
  return redis;
}

/** Collects what a component logs, for assertions. */
export function createRecordingLogger() {
  const lines: { level: "warn" | "info"; msg: string }[] = [];
  return {
    lines,
    warn: (msg: string) => void lines.push({ level: "warn", msg }),
    info: (msg: string) => void lines.push({ level: "info", msg }),
  };
}
