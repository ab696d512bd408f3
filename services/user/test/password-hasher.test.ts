// The bcrypt hasher with the real bcrypt, watched through a counting wrapper where concurrency matters;
// its admission control and skipping with a fake bcrypt whose hashes finish when the test says, on a
// fake clock.
import { expect } from "chai";
import bcrypt from "bcrypt";
import { Code } from "@connectrpc/connect";
import { httpStatusFor, retryDelayMsOf } from "../../../internal/errors/errors.js";
import { runInScope } from "../../../internal/trace/call-scope.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import {
  bcryptCostOf,
  createBcryptPasswordHasher,
  type BcryptFunctions,
  type RefusalReason,
} from "../password-hasher.js";

/** Real bcrypt, counting calls and the most ever running at once. */
function countingBcrypt() {
  const stats = { running: 0, maxRunning: 0, hashes: 0, compares: 0 };
  async function track<T>(work: () => Promise<T>): Promise<T> {
    stats.running++;
    stats.maxRunning = Math.max(stats.maxRunning, stats.running);
    try {
      return await work();
    } finally {
      stats.running--;
    }
  }
  const functions: BcryptFunctions = {
    hash: (data, rounds) => {
      stats.hashes++;
      return track(() => bcrypt.hash(data, rounds));
    },
    compare: (data, encrypted) => {
      stats.compares++;
      return track(() => bcrypt.compare(data, encrypted));
    },
  };
  return { stats, functions };
}

describe("bcrypt password hasher", () => {
  it("verifies the right password and refuses a wrong one", async () => {
    const hasher = createBcryptPasswordHasher({ cost: 4, maxConcurrent: 2 });
    const hash = await hasher.hash("correct horse battery");
    expect(hash).not.to.contain("correct horse battery");
    expect(await hasher.verify("correct horse battery", hash)).to.equal(true);
    expect(await hasher.verify("correct horse batterY", hash)).to.equal(false);
  });

  it("salts every hash", async () => {
    const hasher = createBcryptPasswordHasher({ cost: 4, maxConcurrent: 2 });
    expect(await hasher.hash("same password")).not.to.equal(await hasher.hash("same password"));
  });

  it("hashes at the configured cost, the dummy included", async () => {
    const { stats, functions } = countingBcrypt();
    const hashed: string[] = [];
    const recording: BcryptFunctions = {
      hash: async (data, rounds) => {
        const hash = await functions.hash(data, rounds);
        hashed.push(hash);
        return hash;
      },
      compare: functions.compare,
    };
    const hasher = createBcryptPasswordHasher({ cost: 6, maxConcurrent: 2, bcrypt: recording });
    expect(hasher.cost).to.equal(6);
    expect(bcryptCostOf(await hasher.hash("password one"))).to.equal(6);
    expect(await hasher.verifyAgainstDummy("password one")).to.equal(false);
    expect(stats.compares).to.equal(1);
    // The dummy hash and the real one, both at cost 6.
    expect(hashed.map(bcryptCostOf)).to.deep.equal([6, 6]);
  });

  it("runs the dummy compare for an unknown account and answers false", async () => {
    const { stats, functions } = countingBcrypt();
    const hasher = createBcryptPasswordHasher({ cost: 4, maxConcurrent: 1, bcrypt: functions });
    expect(await hasher.verifyAgainstDummy("whatever it is")).to.equal(false);
    expect(await hasher.verifyAgainstDummy("whatever it is")).to.equal(false);
    expect(stats.compares).to.equal(2);
    expect(stats.hashes).to.equal(1); // the dummy, computed once
  });

  it("keeps at most maxConcurrent hashes and compares in flight", async () => {
    const { stats, functions } = countingBcrypt();
    const hasher = createBcryptPasswordHasher({ cost: 4, maxConcurrent: 2, bcrypt: functions });
    const hash = await hasher.hash("password zero");
    const work = [
      ...Array.from({ length: 6 }, (_, i) => hasher.hash(`password ${i}`)),
      ...Array.from({ length: 6 }, () => hasher.verify("password zero", hash)),
      hasher.verifyAgainstDummy("password x"),
    ];
    expect(hasher.load().running).to.be.at.most(2);
    expect(hasher.load().queued).to.be.greaterThan(0);
    await Promise.all(work);
    expect(stats.maxRunning).to.equal(2);
    expect(hasher.load()).to.deep.equal({ running: 0, queued: 0 });
  });

  it("rejects a 73-byte password before hashing, and never matches one", async () => {
    const { stats, functions } = countingBcrypt();
    const hasher = createBcryptPasswordHasher({ cost: 4, maxConcurrent: 1, bcrypt: functions });
    const hash72 = await hasher.hash("x".repeat(72));
    const before = { ...stats };

    const error = await rejectionOf(hasher.hash(`${"€".repeat(24)}a`));
    expect(error.code).to.equal(Code.InvalidArgument);
    // bcrypt alone would accept this: it ignores bytes past the 72nd.
    expect(await bcrypt.compare(`${"x".repeat(72)}y`, hash72)).to.equal(true);
    expect(await hasher.verify(`${"x".repeat(72)}y`, hash72)).to.equal(false);
    expect(await hasher.verifyAgainstDummy("y".repeat(73))).to.equal(false);
    expect(stats.hashes).to.equal(before.hashes);
    expect(stats.compares).to.equal(before.compares);
  });
});

