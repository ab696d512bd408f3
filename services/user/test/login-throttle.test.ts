// The Redis login throttle against a real Redis (unique key prefix), and against an unreachable one.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { retryDelayMsOf } from "../../../internal/errors/errors.js";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createRedisLoginThrottle, type RedisLoginThrottleOptions } from "../login-throttle.js";
import { createRecordingLogger, createUnreachableRedis } from "./redis-down.js";

describe("redis login throttle (real Redis)", () => {
  let fixture: RedisTestKeys;
  let run = 0;
  before(() => {
    fixture = createRedisTestKeys("user-throttle");
  });
  after(async () => {
    await fixture.close();
  });

  /** A throttle with its own key prefix, so tests do not share counters. */
  function setup(options: Partial<RedisLoginThrottleOptions> = {}) {
    const logger = createRecordingLogger();
    const keyPrefix = `${fixture.keyPrefix}${++run}:`;
    const throttle = createRedisLoginThrottle(fixture.redis, {
      keyPrefix,
      maxFailuresPerAccount: 3,
      maxFailuresPerIp: 10,
      windowMs: 60_000,
      logger,
      ...options,
    });
    return { throttle, logger, keyPrefix };
  }

  it("refuses an account with RESOURCE_EXHAUSTED and a retry delay once it reaches its limit", async () => {
    const { throttle } = setup();
    for (let i = 0; i < 3; i++) {
      await throttle.check("ada@example.com", `198.51.100.${i}`);
      await throttle.recordFailure("ada@example.com", `198.51.100.${i}`);
    }
    const error = await rejectionOf(throttle.check("ada@example.com", "198.51.100.99"));
    expect(error.code).to.equal(Code.ResourceExhausted);
    const retryMs = retryDelayMsOf(error);
    expect(retryMs).to.be.greaterThan(50_000).and.at.most(60_000);
    await throttle.check("bob@example.com", "198.51.100.99");
  });

  it("counts an account whatever the letter case, without the email in any key", async () => {
    const { throttle, keyPrefix } = setup();
    await throttle.recordFailure("Ada@Example.com", "");
    await throttle.recordFailure("ADA@EXAMPLE.COM", "");
    await throttle.recordFailure(" ada@example.com", "");
    expect((await rejectionOf(throttle.check("ada@example.com", ""))).code).to.equal(Code.ResourceExhausted);
    const keys = (await fixture.keys()).filter((k) => k.startsWith(keyPrefix));
    expect(keys).to.have.length(1);
    expect(keys[0]).to.match(/login-failures:account:[0-9a-f]{64}$/);
    expect(keys.join()).not.to.match(/ada/i);
  });

  it("expires the counters with their window", async () => {
    const { throttle, keyPrefix } = setup({ windowMs: 300 });
    for (let i = 0; i < 3; i++) await throttle.recordFailure("ada@example.com", "192.0.2.1");
    const [account] = (await fixture.keys()).filter((k) => k.includes(`${keyPrefix}login-failures:account:`));
    expect(await fixture.redis.pttl(account)).to.be.greaterThan(0).and.at.most(300);
    expect(await fixture.redis.pttl(`${keyPrefix}login-failures:ip:192.0.2.1`)).to.be.greaterThan(0);
    await rejectionOf(throttle.check("ada@example.com", "192.0.2.1"));
    await sleep(400);
    await throttle.check("ada@example.com", "192.0.2.1");
  });

  it("resets the account's count on success but keeps the IP's", async () => {
    const { throttle } = setup({ maxFailuresPerIp: 3 });
    for (let i = 0; i < 3; i++) await throttle.recordFailure("ada@example.com", "192.0.2.7");
    await throttle.reset("ADA@example.com");
    await throttle.check("ada@example.com", "192.0.2.8");
    const error = await rejectionOf(throttle.check("ada@example.com", "192.0.2.7"));
    expect(error.code).to.equal(Code.ResourceExhausted);
  });

  it("refuses an IP past its own limit whatever account it tries next", async () => {
    const { throttle } = setup({ maxFailuresPerIp: 4 });
    for (let i = 0; i < 4; i++) await throttle.recordFailure(`user${i}@example.com`, "2001:db8::1");
    const error = await rejectionOf(throttle.check("fresh@example.com", "2001:db8::1"));
    expect(error.code).to.equal(Code.ResourceExhausted);
    expect(retryDelayMsOf(error)).to.be.greaterThan(0);
    await throttle.check("fresh@example.com", "2001:db8::2");
  });

  it("does not count an unknown (empty) IP, so unknown clients do not lock each other out", async () => {
    const { throttle, keyPrefix } = setup({ maxFailuresPerIp: 1 });
    await throttle.recordFailure("a@example.com", "");
    await throttle.recordFailure("b@example.com", "");
    await throttle.check("c@example.com", "");
    expect((await fixture.keys()).filter((k) => k.startsWith(`${keyPrefix}login-failures:ip:`))).to.deep.equal([]);
  });

  it("fails open when Redis is unreachable: checks pass, counting is skipped, one warning is logged", async () => {
    const down = createUnreachableRedis();
    const logger = createRecordingLogger();
    try {
      const throttle = createRedisLoginThrottle(down, {
        keyPrefix: "unused:",
        maxFailuresPerAccount: 1,
        maxFailuresPerIp: 1,
        windowMs: 60_000,
        logger,
      });
      for (let i = 0; i < 3; i++) {
        await throttle.check("ada@example.com", "192.0.2.1");
        await throttle.recordFailure("ada@example.com", "192.0.2.1");
      }
      await throttle.reset("ada@example.com");
      expect(logger.lines).to.deep.equal([{ level: "warn", msg: "login throttle unavailable, degrading" }]);
    } finally {
      down.disconnect();
    }
  });
});
