// Unit tests of the session domain over a hand-made in-memory store and a clock the test moves.
import { expect } from "chai";
import { rejectionOf } from "../../../test/support/rejection.js";
import { Code } from "@connectrpc/connect";
import { fieldViolationsOf } from "../../../internal/errors/errors.js";
import {
  createSessions,
  hashToken,
  type SessionRecord,
  type SessionSettings,
  type SessionStore,
} from "../sessions.js";

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;
const day = 24 * hour;

interface FakeStore extends SessionStore {
  /** Every call as [method, ...args], in order. */
  readonly calls: unknown[][];
  readonly sessions: Map<string, SessionRecord>;
}

/** Keeps sessions in a Map; never expires anything itself, so the domain's own expiry check is tested. */
function createFakeStore(): FakeStore {
  const sessions = new Map<string, SessionRecord>();
  const calls: unknown[][] = [];
  const byUser = (userId: string) => [...sessions].filter(([, s]) => s.userId === userId);
  return {
    calls,
    sessions,
    insert(tokenHash, session, limits) {
      calls.push(["insert", tokenHash, session, limits]);
      sessions.set(tokenHash, session);
      const others = byUser(session.userId)
        .filter(([, s]) => s.sessionId !== session.sessionId)
        .sort(([, a], [, b]) => a.expiresAtMs - b.expiresAtMs);
      const excess = others.length + 1 - limits.maxPerUser;
      for (const [hash] of others.slice(0, Math.max(0, excess))) sessions.delete(hash);
      return Promise.resolve();
    },
    findByTokenHash(tokenHash) {
      calls.push(["findByTokenHash", tokenHash]);
      return Promise.resolve(sessions.get(tokenHash));
    },
    touch(tokenHash, update) {
      calls.push(["touch", tokenHash, update]);
      const s = sessions.get(tokenHash);
      if (!s) return Promise.resolve(undefined);
      const expiresAtMs = Math.max(s.expiresAtMs, update.expiresAtMs);
      sessions.set(tokenHash, { ...s, lastSeenAtMs: update.lastSeenAtMs, expiresAtMs });
      return Promise.resolve(expiresAtMs);
    },
    deleteByTokenHash(tokenHash) {
      calls.push(["deleteByTokenHash", tokenHash]);
      return Promise.resolve(sessions.delete(tokenHash));
    },
    deleteById(userId, sessionId) {
      calls.push(["deleteById", userId, sessionId]);
      const found = byUser(userId).find(([, s]) => s.sessionId === sessionId);
      return Promise.resolve(found ? sessions.delete(found[0]) : false);
    },
    listByUser(userId) {
      calls.push(["listByUser", userId]);
      return Promise.resolve(byUser(userId).map(([, s]) => s));
    },
    deleteByUser(userId, options) {
      calls.push(["deleteByUser", userId, options]);
      const ended = byUser(userId).filter(([, s]) => s.sessionId !== options.exceptSessionId);
      for (const [hash] of ended) sessions.delete(hash);
      return Promise.resolve(ended.length);
    },
  };
}