/** A bcrypt whose every call waits until the test finishes it; "hashes" are "fake:<password>". */
function controllableBcrypt() {
  const calls: { kind: "hash" | "compare"; data: string; finish: () => void }[] = [];
  const functions: BcryptFunctions = {
    hash: (data) => new Promise((resolve) => calls.push({ kind: "hash", data, finish: () => resolve(`fake:${data}`) })),
    compare: (data, encrypted) =>
      new Promise((resolve) => calls.push({ kind: "compare", data, finish: () => resolve(encrypted === `fake:${data}`) })),
  };
  return { calls, functions };
}

/** Lets settled promises run their continuations (p-limit starts the next job in a microtask). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("bcrypt password hasher under load (fake bcrypt, fake clock)", () => {
  const typicalMs = 100;

  /** Two slots; the dummy hash has taken typicalMs, so the hasher expects that much per hash. */
  async function setup() {
    let now = 1_000_000;
    const clock = () => now;
    const { calls, functions } = controllableBcrypt();
    const refused: RefusalReason[] = [];
    const hasher = createBcryptPasswordHasher({
      cost: 4,
      maxConcurrent: 2,
      bcrypt: functions,
      clock,
      refused: { inc: ({ reason }) => refused.push(reason) },
    });
    await settle();
    expect(calls.map((c) => c.kind)).to.deep.equal(["hash"]);
    now += typicalMs;
    calls.shift()?.finish();
    await settle();
    return {
      hasher,
      calls,
      refused,
      advance: (ms: number) => {
        now += ms;
      },
      /** Finishes the oldest running call, and lets the next queued job start. */
      finishOne: async () => {
        calls.shift()?.finish();
        await settle();
      },
      /** A call made inside an RPC's call scope with `budgetMs` left before its deadline. */
      withBudget: <T>(budgetMs: number, fn: () => Promise<T>, signal?: AbortSignal) =>
        runInScope({ traceId: "t", deadline: now + budgetMs, signal }, fn),
    };
  }

  /** Starts `count` compares outside any call scope (no deadline: always admitted). */
  function occupy(hasher: Awaited<ReturnType<typeof setup>>["hasher"], count: number): Promise<boolean>[] {
    return Array.from({ length: count }, (_, i) => hasher.verify(`busy ${i}`, "fake:busy"));
  }

  it("refuses at once with RESOURCE_EXHAUSTED and a RetryInfo when the jobs ahead would outlast the deadline", async () => {
    const { hasher, calls, refused, withBudget, finishOne } = await setup();
    const background = occupy(hasher, 4); // 2 running, 2 queued
    await settle();
    expect(hasher.load()).to.deep.equal({ running: 2, queued: 2 });

    // 4 ahead on 2 slots: two rounds of waiting, then its own hash: 300 ms > 250 ms left.
    const error = await rejectionOf(withBudget(250, () => hasher.verify("password", "fake:password")));
    expect(error.code).to.equal(Code.ResourceExhausted);
    expect(error.rawMessage).to.equal("the service is busy; try again in 1 s");
    expect(retryDelayMsOf(error)).to.equal(1000);
    expect(httpStatusFor(error.code)).to.equal(429);
    expect(refused).to.deep.equal(["busy"]);
    await settle();
    expect(hasher.load()).to.deep.equal({ running: 2, queued: 2 });
    expect(calls.map((c) => c.data)).to.not.include("password");

    // With exactly the expected wait left it is queued, and checked when its turn comes.
    const admitted = withBudget(300, () => hasher.verify("password", "fake:password"));
    expect(hasher.load().queued).to.equal(3);
    while (calls.length > 0) await finishOne();
    expect(await admitted).to.equal(true);
    await Promise.all(background);
    expect(refused).to.deep.equal(["busy"]);
  });

  it("says how much longer the queue is than the budget, in whole seconds, in the message and the RetryInfo", async () => {
    const { hasher, calls, withBudget, finishOne } = await setup();
    const background = occupy(hasher, 40);
    await settle();
    // 40 ahead on 2 slots: (20 + 1) × 100 ms = 2100 ms expected, 100 ms left: 2 s too long.
    const error = await rejectionOf(withBudget(100, () => hasher.hash("password")));
    expect(error.code).to.equal(Code.ResourceExhausted);
    expect(error.rawMessage).to.equal("the service is busy; try again in 2 s");
    expect(retryDelayMsOf(error)).to.equal(2000);
    while (calls.length > 0) await finishOne();
    await Promise.all(background);
  });

  it("admits any amount of work for callers without a deadline", async () => {
    const { hasher, calls, refused, finishOne } = await setup();
    const unbounded = occupy(hasher, 50);
    await settle();
    expect(hasher.load()).to.deep.equal({ running: 2, queued: 48 });
    while (calls.length > 0) await finishOne();
    expect(await Promise.all(unbounded)).to.have.length(50);
    expect(refused).to.deep.equal([]);
  });

  it("admits callers with a deadline while no hash has been timed yet, then checks them when their turn comes", async () => {
    let now = 0;
    const { calls, functions } = controllableBcrypt();
    const refused: RefusalReason[] = [];
    const hasher = createBcryptPasswordHasher({
      cost: 4,
      maxConcurrent: 1,
      bcrypt: functions,
      clock: () => now,
      refused: { inc: ({ reason }) => refused.push(reason) },
    });
    await settle(); // the dummy hash is running, untimed
    const ahead = Array.from({ length: 20 }, (_, i) => hasher.hash(`password ${i}`));
    // 20 jobs ahead and 50 ms left: refused if any estimate existed, admitted without one.
    const early = runInScope({ traceId: "t", deadline: now + 50 }, () => hasher.hash("early password"));
    const tooEarly = rejectionOf(runInScope({ traceId: "t", deadline: now + 10 }, () => hasher.hash("another")));
    expect(hasher.load()).to.deep.equal({ running: 1, queued: 22 });
    // Every hash takes 1 ms: 21 ms in, the first still has 29 ms left, the second's deadline has passed.
    while (calls.length > 0) {
      now += 1;
      calls.shift()?.finish();
      await settle();
    }
    expect(await early).to.equal("fake:early password");
    expect((await tooEarly).code).to.equal(Code.DeadlineExceeded);
    expect(await Promise.all(ahead)).to.have.length(20);
    expect(refused).to.deep.equal(["deadline"]);
  });

  it("skips a queued job whose caller has gone, with CANCELLED, and runs the live one behind it", async () => {
    const { hasher, calls, refused, withBudget, finishOne } = await setup();
    const background = occupy(hasher, 2);
    const caller = new AbortController();
    const gone = rejectionOf(withBudget(5000, () => hasher.verify("gone caller", "fake:gone caller"), caller.signal));
    const live = withBudget(5000, () => hasher.verify("live caller", "fake:live caller"), new AbortController().signal);
    await settle();
    expect(hasher.load()).to.deep.equal({ running: 2, queued: 2 });

    caller.abort();
    await finishOne();
    const error = await gone;
    expect(error.code).to.equal(Code.Canceled);
    expect(refused).to.deep.equal(["cancelled"]);
    // Its slot went to the live caller at once; the gone one never reached bcrypt.
    expect(calls.map((c) => c.data)).to.deep.equal(["busy 1", "live caller"]);

    while (calls.length > 0) await finishOne();
    expect(await live).to.equal(true);
    await Promise.all(background);
  });

  it("skips a queued job whose deadline passes while it waits, with DEADLINE_EXCEEDED", async () => {
    const { hasher, calls, refused, withBudget, advance, finishOne } = await setup();
    const background = occupy(hasher, 2);
    // 2 ahead: 200 ms expected, 250 ms left: admitted.
    const late = rejectionOf(withBudget(250, () => hasher.verify("late caller", "fake:late caller")));
    const onTime = withBudget(5000, () => hasher.verify("on-time caller", "fake:on-time caller"));
    await settle();
    expect(refused).to.deep.equal([]);

    advance(200); // 50 ms left when its turn comes: less than a hash
    await finishOne();
    const error = await late;
    expect(error.code).to.equal(Code.DeadlineExceeded);
    expect(refused).to.deep.equal(["deadline"]);
    expect(calls.map((c) => c.data)).to.deep.equal(["busy 1", "on-time caller"]);

    while (calls.length > 0) await finishOne();
    expect(await onTime).to.equal(true);
    await Promise.all(background);
  });

  it("admits and runs a job whenever the hasher is idle, however slow the last hashes were", async () => {
    const { hasher, calls, refused, withBudget, advance, finishOne } = await setup();
    // One bad minute: a hash took 10 s, far more than any caller's budget.
    const slow = occupy(hasher, 1);
    await settle();
    advance(10_000);
    await finishOne();
    await Promise.all(slow);

    // Idle again: a caller with 500 ms left is admitted and hashed, and the estimate comes down.
    const next = withBudget(500, () => hasher.verify("next caller", "fake:next caller"));
    await settle();
    expect(calls.map((c) => c.data)).to.deep.equal(["next caller"]);
    advance(100);
    await finishOne();
    expect(await next).to.equal(true);
    expect(refused).to.deep.equal([]);
  });

  it("does not count queued jobs whose callers have gone as ahead of a new caller", async () => {
    const { hasher, calls, refused, withBudget, finishOne } = await setup();
    const background = occupy(hasher, 2); // both slots busy
    const callers = Array.from({ length: 4 }, () => new AbortController());
    const gone = callers.map((caller, i) => rejectionOf(withBudget(5000, () => hasher.verify(`gone ${i}`, `fake:gone ${i}`), caller.signal)));
    await settle();
    expect(hasher.load()).to.deep.equal({ running: 2, queued: 4 });
    for (const caller of callers) caller.abort();

    // 2 running + 4 queued would be (3 + 1) × 100 ms = 400 ms > 250 ms; without the 4 gone: 200 ms.
    const next = withBudget(250, () => hasher.verify("next caller", "fake:next caller"));
    expect(refused).to.deep.equal([]);
    while (calls.length > 0) await finishOne();
    expect(await next).to.equal(true);
    for (const error of await Promise.all(gone)) expect(error.code).to.equal(Code.Canceled);
    expect(refused).to.deep.equal(["cancelled", "cancelled", "cancelled", "cancelled"]);
    await Promise.all(background);
  });
});
