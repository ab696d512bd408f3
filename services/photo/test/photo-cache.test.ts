// The Redis photo list cache against a real Redis (unique key prefix), and against an unreachable one.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";
import { createRedisPhotoListCache } from "../photo-cache.js";
import type { PhotoPage } from "../photos.js";
import { createRecordingLogger } from "./fakes.js";

function pageOf(userId: string, nextPageToken = ""): PhotoPage {
  return {
    photos: [
      {
        id: randomUUID(),
        userId,
        contentType: "image/webp",
        sizeBytes: 10 * 1024 * 1024,
        width: 1920,
        height: 1080,
        sha256: "c".repeat(64),
        filename: "Straße 😀.webp",
        createdAt: new Date("2030-01-02T03:04:05.678Z"),
      },
    ],
    nextPageToken,
  };
}

/** A client that can never connect (port 1) and fails every command at once, as in an outage. */
function createUnreachableRedis(): Redis {
  const redis = new Redis("redis://127.0.0.1:1", {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 200,
    retryStrategy: () => 1000,
  });
  // Connection errors are the point here; without a listener ioredis prints each one.
  redis.on("error", () => {});
  return redis;
}

describe("redis photo list cache (real Redis)", () => {
  let fixture: RedisTestKeys;
  before(() => {
    fixture = createRedisTestKeys("photo-cache");
  });
  after(async () => {
    await fixture.close();
  });

  const setup = (ttlSeconds = 60) => {
    const logger = createRecordingLogger();
    const cache = createRedisPhotoListCache(fixture.redis, { keyPrefix: fixture.keyPrefix, ttlSeconds, logger });
    return { cache, logger };
  };

  it("misses, then hits what was set, with its dates intact", async () => {
    const { cache } = setup();
    const userId = randomUUID();
    const page = pageOf(userId, "next-token");
    expect(await cache.get(userId, 20, "")).to.equal(undefined);
    await cache.set(userId, 20, "", page);
    expect(await cache.get(userId, 20, "")).to.deep.equal(page);
  });

  it("keeps pages apart by size and token", async () => {
    const { cache } = setup();
    const userId = randomUUID();
    const first = pageOf(userId, "t1");
    const second = pageOf(userId);
    await cache.set(userId, 10, "", first);
    await cache.set(userId, 10, "t1", second);
    expect(await cache.get(userId, 10, "t1")).to.deep.equal(second);
    expect(await cache.get(userId, 10, "")).to.deep.equal(first);
    expect(await cache.get(userId, 20, "")).to.equal(undefined);
  });

  it("invalidates every page of the user at once, and only that user's", async () => {
    const { cache } = setup();
    const userId = randomUUID();
    const other = randomUUID();
    await cache.set(userId, 10, "", pageOf(userId, "t1"));
    await cache.set(userId, 10, "t1", pageOf(userId));
    await cache.set(other, 10, "", pageOf(other));
    await cache.invalidate(userId);
    expect(await cache.get(userId, 10, "")).to.equal(undefined);
    expect(await cache.get(userId, 10, "t1")).to.equal(undefined);
    expect(await cache.get(other, 10, "")).to.not.equal(undefined);
    expect(await fixture.redis.exists(`${fixture.keyPrefix}photos:${userId}`)).to.equal(0);
  });

  it("expires the user's pages within the TTL, which later pages do not extend", async () => {
    const { cache } = setup(120);
    const userId = randomUUID();
    const key = `${fixture.keyPrefix}photos:${userId}`;
    await cache.set(userId, 10, "", pageOf(userId));
    await fixture.redis.expire(key, 50);
    await cache.set(userId, 10, "t1", pageOf(userId));
    const ttl = await fixture.redis.ttl(key);
    expect(ttl).to.be.greaterThan(40).and.at.most(50);
  });

  it("treats an unreadable entry as a miss", async () => {
    const { cache } = setup();
    const userId = randomUUID();
    await fixture.redis.hset(`${fixture.keyPrefix}photos:${userId}`, "10:", "{not json");
    expect(await cache.get(userId, 10, "")).to.equal(undefined);
    await fixture.redis.hset(`${fixture.keyPrefix}photos:${userId}`, "10:", JSON.stringify({ photos: [{ id: 1 }] }));
    expect(await cache.get(userId, 10, "")).to.equal(undefined);
  });

  it("degrades to misses and no-ops when Redis is unreachable, logging one warning", async () => {
    const down = createUnreachableRedis();
    const logger = createRecordingLogger();
    try {
      const cache = createRedisPhotoListCache(down, { keyPrefix: "unused:", ttlSeconds: 60, logger });
      const userId = randomUUID();
      await cache.set(userId, 10, "", pageOf(userId));
      expect(await cache.get(userId, 10, "")).to.equal(undefined);
      await cache.invalidate(userId);
      expect(logger.lines.map((l) => `${l.level} ${l.msg}`)).to.deep.equal(["warn photo list cache unavailable, degrading"]);
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
        if (broken && typeof value === "function" && ["hget", "multi", "del"].includes(String(property))) {
          return () => {
            throw new Error("Connection is closed.");
          };
        }
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const cache = createRedisPhotoListCache(flaky, { keyPrefix: fixture.keyPrefix, ttlSeconds: 60, logger });
    const userId = randomUUID();
    await cache.set(userId, 10, "", pageOf(userId));
    broken = false;
    await cache.set(userId, 10, "", pageOf(userId));
    expect(await cache.get(userId, 10, "")).to.not.equal(undefined);
    expect(logger.lines.map((l) => l.level)).to.deep.equal(["warn", "info"]);
  });
});
