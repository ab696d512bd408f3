// Password hashing with bcrypt off the event loop, a bounded number of hashes in flight, admission
// control that refuses work which could not finish before its caller's deadline, and a dummy compare
// that makes an unknown account cost as much as a wrong password.
import { randomBytes } from "node:crypto";
import bcrypt from "bcrypt";
import pLimit from "p-limit";
import { Code, ConnectError, invalidArgument, resourceExhausted } from "../../internal/errors/errors.js";
import { currentScope, remainingMs } from "../../internal/trace/call-scope.js";
import type { PasswordHasher } from "./users.js";
import { fitsBcrypt, maxPasswordBytes } from "./validation.js";

/**
 * The two bcrypt calls used: in production the hashing threads of createBcryptWorkerPool; by default
 * bcrypt's async API (libuv's threadpool); in tests a wrapper or a fake.
 */
export interface BcryptFunctions {
  readonly hash: (data: string, saltOrRounds: number) => Promise<string>;
  readonly compare: (data: string, encrypted: string) => Promise<boolean>;
}

/**
 * Why a job was refused without hashing: "busy" on arrival (the queue would outlast the caller's
 * deadline), "deadline" and "cancelled" when its turn came (the caller's deadline had passed or was
 * nearer than a hash, or the caller had gone).
 */
export type RefusalReason = "busy" | "deadline" | "cancelled";

export interface BcryptPasswordHasherOptions {
  /** bcrypt work factor (4..31; the config allows 4..15). */
  readonly cost: number;
  /** Hashes and compares running at once; more wait in a FIFO queue. */
  readonly maxConcurrent: number;
  readonly bcrypt?: BcryptFunctions;
  /** Counts refused jobs by reason (a prom-client Counter with a "reason" label fits). */
  readonly refused?: { inc(labels: { reason: RefusalReason }): void };
  /** Epoch milliseconds, for deadlines and hash durations; tests inject their own. */
  readonly clock?: () => number;
}

export interface BcryptPasswordHasher extends PasswordHasher {
  readonly cost: number;
  /** Hashes and compares running now, and waiting for a slot (for gauges). */
  load(): { running: number; queued: number };
}

/**
 * A PasswordHasher on bcrypt. hash rejects with INVALID_ARGUMENT (no field: callers validate first and
 * name the field) for a password over 72 bytes, because bcrypt would silently ignore the rest. verify
 * and verifyAgainstDummy answer false for such a password at once, equally for both, since no stored
 * hash can match it. The dummy hash is computed once, in the background, when the hasher is created.
 *
 * Inside a call scope (internal/trace/call-scope.ts) every method may also reject, without hashing:
 * - RESOURCE_EXHAUSTED with a RetryInfo, at once, when the jobs ahead (running, and queued for callers
 *   still waiting) would keep this one waiting past the caller's deadline: (⌊ahead / maxConcurrent⌋ + 1)
 *   × a typical hash, the moving average of past ones (no estimate before the first hash finishes:
 *   everything is admitted; a free slot always admits);
 * - DEADLINE_EXCEEDED when its turn comes and the deadline has passed, or less than a typical hash is
 *   left while other hashes run (alone it runs anyway, so that the estimate keeps being measured);
 * - CANCELLED when its turn comes and the scope's signal is aborted (the caller has gone).
 */
