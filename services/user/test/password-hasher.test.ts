// The bcrypt hasher with the real bcrypt, watched through a counting wrapper where concurrency matters.
import { expect } from "chai";
import bcrypt from "bcrypt";
import { Code } from "@connectrpc/connect";
import { rejectionOf } from "../../../test/support/rejection.js";
import { bcryptCostOf, createBcryptPasswordHasher, type BcryptFunctions } from "../password-hasher.js";

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
