// Graceful shutdown: on SIGTERM/SIGINT, stops what the process started, newest first, within a grace period.

export interface ShutdownLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface Shutdown {
  /**
   * Registers a step; steps run in REVERSE registration order (last started, first stopped), one at a
   * time. A step registered while shutdown is running runs next; one registered after it has finished
   * never runs (that is logged as an error).
   */
  onShutdown(name: string, step: () => Promise<void> | void): void;
  /**
   * Runs every step once (later calls return the same promise); each step bounded by the grace period
   * left; resolves with the exit code: 0 when all steps succeeded, 1 otherwise. Never rejects: a step
   * that throws or outlives the grace left is logged with its name and the rest still run (a step still
   * pending after the grace period is abandoned, not cancelled).
   */
  run(reason: string): Promise<number>;
  /**
   * Installs signal handlers (default SIGTERM and SIGINT) that call run() then exit(code); a second
   * signal exits at once with 1. Calling it again for a signal already handled adds nothing.
   */
  listen(signals?: NodeJS.Signals[]): void;
  /** Aborted when shutdown begins, so loops and background jobs can stop. */
  readonly signal: AbortSignal;
}

export interface ShutdownOptions {
  logger: ShutdownLogger;
  /** Total time all steps together may take. */
  graceMs: number;
  /** Ends the process; defaults to process.exit. */
  exit?: (code: number) => void;
}

interface Step {
  name: string;
  step: () => Promise<void> | void;
}

/** Creates the process's shutdown coordinator; build one in main.ts and pass its onShutdown down. */
export function createShutdown(options: ShutdownOptions): Shutdown {
  const { logger, graceMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const steps: Step[] = [];
  const controller = new AbortController();
  const handled = new Set<NodeJS.Signals>();
  let running: Promise<number> | undefined;
  let finished = false;
  let signalled = false;

  async function runSteps(reason: string): Promise<number> {
    const started = Date.now();
    const deadline = started + graceMs;
    logger.info("shutdown started", { reason, steps: steps.length, graceMs });
    controller.abort(new DOMException(`shutdown: ${reason}`, "AbortError"));
    let code = 0;
    // pop() rather than a snapshot, so a step registered while we run is still stopped, newest first.
    for (let next = steps.pop(); next; next = steps.pop()) {
      if (!(await runStep(next, deadline - Date.now(), logger))) code = 1;
    }
    finished = true;
    logger.info("shutdown finished", { reason, code, durationMs: Date.now() - started });
    return code;
  }

  function run(reason: string): Promise<number> {
    running ??= runSteps(reason);
    return running;
  }

  return {
    signal: controller.signal,
    onShutdown(name, step) {
      if (finished) {
        logger.error("shutdown step registered after shutdown finished; it will not run", { step: name });
        return;
      }
      steps.push({ name, step });
    },
    run,
    listen(signals = ["SIGTERM", "SIGINT"]) {
      for (const sig of signals) {
        if (handled.has(sig)) continue;
        handled.add(sig);
        process.on(sig, () => {
          if (signalled) {
            logger.error("second signal during shutdown; exiting now", { signal: sig });
            exit(1);
            return;
          }
          signalled = true;
          void run(`signal ${sig}`).then(exit);
        });
      }
    },
  };
}

/** Runs one step within `budgetMs`; true when it completed in time without throwing. */
async function runStep({ name, step }: Step, budgetMs: number, logger: ShutdownLogger): Promise<boolean> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, budgetMs));
  });
  try {
    // then() turns a synchronous throw into a rejection like an async one.
    const outcome = await Promise.race([Promise.resolve().then(step), timedOut]);
    if (outcome === "timeout") {
      logger.error("shutdown step cut off by the grace period", { step: name, budgetMs: Math.max(0, budgetMs) });
      return false;
    }
    logger.info("shutdown step done", { step: name, durationMs: Date.now() - started });
    return true;
  } catch (error) {
    logger.error("shutdown step failed", {
      step: name,
      durationMs: Date.now() - started,
      error: error instanceof Error ? error.message : String(error),
    });
    return false;
  } finally {
    clearTimeout(timer);
  }
}
