// Brute-force protection for logins: failures counted in Redis per account and per client IP, each in a
// fixed window that starts with its first failure. Fails open: with Redis down, logins still work.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { resourceExhausted } from "../../internal/errors/errors.js";
import { createFailOpen, type FailOpenLogger } from "../../internal/stores/fail-open.js";
import type { LoginThrottle } from "./users.js";
import { emailKey } from "./validation.js";

export interface RedisLoginThrottleOptions {
  /** Prepended to every key, e.g. "usermesh:". */
  readonly keyPrefix: string;
  readonly maxFailuresPerAccount: number;
  readonly maxFailuresPerIp: number;
  readonly windowMs: number;
  readonly logger: FailOpenLogger;
}

/*
 * Keys (P = keyPrefix), each a counter expiring windowMs after its first failure:
 *   P login-failures:account:<sha256(lowercased email) hex>   (no email in clear text in Redis)
 *   P login-failures:ip:<ip>
 */

// KEYS: the counters to bump. ARGV: window in ms. Returns the new counts. The expiry is set when the
// counter has none, which also repairs a counter that lost its TTL.
const recordScript = `
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return counts
`;

type RecordCall = (numberOfKeys: number, ...args: (string | number)[]) => Promise<number[]>;

/**
 * A LoginThrottle on Redis. check throws RESOURCE_EXHAUSTED (RetryInfo: the time left in the longest
 * exceeded window) once an account or an IP has as many failures as its limit. An empty ip is not
 * counted per IP (all unknown clients would share one counter and lock each other out). reset clears
 * only the account: a success must not clear the IP's count, or one known password would let its owner
 * keep guessing others from the same address. Every Redis error fails open: logged at warn, the check
 * passes, the count is skipped.
 */
export function createRedisLoginThrottle(redis: Redis, options: RedisLoginThrottleOptions): LoginThrottle {
  const { keyPrefix, maxFailuresPerAccount, maxFailuresPerIp, windowMs } = options;
  const failOpen = createFailOpen(options.logger, "login throttle");
  const accountKey = (email: string) =>
    `${keyPrefix}login-failures:account:${createHash("sha256").update(emailKey(email)).digest("hex")}`;
  const ipKey = (ip: string) => `${keyPrefix}login-failures:ip:${ip}`;

  redis.defineCommand("usermeshLoginFailure", { lua: recordScript });
  // defineCommand adds the method at run time (EVALSHA, falling back to EVAL); ioredis cannot type it.
  const command = (redis as unknown as Record<string, RecordCall>).usermeshLoginFailure;
  const record: RecordCall = (...args) => command.apply(redis, args);

  return {
    async check(email, ip) {
      const limits: [key: string, max: number][] = [[accountKey(email), maxFailuresPerAccount]];
      if (ip !== "") limits.push([ipKey(ip), maxFailuresPerIp]);
      const readings = await failOpen(async () => {
        const multi = redis.multi();
        for (const [key] of limits) multi.get(key).pttl(key);
        const replies = await multi.exec();
        if (!replies) throw new Error("login throttle transaction aborted");
        for (const [error] of replies) if (error) throw error;
        return replies.map(([, value]) => value);
      }, []);

      let retryAfterMs = 0;
      limits.forEach(([, max], i) => {
        const count = Number(readings[2 * i] ?? 0);
        const ttl = Number(readings[2 * i + 1] ?? -2);
        if (count >= max) retryAfterMs = Math.max(retryAfterMs, ttl > 0 ? ttl : windowMs);
      });
      if (retryAfterMs > 0) throw resourceExhausted("too many failed login attempts, try again later", retryAfterMs);
    },

    async recordFailure(email, ip) {
      const keys = [accountKey(email)];
      if (ip !== "") keys.push(ipKey(ip));
      await failOpen(() => record(keys.length, ...keys, windowMs), []);
    },

    async reset(email) {
      await failOpen(() => redis.del(accountKey(email)), 0);
    },
  };
}
