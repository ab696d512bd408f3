// Optional Redis work (throttle counters, caches) that must never fail a request: an error
// becomes the caller's fallback value and one warning per outage, not one per call.

export interface FailOpenLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

/** Runs `op`; if it rejects, resolves with `fallback` instead. Never rejects. */
export type FailOpen = <T>(op: () => Promise<T>, fallback: T) => Promise<T>;

/**
 * A FailOpen for one component: the first failure after a success logs at warn (with the error), later
 * ones stay quiet until an operation succeeds again, which logs at info.
 */
export function createFailOpen(logger: FailOpenLogger, component: string): FailOpen {
  let failing = false;
  return async (op, fallback) => {
    try {
      const result = await op();
      if (failing) logger.info(`${component} recovered`, { component });
      failing = false;
      return result;
    } catch (error) {
      if (!failing) logger.warn(`${component} unavailable, degrading`, { component, err: error });
      failing = true;
      return fallback;
    }
  };
}
