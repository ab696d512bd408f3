// The bcrypt worker pool with real threads and the real bcrypt, watched from outside through
// /proc/self/task (Linux): each thread's nice value and CPU time as the kernel counts them.
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import bcrypt from "bcrypt";
import { createBcryptWorkerPool, type BcryptWorkerPool } from "../bcrypt-worker-pool.js";
import { bcryptCostOf } from "../password-hasher.js";

interface ThreadStat {
  readonly nice: number;
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number;
}

/** Every thread of this process by thread id, from /proc/self/task/<tid>/stat (fields 14, 15, 19). */
function threads(): Map<number, ThreadStat> {
  const found = new Map<number, ThreadStat>();
  for (const tid of readdirSync("/proc/self/task")) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      continue; // ended between the listing and the read
    }
    // Fields after "(comm)" start at field 3 (state); comm itself may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    found.set(Number(tid), { nice: fields[19 - 3], cpuTicks: fields[14 - 3] + fields[15 - 3] });
  }
  return found;
}

const newThreads = (earlier: Map<number, ThreadStat>) => [...threads()].filter(([tid]) => !earlier.has(tid));

describe("bcrypt worker pool (real threads, real bcrypt)", function () {
  this.timeout(30_000);
  const base = getPriority();
  const niceness = 7;
  let beforePool: Map<number, ThreadStat>;
  let pool: BcryptWorkerPool;
  /** The pool's hashing threads: the threads it started that run at `niceness`. */
  let hashingThreads: number[];

  before(async function () {
    if (process.platform !== "linux") this.skip();
    if (base >= niceness) {
      console.warn(`      (skipped: the test process already runs at nice ${base})`);
      this.skip();
    }
    beforePool = threads();
    pool = await createBcryptWorkerPool({ threads: 2, niceness });
    hashingThreads = newThreads(beforePool).filter(([, t]) => t.nice === niceness).map(([tid]) => tid);
  });

  after(async () => {
    await pool?.close();
  });

  it("makes bcrypt hashes that bcrypt.compare accepts, and compares like bcrypt", async () => {
    const hash = await pool.hash("correct horse battery", 5);
    expect(bcryptCostOf(hash)).to.equal(5);
    expect(await bcrypt.compare("correct horse battery", hash)).to.equal(true);
    expect(await bcrypt.compare("correct horse batterY", hash)).to.equal(false);

    const madeHere = await bcrypt.hash("another password", 4);
    expect(await pool.compare("another password", madeHere)).to.equal(true);
    expect(await pool.compare("another passwordx", madeHere)).to.equal(false);
  });

  it("runs one thread per slot at the configured nice value, and leaves every other thread's as it was", () => {
    expect(hashingThreads).to.have.length(2);
    const now = threads();
    expect(now.get(process.pid)?.nice, "main thread").to.equal(base);
    for (const [tid, { nice }] of beforePool) {
      if (now.has(tid)) expect(now.get(tid)?.nice, `thread ${tid}, there before the pool`).to.equal(nice);
    }
    expect([...now].filter(([, t]) => t.nice === niceness).map(([tid]) => tid)).to.have.members(hashingThreads);
  });

  it("spends the CPU time of a hash on its nice threads, not on the main thread", async () => {
    const ticksOf = (stats: Map<number, ThreadStat>, tids: number[]) =>
      tids.reduce((sum, tid) => sum + (stats.get(tid)?.cpuTicks ?? 0), 0);
    const start = threads();
    // Cost 12: a few hundred milliseconds of CPU, tens of clock ticks.
    await Promise.all([pool.hash("password one", 12), pool.hash("password two", 12)]);
    const end = threads();
    const onHashingThreads = ticksOf(end, hashingThreads) - ticksOf(start, hashingThreads);
    const onMainThread = ticksOf(end, [process.pid]) - ticksOf(start, [process.pid]);
    expect(onHashingThreads).to.be.at.least(10);
    expect(onMainThread, `main ${onMainThread} ticks, hashing ${onHashingThreads}`).to.be.below(onHashingThreads / 4);
  });

  it("ends its threads on close, and hashes no more", async () => {
    const snapshot = threads();
    const closing = await createBcryptWorkerPool({ threads: 1, niceness });
    const started = newThreads(snapshot).filter(([, t]) => t.nice === niceness).map(([tid]) => tid);
    expect(started).to.have.length(1);
    expect(await closing.compare("x", await bcrypt.hash("x", 4))).to.equal(true);

    await closing.close();
    expect(threads().has(started[0])).to.equal(false);
    let failed = false;
    await closing.hash("too late", 4).catch(() => (failed = true));
    expect(failed).to.equal(true);
  });
});
