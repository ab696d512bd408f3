// Password hashing with bcrypt on libuv's threadpool (never the event loop), a bounded number of hashes
// in flight, and a dummy compare that makes an unknown account cost as much as a wrong password.
import { randomBytes } from "node:crypto";
import bcrypt from "bcrypt";
import pLimit from "p-limit";
import { Code, ConnectError, invalidArgument } from "../../internal/errors/errors.js";
import { remainingMs } from "../../internal/trace/call-scope.js";
import type { PasswordHasher } from "./users.js";
import { fitsBcrypt, maxPasswordBytes } from "./validation.js";

/** The two bcrypt calls used; tests pass a wrapper around the real ones to watch concurrency. */
export interface BcryptFunctions {
  readonly hash: (data: string, saltOrRounds: number) => Promise<string>;
  readonly compare: (data: string, encrypted: string) => Promise<boolean>;
}

export interface BcryptPasswordHasherOptions {
  /** bcrypt work factor (4..31; the config allows 4..15). */
  readonly cost: number;
  /** Hashes and compares running at once; more wait in a FIFO queue. */
  readonly maxConcurrent: number;
  readonly bcrypt?: BcryptFunctions;
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
 */
export function createBcryptPasswordHasher(options: BcryptPasswordHasherOptions): BcryptPasswordHasher {
  const { cost } = options;
  const engine = options.bcrypt ?? bcrypt;
  const limit = pLimit(options.maxConcurrent);
  // How long one hash takes here (moving average), to tell whether a queued job can still finish in time.
  let typicalMs = 0;
  const timed = async <T>(work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      const took = performance.now() - started;
      typicalMs = typicalMs === 0 ? took : typicalMs * 0.8 + took * 0.2;
    }
  };
  /**
   * Runs a job when a slot frees, unless the calling RPC's deadline (the call scope, which p-limit
   * keeps across the queue) has passed or will pass before a hash could finish: under a login storm the
   * queue otherwise fills with hashes for callers that are gone, and no login succeeds any more.
   */
  const inTime = <T>(work: () => Promise<T>) => () => {
    const left = remainingMs();
    if (left !== undefined && left < typicalMs) {
      throw new ConnectError("the deadline passed while waiting for a password check", Code.DeadlineExceeded);
    }
    return timed(work);
  };

  const hashNow = (password: string) => limit(inTime(() => engine.hash(password, cost)));
  const compareNow = (password: string, hash: string) => limit(inTime(() => engine.compare(password, hash)));

  // Same cost as real hashes, so comparing against it takes as long as comparing against a real one.
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
