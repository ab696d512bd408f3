// Integration tests of the Redis session store against a real Redis, through the domain where it matters.
import { expect } from "chai";
import { rejectionOf } from "../../../test/support/rejection.js";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { createRedisSessionStore } from "../redis-session-store.js";
import { createSessions, hashToken, type SessionSettings } from "../sessions.js";
import { createRedisTestKeys, redisUrl, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";

const minute = 60_000;
const hour = 60 * minute;

const defaults: SessionSettings = {
  ttlMs: hour,
  slidingExpiry: true,
  absoluteMaxMs: 24 * hour,
  maxSessionsPerUser: 100,
};


describe("redis session store (real Redis)", () => {
  let fixture: RedisTestKeys;
  before(() => {
    fixture = createRedisTestKeys();
  });
  after(async () => {
    await fixture.close();
  });

  /** Domain over the real store; offsetMs moves the domain's clock ahead of the real one. */
  function setup(settings: Partial<SessionSettings> = {}) {
    let offsetMs = 0;
    const store = createRedisSessionStore(fixture.redis, { keyPrefix: fixture.keyPrefix });
    const sessions = createSessions({
      store,
      settings: { ...defaults, ...settings },
      clock: () => Date.now() + offsetMs,
    });
    return {
      store,
      sessions,
      userId: `user-${randomUUID()}`,
      skip: (ms: number) => {
        offsetMs += ms;
      },
    };
  }

  const sessionKey = (token: string) => `${fixture.keyPrefix}session:${hashToken(token)}`;
  const indexKey = (userId: string) => `${fixture.keyPrefix}user:${userId}:sessions`;
  const tokensKey = (userId: string) => `${fixture.keyPrefix}user:${userId}:tokens`;

  it("creates, validates, lists and deletes sessions by token, by id and per user (keeping the excepted one)", async () => {
    const { sessions, userId } = setup();
    const a = await sessions.createSession({ userId, ip: "198.51.100.1", userAgent: "agent-a" });
    const b = await sessions.createSession({ userId, ip: "198.51.100.2", userAgent: "agent-b" });
    const c = await sessions.createSession({ userId, ip: "198.51.100.3", userAgent: "agent-c" });
    const d = await sessions.createSession({ userId, ip: "198.51.100.4", userAgent: "agent-d" });

    const validated = await sessions.validateSession(a.token);
    expect(validated).to.deep.equal({ userId, sessionId: a.sessionId, expiresAtMs: a.expiresAtMs });

    const listed = await sessions.listSessions(userId);
    expect(listed.map((s) => s.sessionId)).to.have.members([a.sessionId, b.sessionId, c.sessionId, d.sessionId]);
    expect(listed.find((s) => s.sessionId === b.sessionId)).to.include({
      userId,
      ip: "198.51.100.2",
      userAgent: "agent-b",
      expiresAtMs: b.expiresAtMs,
    });
    for (let i = 1; i < listed.length; i++) {
      expect(listed[i - 1].createdAtMs).to.be.at.least(listed[i].createdAtMs);
    }

    await sessions.deleteSessionByToken(a.token);
    expect((await rejectionOf(sessions.validateSession(a.token))).code).to.equal(Code.Unauthenticated);
    await sessions.deleteSessionByToken(a.token); // already gone: still fine

    await sessions.deleteSessionById(userId, b.sessionId);
    expect((await rejectionOf(sessions.validateSession(b.token))).code).to.equal(Code.Unauthenticated);
    expect((await rejectionOf(sessions.deleteSessionById(userId, b.sessionId))).code).to.equal(Code.NotFound);

    expect(await sessions.deleteUserSessions(userId, d.sessionId)).to.equal(1);
    expect((await rejectionOf(sessions.validateSession(c.token))).code).to.equal(Code.Unauthenticated);
    expect((await sessions.validateSession(d.token)).sessionId).to.equal(d.sessionId);
    expect((await sessions.listSessions(userId)).map((s) => s.sessionId)).to.deep.equal([d.sessionId]);

    expect(await sessions.deleteUserSessions(userId)).to.equal(1);
    expect(await sessions.listSessions(userId)).to.deep.equal([]);
    expect(await fixture.redis.exists(indexKey(userId), tokensKey(userId))).to.equal(0);
  });

  it("answers NOT_FOUND when deleting another user's session by id, which stays valid", async () => {
    const { sessions, userId } = setup();
    const mine = await sessions.createSession({ userId, ip: "", userAgent: "" });
    const error = await rejectionOf(sessions.deleteSessionById(`user-${randomUUID()}`, mine.sessionId));
    expect(error.code).to.equal(Code.NotFound);
    expect((await sessions.validateSession(mine.token)).userId).to.equal(userId);
  });

  it("sets the TTL on the session key and on both index keys", async () => {
    const { sessions, userId } = setup();
    const { token, expiresAtMs } = await sessions.createSession({ userId, ip: "", userAgent: "" });
    const expectedTtl = expiresAtMs - Date.now();
    for (const key of [sessionKey(token), indexKey(userId), tokensKey(userId)]) {
      const pttl = await fixture.redis.pttl(key);
      expect(pttl, key).to.be.within(expectedTtl - 2000, hour);
    }
    expect(Number(await fixture.redis.hget(sessionKey(token), "expires"))).to.equal(expiresAtMs);
    expect(Number(await fixture.redis.zscore(indexKey(userId), (await sessions.listSessions(userId))[0].sessionId)))
      .to.equal(expiresAtMs);
  });

  it("pushes the key's TTL out when a session is validated in the last half of its life", async () => {
    const { sessions, userId, skip } = setup();
    const { token, sessionId, expiresAtMs } = await sessions.createSession({ userId, ip: "", userAgent: "" });
    expect(await fixture.redis.pttl(sessionKey(token))).to.be.at.most(hour);

    skip(10 * minute); // first half: no extension
    expect((await sessions.validateSession(token)).expiresAtMs).to.equal(expiresAtMs);
    expect(await fixture.redis.pttl(sessionKey(token))).to.be.at.most(hour);

    skip(30 * minute); // 40 minutes in: last half
    const extended = await sessions.validateSession(token);
    expect(extended.expiresAtMs).to.be.above(expiresAtMs + 39 * minute);
    const pttl = await fixture.redis.pttl(sessionKey(token));
    expect(pttl).to.be.within(hour + 38 * minute, hour + 41 * minute);
    expect(Number(await fixture.redis.zscore(indexKey(userId), sessionId))).to.equal(extended.expiresAtMs);
    expect(await fixture.redis.pttl(indexKey(userId))).to.be.within(pttl - 2000, pttl + 2000);
  });

  it("keeps no raw token in any key name or value under the prefix", async () => {
    const { sessions, userId, skip } = setup();
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) tokens.push((await sessions.createSession({ userId, ip: "", userAgent: "" })).token);
    const other = setup();
    tokens.push((await other.sessions.createSession({ userId: other.userId, ip: "", userAgent: "" })).token);
    skip(40 * minute); // so validation writes (sliding + last seen)
    for (const token of tokens.slice(0, 3)) await sessions.validateSession(token);

    const keys = await fixture.keys();
    expect(keys).to.include.members(tokens.map(sessionKey));
    const stored: string[] = [...keys];
    for (const key of keys) {
      const type = await fixture.redis.type(key);
      if (type === "hash") stored.push(...Object.entries(await fixture.redis.hgetall(key)).flat());
      else if (type === "zset") stored.push(...(await fixture.redis.zrange(key, 0, "-1", "WITHSCORES")));
      else if (type === "string") stored.push((await fixture.redis.get(key)) ?? "");
      else expect.fail(`unexpected ${type} key ${key}`);
    }
    for (const token of tokens) {
      for (const text of stored) expect(text).not.to.contain(token);
    }
  });

  it("gives 1,000 distinct tokens and 1,000 listable sessions from 1,000 concurrent creates", async () => {
    const { sessions, userId } = setup({ maxSessionsPerUser: 1000 });
    const created = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => sessions.createSession({ userId, ip: "", userAgent: `ua-${i}` })),
    );
    expect(new Set(created.map((c) => c.token)).size).to.equal(1000);
    expect(new Set(created.map((c) => c.sessionId)).size).to.equal(1000);
    const listed = await sessions.listSessions(userId);
    expect(listed).to.have.length(1000);
    expect(new Set(listed.map((s) => s.sessionId))).to.deep.equal(new Set(created.map((c) => c.sessionId)));
    expect(await fixture.redis.zcard(indexKey(userId))).to.equal(1000);
    expect(await fixture.redis.hlen(tokensKey(userId))).to.equal(1000);
    expect(await sessions.deleteUserSessions(userId)).to.equal(1000);
  });

  it("never validates a deleted session again, even when a validation races the delete", async () => {
    const { sessions, userId, skip } = setup();
    const byToken = await sessions.createSession({ userId, ip: "", userAgent: "" });
    const byId = await sessions.createSession({ userId, ip: "", userAgent: "" });
    const byUser = await sessions.createSession({ userId, ip: "", userAgent: "" });
    skip(40 * minute); // every validation below writes (sliding), the path that could resurrect a key

    await Promise.allSettled([sessions.validateSession(byToken.token), sessions.deleteSessionByToken(byToken.token)]);
    await Promise.allSettled([
      sessions.validateSession(byId.token),
      sessions.deleteSessionById(userId, byId.sessionId),
    ]);
    await Promise.allSettled([sessions.validateSession(byUser.token), sessions.deleteUserSessions(userId)]);

    for (const { token } of [byToken, byId, byUser]) {
      expect((await rejectionOf(sessions.validateSession(token))).code).to.equal(Code.Unauthenticated);
      expect(await fixture.redis.exists(sessionKey(token))).to.equal(0);
    }
    expect(await sessions.listSessions(userId)).to.deep.equal([]);
  });

  it("prunes expired members from the user index, whose keys expire with the latest session", async () => {
    const short = setup({ ttlMs: 200, absoluteMaxMs: 200, slidingExpiry: false });
    const long = setup();
    const userId = short.userId;
    for (let i = 0; i < 3; i++) await short.sessions.createSession({ userId, ip: "", userAgent: "" });
    const kept = await long.sessions.createSession({ userId, ip: "", userAgent: "" });
    expect(await fixture.redis.zcard(indexKey(userId))).to.equal(4);

    await sleep(300);
    const added = await long.sessions.createSession({ userId, ip: "", userAgent: "" });
    expect(await fixture.redis.zrange(indexKey(userId), 0, "-1")).to.have.members([kept.sessionId, added.sessionId]);
    expect(await fixture.redis.hkeys(tokensKey(userId))).to.have.members([kept.sessionId, added.sessionId]);
    for (const key of [indexKey(userId), tokensKey(userId)]) {
      expect(await fixture.redis.pttl(key)).to.be.within(hour - 5000, hour);
    }

    const onlyShort = setup({ ttlMs: 200, absoluteMaxMs: 200, slidingExpiry: false });
    await onlyShort.sessions.createSession({ userId: onlyShort.userId, ip: "", userAgent: "" });
    expect(await fixture.redis.pttl(indexKey(onlyShort.userId))).to.be.within(1, 200);
    await sleep(300);
    expect(await fixture.redis.exists(indexKey(onlyShort.userId), tokensKey(onlyShort.userId))).to.equal(0);
  });

  it("evicts the oldest session when a user goes over maxSessionsPerUser", async () => {
    const { sessions, userId, skip } = setup({ maxSessionsPerUser: 3, slidingExpiry: false });
    const created = [];
    for (let i = 0; i < 4; i++) {
      created.push(await sessions.createSession({ userId, ip: "", userAgent: `ua-${i}` }));
      skip(1000);
    }
    expect((await rejectionOf(sessions.validateSession(created[0].token))).code).to.equal(Code.Unauthenticated);
    expect(await fixture.redis.exists(sessionKey(created[0].token))).to.equal(0);
    expect((await sessions.listSessions(userId)).map((s) => s.sessionId)).to.deep.equal(
      created.slice(1).reverse().map((c) => c.sessionId),
    );
    expect(await fixture.redis.zcard(indexKey(userId))).to.equal(3);
  });

  it("never evicts the session it has just created, even on a tie", async () => {
    const { store, userId } = setup();
    const session = (sessionId: string) => ({
      sessionId,
      userId,
      createdAtMs: Date.now(),
      lastSeenAtMs: Date.now(),
      expiresAtMs: Date.now() + hour,
      ip: "",
      userAgent: "",
    });
    const same = session("b-older").expiresAtMs;
    await store.insert("1".repeat(64), { ...session("b-older"), expiresAtMs: same }, { maxPerUser: 1 });
    await store.insert("2".repeat(64), { ...session("a-newer"), expiresAtMs: same }, { maxPerUser: 1 });
    expect((await store.listByUser(userId)).map((s) => s.sessionId)).to.deep.equal(["a-newer"]);
  });

  it("reports an error reply from Redis as INTERNAL", async () => {
    const { store } = setup();
    const tokenHash = "f".repeat(64);
    await fixture.redis.set(`${fixture.keyPrefix}session:${tokenHash}`, "not a hash");
    const error = await rejectionOf(store.findByTokenHash(tokenHash));
    expect(error.code).to.equal(Code.Internal);
    expect(error.message).not.to.contain("WRONGTYPE");
  });

  it("reports an unreachable Redis as UNAVAILABLE", async () => {
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on("error", () => {});
    try {
      const store = createRedisSessionStore(down, { keyPrefix: fixture.keyPrefix });
      const error = await rejectionOf(store.findByTokenHash("0".repeat(64)));
      expect(error.code).to.equal(Code.Unavailable);
      expect(error.cause).to.be.instanceOf(Error);
    } finally {
      down.disconnect();
    }
  });

  it("refuses a client that sets ioredis' own keyPrefix", () => {
    const prefixed = new Redis(redisUrl, { lazyConnect: true, keyPrefix: "x:" });
    try {
      expect(() => createRedisSessionStore(prefixed, { keyPrefix: "y:" })).to.throw(/keyPrefix/);
    } finally {
      prefixed.disconnect();
    }
  });
});
