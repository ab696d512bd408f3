// Request rate limits kept in Redis (rate-limiter-flexible's atomic fixed window), failing open
// when Redis is away.
import type { Request, RequestHandler, Response } from "express";
import type { Redis } from "ioredis";
import type { Registry } from "prom-client";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { Logger } from "../../internal/logging/logger.js";
import { getOrCreateCounter } from "../../internal/metrics/registry.js";
import { maybeAuthOf } from "../request-context.js";
import { httpProblem } from "./problem-response.js";

export interface RateLimiterOptions {
  /** The Redis client the counters live in; best configured without an offline queue. */
  readonly redis: Redis;
  /** Prefix of every key: `<keyPrefix>:<name>:<key>`. */
  readonly keyPrefix: string;
  /** Requests allowed per key in each window. */
  readonly points: number;
  /** Window length in seconds (whole seconds: the library's Redis TTL resolution). */
  readonly durationSeconds: number;
  /** The key a request counts against (client IP, user id), or undefined to let it pass uncounted. */
  readonly key: (req: Request, res: Response) => string | undefined;
  /** Names the limiter in keys, logs and the `limiter` label. */
  readonly name: string;
  readonly registry: Registry;
  readonly logger: Logger;
}

/**
 * Counts each request against `key(req, res)` in Redis (one atomic Lua script per request, a fixed
 * window of `durationSeconds`) and sets `RateLimit-Limit`, `RateLimit-Remaining` and
 * `RateLimit-Reset` (seconds to the window's end; IETF draft headers) plus `RateLimit-Policy`. When
 * several limiters apply to a request, the headers describe the one with the fewest requests left.
 * Past the limit: 429 problem with `Retry-After`. When Redis fails or is not connected the request
 * passes (fail open), `rate_limit_fail_open_total{limiter}` counts it, and one warning is logged per
 * outage (an info line when Redis answers again). Throws at creation when points or durationSeconds is
 * not a positive integer.
 */
export function createRateLimiter(options: RateLimiterOptions): RequestHandler {
  const { points, durationSeconds, name, logger } = options;
  if (!Number.isInteger(points) || points <= 0) throw new Error("createRateLimiter: points must be a positive integer");
  if (!Number.isInteger(durationSeconds) || durationSeconds <= 0) {
    throw new Error("createRateLimiter: durationSeconds must be a positive integer");
  }
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: `${options.keyPrefix}:${name}`,
    points,
    duration: durationSeconds,
    // Fail at once while disconnected instead of waiting on the client; no insurance limiter: a
    // per-process in-memory count would be wrong with several gateways, so an outage lets requests through.
    rejectIfRedisNotReady: true,
  });
  const failOpen = getOrCreateCounter(options.registry, {
    name: "rate_limit_fail_open_total",
    help: "Requests let through unchecked because the rate limiter's Redis failed, by limiter.",
    labelNames: ["limiter"],
  });
  let outage = false;

  return async (req, res, next) => {
    const key = options.key(req, res);
    if (key === undefined) return next();
    let result: RateLimiterRes;
    let limited = false;
    try {
      result = await limiter.consume(key);
    } catch (rejection: unknown) {
      if (!(rejection instanceof RateLimiterRes)) {
        failOpen.inc({ limiter: name });
        if (!outage) logger.warn("rate limiter failing open: redis unavailable", { limiter: name, err: rejection });
        outage = true;
        return next();
      }
      result = rejection;
      limited = true;
    }
    if (outage) logger.info("rate limiter back on redis", { limiter: name });
    outage = false;

    const resetSeconds = Math.max(1, Math.ceil(result.msBeforeNext / 1000));
    setRateLimitHeaders(res, { limit: points, remaining: result.remainingPoints, resetSeconds, windowSeconds: durationSeconds });
    if (!limited) return next();
    next(
      httpProblem(429, `too many requests; retry in ${resetSeconds} s`, {
        headers: { "Retry-After": String(resetSeconds) },
      }),
    );
  };
}

/** Key by client address: req.ip, which honours Express' "trust proxy" setting (set it behind a proxy). */
export function byClientIp(req: Request): string | undefined {
  return req.ip;
}

/** Key by authenticated user (mount after auth); unauthenticated requests pass uncounted. */
export function byUserId(_req: Request, res: Response): string | undefined {
  return maybeAuthOf(res)?.userId;
}

function setRateLimitHeaders(
  res: Response,
  state: { limit: number; remaining: number; resetSeconds: number; windowSeconds: number },
): void {
  const current = Number(res.getHeader("RateLimit-Remaining"));
  // A stricter limiter earlier in the chain keeps its headers: they are what the client runs into first.
  if (Number.isFinite(current) && res.hasHeader("RateLimit-Remaining") && current <= state.remaining) return;
  res.setHeader("RateLimit-Limit", String(state.limit));
  res.setHeader("RateLimit-Remaining", String(state.remaining));
  res.setHeader("RateLimit-Reset", String(state.resetSeconds));
  res.setHeader("RateLimit-Policy", `${state.limit};w=${state.windowSeconds}`);
}