export function createBcryptPasswordHasher(options: BcryptPasswordHasherOptions): BcryptPasswordHasher {
  const { cost, maxConcurrent } = options;
  const engine = options.bcrypt ?? bcrypt;
  const clock = options.clock ?? Date.now;
  const refusal = (reason: RefusalReason, error: ConnectError): ConnectError => {
    options.refused?.inc({ reason });
    return error;
  };
  const limit = pLimit(maxConcurrent);
  // How long one hash takes here (moving average), to tell whether a job can still finish in time.
  let typicalMs = 0;
  const timed = async <T>(work: () => Promise<T>): Promise<T> => {
    const started = clock();
    try {
      return await work();
    } finally {
      const took = clock() - started;
      typicalMs = typicalMs === 0 ? took : typicalMs * 0.8 + took * 0.2;
    }
  };

  /**
   * Under a login storm a queue longer than the deadline fills with hashes for callers that get 504
   * before their turn: refusing on arrival keeps every slot on callers that can still succeed, and
   * tells the others at once when to come back.
   */
  const admit = (): void => {
    const left = remainingMs(clock());
    // No deadline, nothing to miss. (No estimate yet: typicalMs is 0, so everything fits.)
    if (left === undefined) return;
    // Queued jobs whose callers have gone will be skipped in no time: they are not ahead of anyone.
    const ahead = limit.activeCount + limit.pendingCount - queuedForGoneCallers;
    // A free slot always admits: the estimate only moves when hashes run, so refusing here could leave
    // an estimate grown in a bad minute above every budget for good.
    if (ahead < maxConcurrent) return;
    const expectedMs = (Math.floor(ahead / maxConcurrent) + 1) * typicalMs;
    if (expectedMs <= left) return;
    // Once the queue has shrunk by the excess, a retry with the same budget would fit (whole seconds,
    // as Retry-After says it, so the message and the header agree).
    const retrySeconds = Math.max(1, Math.ceil((expectedMs - left) / 1000));
    throw refusal("busy", resourceExhausted(`the service is busy; try again in ${retrySeconds} s`, retrySeconds * 1000));
  };

  /**
   * Runs a job when a slot frees, unless its caller has gone or its deadline (the call scope, which
   * p-limit keeps across the queue) has passed or will pass before a hash could finish.
   */
  const inTime = <T>(work: () => Promise<T>) => () => {
    if (currentScope()?.signal?.aborted) {
      throw refusal("cancelled", new ConnectError("the caller cancelled while waiting for a password check", Code.Canceled));
    }
    const left = remainingMs(clock());
    // Alone in the hasher (p-limit counts this job as active), a job still in time runs even if a
    // typical hash is longer than what is left: otherwise a stale estimate could skip every job forever.
    const alone = limit.activeCount === 1;
    if (left !== undefined && (left === 0 || (left < typicalMs && !alone))) {
      throw refusal("deadline", new ConnectError("the deadline passed while waiting for a password check", Code.DeadlineExceeded));
    }
    return timed(work);
  };
  // Queued jobs whose caller's signal has aborted, until their turn comes (admission leaves them out).
  let queuedForGoneCallers = 0;
  const run = <T>(work: () => Promise<T>): Promise<T> => {
    admit();
    const signal = currentScope()?.signal;
    if (!signal || signal.aborted) return limit(inTime(work));
    let counted = false;
    const onGone = () => {
      counted = true;
      queuedForGoneCallers++;
    };
    signal.addEventListener("abort", onGone, { once: true });
    return limit(() => {
      signal.removeEventListener("abort", onGone);
      if (counted) queuedForGoneCallers--;
      return inTime(work)();
    });
  };

  const hashNow = (password: string) => run(() => engine.hash(password, cost));
  const compareNow = (password: string, hash: string) => run(() => engine.compare(password, hash));

  // Same cost as real hashes, so comparing against it takes as long as comparing against a real one.
  // Made outside any call scope: never refused.
  const dummyHash = hashNow(randomBytes(18).toString("base64"));
  // Awaited by verifyAgainstDummy, which reports the failure; this only avoids an unhandled rejection.
  dummyHash.catch(() => {});

  return {
    cost,

    async hash(password) {
      if (!fitsBcrypt(password)) throw invalidArgument(`password must be at most ${maxPasswordBytes} bytes`);
      return hashNow(password);
    },

    async verify(password, hash) {
      if (!fitsBcrypt(password)) return false;
      return compareNow(password, hash);
    },

    async verifyAgainstDummy(password) {
      if (!fitsBcrypt(password)) return false;
      await compareNow(password, await dummyHash);
      return false;
    },

    load: () => ({ running: limit.activeCount, queued: limit.pendingCount }),
  };
}

/** The cost a bcrypt hash was made with ("$2b$12$..." → 12), or undefined if it is not one. */
export function bcryptCostOf(hash: string): number | undefined {
  const match = /^\$2[abxy]\$(\d{2})\$/.exec(hash);
  return match ? Number(match[1]) : undefined;
}