function setup(overrides: Partial<SessionSettings> = {}) {
  const store = createFakeStore();
  let now = Date.UTC(2030, 0, 1);
  const settings: SessionSettings = {
    ttlMs: day,
    slidingExpiry: true,
    absoluteMaxMs: 30 * day,
    maxSessionsPerUser: 100,
    ...overrides,
  };
  const sessions = createSessions({ store, settings, clock: () => now });
  return {
    store,
    sessions,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const newSession = { userId: "user-1", ip: "203.0.113.7", userAgent: "mocha" };


describe("sessions (domain)", () => {
  it("mints a 43-character base64url token of 32 random bytes and a UUID session id", async () => {
    const { sessions } = setup();
    const a = await sessions.createSession(newSession);
    const b = await sessions.createSession(newSession);
    expect(a.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.token, "base64url")).to.have.length(32);
    expect(a.sessionId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.token).not.to.equal(b.token);
    expect(a.sessionId).not.to.equal(b.sessionId);
  });

  it("hands the store only the SHA-256 of the token, never the token", async () => {
    const { sessions, store } = setup();
    const { token } = await sessions.createSession(newSession);
    await sessions.validateSession(token);
    await sessions.deleteSessionByToken(token);

    const hash = hashToken(token);
    expect(hash).to.match(/^[0-9a-f]{64}$/);
    expect(store.calls.map((c) => c[0])).to.deep.equal(["insert", "findByTokenHash", "deleteByTokenHash"]);
    for (const call of store.calls) {
      expect(call[1]).to.equal(hash);
      expect(JSON.stringify(call)).not.to.contain(token);
    }
  });

  it("rejects a session at its expiry even while the store still returns it", async () => {
    const { sessions, store, advance } = setup({ ttlMs: hour, slidingExpiry: false });
    const { token } = await sessions.createSession(newSession);
    advance(hour - 1);
    expect((await sessions.validateSession(token)).userId).to.equal("user-1");
    advance(1);
    expect(store.sessions.size).to.equal(1);
    expect((await rejectionOf(sessions.validateSession(token))).code).to.equal(Code.Unauthenticated);
  });

  it("extends a session validated in the last half of its life to now + TTL", async () => {
    const { sessions, advance, now } = setup({ ttlMs: 10 * hour });
    const { token, expiresAtMs } = await sessions.createSession(newSession);

    advance(4 * hour); // first half: unchanged
    expect((await sessions.validateSession(token)).expiresAtMs).to.equal(expiresAtMs);

    advance(2 * hour); // 6 h in: last half
    const extended = await sessions.validateSession(token);
    expect(extended.expiresAtMs).to.equal(now() + 10 * hour);
    advance(9 * hour); // past the original expiry, within the extended one
    expect((await sessions.validateSession(token)).sessionId).to.equal(extended.sessionId);
  });

  it("never extends a session past its absolute maximum, then rejects it", async () => {
    const { sessions, advance, now } = setup({ ttlMs: 10 * hour, absoluteMaxMs: 25 * hour });
    const cap = now() + 25 * hour;
    const { token } = await sessions.createSession(newSession);
    const expiries: number[] = [];
    for (let i = 0; i < 4; i++) {
      advance(6 * hour); // 6 h, 12 h, 18 h, 24 h: each in the last half of the current expiry
      expiries.push((await sessions.validateSession(token)).expiresAtMs);
    }
    expect(expiries).to.deep.equal([cap - 9 * hour, cap - 3 * hour, cap, cap]);
    advance(hour); // 25 h: the absolute maximum
    expect((await rejectionOf(sessions.validateSession(token))).code).to.equal(Code.Unauthenticated);
  });

  it("does not extend a session when sliding expiry is off", async () => {
    const { sessions, advance } = setup({ ttlMs: 10 * hour, slidingExpiry: false });
    const { token, expiresAtMs } = await sessions.createSession(newSession);
    advance(9 * hour);
    expect((await sessions.validateSession(token)).expiresAtMs).to.equal(expiresAtMs);
    advance(hour);
    expect((await rejectionOf(sessions.validateSession(token))).code).to.equal(Code.Unauthenticated);
  });

  it("writes last seen at most once a minute", async () => {
    const { sessions, store, advance, now } = setup();
    const { token } = await sessions.createSession(newSession);
    advance(30 * second);
    await sessions.validateSession(token);
    expect(store.calls.filter((c) => c[0] === "touch")).to.have.length(0);
    advance(30 * second);
    await sessions.validateSession(token);
    expect(store.calls.filter((c) => c[0] === "touch")).to.have.length(1);
    expect(store.sessions.get(hashToken(token))?.lastSeenAtMs).to.equal(now());
  });

  it("rejects a malformed token as UNAUTHENTICATED without touching the store", async () => {
    const { sessions, store } = setup();
    const { token } = await sessions.createSession(newSession);
    store.calls.length = 0;
    const malformed = ["", "abc", `${token}A`, token.slice(1), `${token.slice(0, 42)}=`, `${token.slice(0, 42)}+`];
    for (const bad of malformed) {
      expect((await rejectionOf(sessions.validateSession(bad))).code).to.equal(Code.Unauthenticated);
    }
    expect((await rejectionOf(sessions.deleteSessionByToken("not-a-token"))).code).to.equal(Code.Unauthenticated);
    expect(store.calls).to.deep.equal([]);
  });

  it("rejects an unknown well-formed token as UNAUTHENTICATED", async () => {
    const { sessions } = setup();
    const unknown = Buffer.alloc(32, 7).toString("base64url");
    expect((await rejectionOf(sessions.validateSession(unknown))).code).to.equal(Code.Unauthenticated);
  });

  it("answers NOT_FOUND when a user deletes another user's session by id, and keeps it alive", async () => {
    const { sessions } = setup();
    const mine = await sessions.createSession(newSession);
    const error = await rejectionOf(sessions.deleteSessionById("user-2", mine.sessionId));
    expect(error.code).to.equal(Code.NotFound);
    expect((await sessions.validateSession(mine.token)).userId).to.equal("user-1");
    await sessions.deleteSessionById("user-1", mine.sessionId);
    expect((await rejectionOf(sessions.validateSession(mine.token))).code).to.equal(Code.Unauthenticated);
  });

  it("succeeds when deleting an unknown token: the session is gone either way", async () => {
    const { sessions } = setup();
    await sessions.deleteSessionByToken(Buffer.alloc(32, 1).toString("base64url"));
  });

  it("reports invalid input as INVALID_ARGUMENT with proto3 JSON field names", async () => {
    const { sessions, store } = setup();
    const create = await rejectionOf(sessions.createSession({ ...newSession, userId: "", ip: "x".repeat(65) }));
    expect(create.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(create).map((v) => v.field)).to.deep.equal(["userId", "ip"]);

    const byId = await rejectionOf(sessions.deleteSessionById("", ""));
    expect(fieldViolationsOf(byId).map((v) => v.field)).to.deep.equal(["session.userId", "session.sessionId"]);
    expect(fieldViolationsOf(await rejectionOf(sessions.listSessions(""))).map((v) => v.field)).to.deep.equal([
      "userId",
    ]);
    expect(fieldViolationsOf(await rejectionOf(sessions.deleteUserSessions(""))).map((v) => v.field)).to.deep.equal([
      "userId",
    ]);
    const emptyToken = await rejectionOf(sessions.deleteSessionByToken(""));
    expect(emptyToken.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(emptyToken).map((v) => v.field)).to.deep.equal(["token"]);
    expect(store.calls).to.deep.equal([]);
  });

  it("throws real ConnectError codes, not HTTP numbers or plain errors", async () => {
    const { sessions } = setup();
    const codes = [
      (await rejectionOf(sessions.validateSession("nope"))).code,
      (await rejectionOf(sessions.listSessions(""))).code,
      (await rejectionOf(sessions.deleteSessionById("user-1", "00000000-0000-4000-8000-000000000000"))).code,
    ];
    expect(codes).to.deep.equal([Code.Unauthenticated, Code.InvalidArgument, Code.NotFound]);
    expect(Code[codes[0]]).to.equal("Unauthenticated");
  });

  it("lists a user's live sessions newest first", async () => {
    const { sessions, advance } = setup({ ttlMs: 10 * hour, slidingExpiry: false });
    const first = await sessions.createSession(newSession);
    advance(hour);
    const second = await sessions.createSession({ ...newSession, userAgent: "other" });
    await sessions.createSession({ ...newSession, userId: "user-2" });
    advance(9 * hour); // the first has expired
    const listed = await sessions.listSessions("user-1");
    expect(listed.map((s) => s.sessionId)).to.deep.equal([second.sessionId]);
    expect(listed[0]).to.include({ userId: "user-1", ip: newSession.ip, userAgent: "other" });
    expect(listed.map((s) => s.sessionId)).not.to.include(first.sessionId);
  });

  it("ends every session of a user but the one kept", async () => {
    const { sessions } = setup();
    const keep = await sessions.createSession(newSession);
    const a = await sessions.createSession(newSession);
    const other = await sessions.createSession({ ...newSession, userId: "user-2" });
    expect(await sessions.deleteUserSessions("user-1", keep.sessionId)).to.equal(1);
    expect((await rejectionOf(sessions.validateSession(a.token))).code).to.equal(Code.Unauthenticated);
    expect((await sessions.validateSession(keep.token)).sessionId).to.equal(keep.sessionId);
    expect((await sessions.validateSession(other.token)).userId).to.equal("user-2");
  });

  it("cuts an over-long user agent instead of refusing the login", async () => {
    const { sessions, store } = setup();
    await sessions.createSession({ ...newSession, userAgent: "a".repeat(2000) });
    expect([...store.sessions.values()][0]?.userAgent).to.have.length(512);
  });
});
