// Retry policy for idempotent calls: capped exponential backoff with full jitter, never past the
// call's deadline.
import { Code, ConnectError } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import { cancelledError } from "./call-cancelled.js";

export interface RetryPolicy {
  /** Total attempts including the first; 1 disables retries. */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 1000, multiplier: 2 };

/** Only methods the contract marks idempotent (or side-effect free) may be sent twice. */
export function isRetryable(method: DescMethod): boolean {
  return method.idempotency === Idempotency.IDEMPOTENT || method.idempotency === Idempotency.NO_SIDE_EFFECTS;
}

/**
 * The wait before retry number `retry` (1-based): uniform in [0, min(max, initial * multiplier^(retry-1))].
 * `random` is injectable so tests can check the bounds.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Runs attempt() until it succeeds, fails with something other than UNAVAILABLE, runs out of
 * attempts, or the next wait would end past the deadline (then the last error is thrown). Once
 * options.signal aborts, no further attempt is made: a wait in progress ends at once and the call
 * fails with CANCELLED.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  deadline: number | undefined,
  attempt: () => Promise<T>,
  options: { signal?: AbortSignal; random?: () => number; now?: () => number } = {},
): Promise<T> {
  const now = options.now ?? Date.now;
  for (let attemptNo = 1; ; attemptNo++) {
    try {
      return await attempt();
    } catch (thrown) {
      const error = ConnectError.from(thrown);
      if (error.code !== Code.Unavailable || attemptNo >= policy.maxAttempts) throw error;
      if (options.signal?.aborted) throw cancelledError(options.signal);
      const wait = backoffMs(policy, attemptNo, options.random);
      if (deadline !== undefined && now() + wait >= deadline) throw error;
      await sleep(wait, options.signal);
      if (options.signal?.aborted) throw cancelledError(options.signal);
    }
  }
}

/**
 * Resolves after ms, or as soon as signal aborts. The abort listener goes when the wait ends: the
 * signal usually outlives it (a request's, or the transport's shared never-aborted one).
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
