// bcrypt on a small pool of worker threads running at a lower CPU priority (a higher nice value), so a
// login storm takes only the CPU the request path leaves over. libuv's threadpool, where bcrypt's async
// API runs, is shared with DNS and file I/O and cannot be reniced; these threads can.
import { getPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import type { BcryptWorkerData, CompareTask, HashTask } from "./bcrypt-worker.js";
import type { BcryptFunctions } from "./password-hasher.js";

export interface BcryptWorkerPoolOptions {
  /** Hashing threads, started at once and kept (one per hashing slot of the password hasher). */
  readonly threads: number;
  /** nice value (0..19) of the hashing threads; the process's other threads keep theirs. */
  readonly niceness: number;
  /** Called with a thread's failure outside any hash (a thread that died idle); the pool replaces it. */
  readonly onError?: (error: unknown) => void;
}

/** BcryptFunctions on the pool's threads, and the pool's end. */
export interface BcryptWorkerPool extends BcryptFunctions {
  /** Lets running hashes finish, then stops the threads; hash and compare reject afterwards. */
  close(): Promise<void>;
}

/**
 * Starts `threads` worker threads that each set their own nice value to `niceness` (never below the
 * process's) and run bcrypt's synchronous hashSync / compareSync, and resolves once every thread has
 * loaded. Tasks beyond `threads` wait in the pool's queue; the password hasher keeps at most that many
 * in flight, so they never do. hash and compare reject with bcrypt's own error (e.g. an invalid salt)
 * or when a thread dies mid-hash.
 *
 * Rejects (and stops the threads) if a thread cannot load the worker module, e.g. from a build that did
 * not emit it, or does not run at the expected nice value.
 */
export async function createBcryptWorkerPool(options: BcryptWorkerPoolOptions): Promise<BcryptWorkerPool> {
  const { filename, execArgv } = workerModule();
  const workerData: BcryptWorkerData = { niceness: options.niceness };
  const pool = new Piscina({
    filename,
    // The export each thread looks up when it loads the module; piscina's "default" does not exist here.
    name: "ready",
    minThreads: options.threads,
    maxThreads: options.threads,
    concurrentTasksPerWorker: 1,
    workerData,
    ...(execArgv ? { execArgv } : {}),
  });
  // Without a listener an 'error' event would crash the process; the pool already starts a replacement.
  pool.on("error", (error: unknown) => options.onError?.(error));

  // Piscina counts a starting thread as ready. One task per thread (each busy thread takes no other)
  // waits for them all, so that a thread's start-up (hundreds of ms from source) is not taken for the
  // duration of the first hash, and a thread that cannot start stops the process at once.
  const expected = Math.max(options.niceness, getPriority());
  try {
    const niceness = (await Promise.all(
      Array.from({ length: options.threads }, () => pool.run(undefined)),
    )) as number[];
    if (niceness.some((n) => n !== expected)) {
      throw new Error(`hashing threads run at nice ${niceness.join(", ")}, not ${expected}`);
    }
  } catch (error) {
    await pool.destroy();
    throw error;
  }

  // A closed Piscina starts new threads for the next task; after close there must be none.
  let closed = false;
  const run = async <R>(task: HashTask | CompareTask, name: "hash" | "compare"): Promise<R> => {
    if (closed) throw new Error("the hashing threads are closed");
    return (await pool.run(task, { name })) as R;
  };
  return {
    hash: (data, rounds) => run<string>({ data, rounds }, "hash"),
    compare: (data, encrypted) => run<boolean>({ data, encrypted }, "compare"),
    close: async () => {
      closed = true;
      await pool.close();
    },
  };
}

/**
 * The worker module beside this one: bcrypt-worker.js when compiled (dist/), bcrypt-worker.ts when run
 * from source under tsx (tests, `node --import tsx`). On Node 20 `--import tsx` registers its hooks on
 * the main thread only, so from source each thread registers tsx's require hook itself, first thing
 * (piscina loads the module with require, and with import only if that yields no function).
 */
function workerModule(): { filename: string; execArgv?: string[] } {
  const fromSource = import.meta.url.endsWith(".ts");
  const filename = fileURLToPath(new URL(fromSource ? "./bcrypt-worker.ts" : "./bcrypt-worker.js", import.meta.url));
  if (!fromSource) return { filename };
  // Resolved from this module's folder: a data: module has no base of its own.
  const registerTsx = `import { createRequire } from "node:module"; createRequire(${JSON.stringify(import.meta.url)})("tsx/cjs/api").register();`;
  return { filename, execArgv: [...process.execArgv, "--import", `data:text/javascript,${encodeURIComponent(registerTsx)}`] };
}
