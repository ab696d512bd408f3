// The Redis profile cache against a real Redis (unique key prefix), and against an unreachable one.
import { expect } from "chai";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";
import { createRedisProfileCache } from "../profile-cache.js";
import type { UserProfile } from "../users.js";
import { createRecordingLogger, createUnreachableRedis } from "./redis-down.js";

const profile: UserProfile = {
  id: "0b8e5a34-3f2b-4c1e-9f0a-2d6c1b7e8a90",
  email: "Ada@Example.com",
  name: "Ada Lovelace 😀",
  createdAt: new Date("2030-01-01T00:00:00.123Z"),
  updatedAt: new Date("2030-01-02T03:04:05.678Z"),
};

describe("redis profile cache (real Redis)", () => {
  let fixture: RedisTestKeys;
  before(() => {
    fixture = createRedisTestKeys("user-cache");
  });
  after(async () => {
    await fixture.close();
  });

  const setup = (ttlSeconds = 300) => {
    const logger = createRecordingLogger();
    const cache = createRedisProfileCache(fixture.redis, { keyPrefix: fixture.keyPrefix, ttlSeconds, logger });
    return { cache, logger };
  };

  it("misses, then hits what was set, with its dates intact", async () => {
    const { cache } = setup();
    expect(await cache.get(profile.id)).to.equal(undefined);
    await cache.set(profile);
    expect(await cache.get(profile.id)).to.deep.equal(profile);
  });

  it("sets the configured TTL on each entry", async () => {
    const { cache } = setup(120);
    await cache.set(profile);
    const ttl = await fixture.redis.ttl(`${fixture.keyPrefix}profile:${profile.id}`);
    expect(ttl).to.be.greaterThan(110).and.at.most(120);
  });

  it("misses after invalidate", async () => {
    const { cache } = setup();
    await cache.set(profile);
    await cache.invalidate(profile.id);
    expect(await cache.get(profile.id)).to.equal(undefined);
    expect(await fixture.redis.exists(`${fixture.keyPrefix}profile:${profile.id}`)).to.equal(0);
  });

  it("treats an unreadable entry as a miss", async () => {
    const { cache } = setup();
    await fixture.redis.set(`${fixture.keyPrefix}profile:${profile.id}`, "{not json");
    expect(await cache.get(profile.id)).to.equal(undefined);
    await fixture.redis.set(`${fixture.keyPrefix}profile:${profile.id}`, JSON.stringify({ id: profile.id }));
    expect(await cache.get(profile.id)).to.equal(undefined);
  });

  it("degrades to misses and no-ops when Redis is unreachable, logging one warning", async () => {
    const down = createUnreachableRedis();
    const logger = createRecordingLogger();
    try {
      const cache = createRedisProfileCache(down, { keyPrefix: "unused:", ttlSeconds: 300, logger });
      await cache.set(profile);
      expect(await cache.get(profile.id)).to.equal(undefined);
      await cache.invalidate(profile.id);
      expect(logger.lines).to.deep.equal([{ level: "warn", msg: "profile cache unavailable, degrading" }]);
    } finally {
      down.disconnect();
    }
  });

  it("logs its recovery once Redis answers again", async () => {
    const logger = createRecordingLogger();
    let broken = true;
    // The real client, made to fail on demand, so the same cache sees an outage end.
    const flaky = new Proxy(fixture.redis, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (broken && typeof value === "function" && ["get", "set", "del"].includes(String(property))) {
          return () => Promise.reject(new Error("Connection is closed."));
        }
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const cache = createRedisProfileCache(flaky, { keyPrefix: fixture.keyPrefix, ttlSeconds: 300, logger });
    expect(await cache.get(profile.id)).to.equal(undefined);
    broken = false;
    await cache.set(profile);
    expect(await cache.get(profile.id)).to.deep.equal(profile);
    expect(logger.lines.map((l) => l.level)).to.deep.equal(["warn", "info"]);
  });
});
