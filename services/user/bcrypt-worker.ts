// Runs inside each hashing thread of the bcrypt worker pool: lowers this thread's CPU priority once, at
// load, then hashes with bcrypt's synchronous API so the work stays on this (nice) thread.
import { getPriority, setPriority } from "node:os";
import { workerData } from "node:worker_threads";
import bcrypt from "bcrypt";

/** What the pool passes to each thread it starts. */
export interface BcryptWorkerData {
  /** The nice value (0..19) this thread runs at. */
  readonly niceness: number;
}

export interface HashTask {
  readonly data: string;
  readonly rounds: number;
}

export interface CompareTask {
  readonly data: string;
  readonly encrypted: string;
}

const { niceness } = workerData as BcryptWorkerData;
// On Linux setpriority(PRIO_PROCESS, 0) changes the calling thread only, so the event loop and libuv's
// threadpool keep their priority. Never below the process's own nice value: lowering it needs
// CAP_SYS_NICE, and a process started under `nice` meant to be that nice.
const target = Math.max(niceness, getPriority());
if (target !== getPriority()) setPriority(target);

/** This thread's nice value; the pool's first task on each thread, to know it has started. */
export function ready(): number {
  return getPriority();
}

// The async API would hand the work to libuv's shared threadpool, whose threads are not nice.
export function hash(task: HashTask): string {
  return bcrypt.hashSync(task.data, task.rounds);
}

export function compare(task: CompareTask): boolean {
  return bcrypt.compareSync(task.data, task.encrypted);
}
