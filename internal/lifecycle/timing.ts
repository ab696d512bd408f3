// Small timing primitives shared by the reconnecting and shutting-down parts of the kit.

/** Resolves when work settles or after ms, whichever is first; never rejects. */
export function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

export interface ReconnectDelays {
  readonly min: number;
  readonly max: number;
}

/**
 * Capped exponential backoff with "equal jitter": somewhere in the upper half of min·2^attempt (capped
 * at max), never below min. Used for reconnecting to brokers, where a floor avoids hammering.
 */
export function reconnectDelay(attempt: number, bounds: ReconnectDelays, random: () => number = Math.random): number {
  const step = Math.min(bounds.max, bounds.min * 2 ** Math.min(attempt, 30));
  return Math.max(bounds.min, Math.round(step / 2 + (random() * step) / 2));
}

export interface WakeableSleep {
  /** Resolves after ms, or as soon as wake() is called; never rejects. */
  sleep(ms: number): Promise<void>;
  /** Ends the sleep in progress, if any (a later sleep is not affected). */
  wake(): void;
}

/** The sleep of a background loop (poll interval, backoff) that stop() or a notification can cut short. */
export function createWakeableSleep(): WakeableSleep {
  let wake: (() => void) | undefined;
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      }),
    wake: () => wake?.(),
  };
}
