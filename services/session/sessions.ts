// The session domain: token minting and hashing, expiry and sliding rules, input checks. Storage is a
// SessionStore passed in; it only ever sees the SHA-256 of a token, never the token itself.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  invalidArgument,
  notFound,
  unauthenticated,
  type FieldViolation,
} from "../../internal/errors/errors.js";

/** A session as stored: everything but the token. Times are epoch milliseconds. */
export interface SessionRecord {
  readonly sessionId: string;
  readonly userId: string;
  readonly createdAtMs: number;
  readonly lastSeenAtMs: number;
  readonly expiresAtMs: number;
  readonly ip: string;
  readonly userAgent: string;
}

/**
 * Where sessions live, keyed by the hex SHA-256 of their token, with a per-user index. Every method
 * throws a ConnectError UNAVAILABLE when the backend cannot be reached (the call may be retried) and
 * INTERNAL for anything else the backend rejects. Multi-key changes are atomic: a failure leaves the
 * session either fully written or untouched.
 */
export interface SessionStore {
  /**
   * Saves a new session, expiring at its expiresAtMs, and indexes it under its user. Index entries
   * already expired are pruned; if the user then holds more than maxPerUser sessions, the ones nearest
   * their expiry (never the new one) are ended until maxPerUser remain.
   */
  insert(tokenHash: string, session: SessionRecord, limits: { maxPerUser: number }): Promise<void>;
  /** The session stored under tokenHash, or undefined when unknown, deleted or expired by the backend. */
  findByTokenHash(tokenHash: string): Promise<SessionRecord | undefined>;
  /**
   * Records a use: sets lastSeenAtMs and moves the expiry to expiresAtMs when that is later than the
   * stored one (never earlier, so racing validations cannot shorten a session). Returns the resulting
   * expiry, or undefined when the session no longer exists: a deleted session is never brought back.
   */
  touch(tokenHash: string, update: { lastSeenAtMs: number; expiresAtMs: number }): Promise<number | undefined>;
  /** Ends the session stored under tokenHash. False when there was none. */
  deleteByTokenHash(tokenHash: string): Promise<boolean>;
  /** Ends the session sessionId of userId. False when that user holds no such live session. */
  deleteById(userId: string, sessionId: string): Promise<boolean>;
  /** The user's sessions not yet expired by the backend's clock, in no particular order. */
  listByUser(userId: string): Promise<SessionRecord[]>;
  /** Ends every session of the user but exceptSessionId (when given). Returns how many live ones ended. */
  deleteByUser(userId: string, options: { exceptSessionId?: string }): Promise<number>;
}

export interface SessionSettings {
  /** Lifetime of a new session and of each sliding extension. */
  readonly ttlMs: number;
  /** Extend a session validated in the last half of its life. */
  readonly slidingExpiry: boolean;
  /** No session lives longer than this after its creation. */
  readonly absoluteMaxMs: number;
  /** Creating one more ends the user's session nearest its expiry. */
  readonly maxSessionsPerUser: number;
}

export interface NewSession {
  readonly userId: string;
  readonly ip: string;
  readonly userAgent: string;
}

export interface CreatedSession {
  readonly sessionId: string;
  /** The secret, shown once: base64url (no padding) of 32 random bytes. */
  readonly token: string;
  readonly expiresAtMs: number;
}

export interface ValidatedSession {
  readonly userId: string;
  readonly sessionId: string;
  readonly expiresAtMs: number;
}

/**
 * The session service's operations. Invalid input throws INVALID_ARGUMENT whose field violations name
 * the request fields in proto3 JSON form; store failures surface as the store throws them (UNAVAILABLE).
 */
export interface Sessions {
  /** Starts a session. INVALID_ARGUMENT for an empty or over-long userId or ip. */
  createSession(input: NewSession): Promise<CreatedSession>;
  /**
   * Resolves a token to its live session, recording the use and sliding the expiry when enabled.
   * UNAUTHENTICATED for a malformed (checked before any store access), unknown, deleted or expired token.
   */
  validateSession(token: string): Promise<ValidatedSession>;
  /**
   * Ends the session of this token; an unknown token succeeds (the session is gone either way).
   * INVALID_ARGUMENT for an empty token, UNAUTHENTICATED for a malformed one.
   */
  deleteSessionByToken(token: string): Promise<void>;
  /**
   * Ends one of the user's sessions by id (violations name "session.userId" / "session.sessionId", as in
   * DeleteSessionRequest). NOT_FOUND when the user holds no such session, whether it belongs to another
   * user or to nobody, so ids of other users' sessions cannot be probed.
   */
  deleteSessionById(userId: string, sessionId: string): Promise<void>;
  /** The user's live sessions, newest first. */
  listSessions(userId: string): Promise<SessionRecord[]>;
  /** Ends every session of the user except exceptSessionId (when given); returns how many ended. */
  deleteUserSessions(userId: string, exceptSessionId?: string): Promise<number>;
}

export interface SessionsDeps {
  readonly store: SessionStore;
  /** Epoch milliseconds; tests inject their own. */
  readonly clock?: () => number;
  readonly settings: SessionSettings;
}

const tokenBytes = 32;
/** base64url without padding of 32 bytes is exactly 43 characters. */
const tokenPattern = /^[A-Za-z0-9_-]{43}$/;
const maxIdLength = 128;
const maxIpLength = 64;
// The user agent is a client header passed through; an odd one must not block a login, so it is cut.
const maxUserAgentLength = 512;
// Validations inside this window after the last recorded use do not write last_seen again.
const lastSeenResolutionMs = 60_000;

/** The hex SHA-256 of a token: the only form of it that reaches storage. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function createSessions(deps: SessionsDeps): Sessions {
  const { store, settings } = deps;
  const clock = deps.clock ?? Date.now;

  function hashOfWellFormed(token: string): string {
    if (!tokenPattern.test(token)) throw unauthenticated("invalid session token");
    return hashToken(token);
  }

  return {
    async createSession(input) {
      const violations: FieldViolation[] = [];
      checkId(input.userId, "userId", violations);
      if (input.ip.length > maxIpLength) violations.push(tooLong("ip", maxIpLength));
      throwIfAny(violations);

      const token = randomBytes(tokenBytes).toString("base64url");
      const now = clock();
      const session: SessionRecord = {
        sessionId: randomUUID(),
        userId: input.userId,
        createdAtMs: now,
        lastSeenAtMs: now,
        expiresAtMs: now + Math.min(settings.ttlMs, settings.absoluteMaxMs),
        ip: input.ip,
        userAgent: input.userAgent.slice(0, maxUserAgentLength),
      };
      await store.insert(hashToken(token), session, { maxPerUser: settings.maxSessionsPerUser });
      return { sessionId: session.sessionId, token, expiresAtMs: session.expiresAtMs };
    },

    async validateSession(token) {
      const tokenHash = hashOfWellFormed(token);
      const session = await store.findByTokenHash(tokenHash);
      const now = clock();
      // The backend's TTL may lag by a few milliseconds; the stored expiry is the authority.
      if (!session || session.expiresAtMs <= now) throw unauthenticated("session expired or unknown");

      let expiresAtMs = session.expiresAtMs;
      if (settings.slidingExpiry && session.expiresAtMs - now <= settings.ttlMs / 2) {
        expiresAtMs = Math.max(
          session.expiresAtMs,
          Math.min(now + settings.ttlMs, session.createdAtMs + settings.absoluteMaxMs),
        );
      }
      const extended = expiresAtMs > session.expiresAtMs;
      if (extended || now - session.lastSeenAtMs >= lastSeenResolutionMs) {
        const stored = await store.touch(tokenHash, { lastSeenAtMs: now, expiresAtMs });
        if (stored === undefined) throw unauthenticated("session expired or unknown");
        expiresAtMs = stored;
      }
      return { userId: session.userId, sessionId: session.sessionId, expiresAtMs };
    },

    async deleteSessionByToken(token) {
      if (token === "") throw invalidArgument("token is required", [required("token")]);
      await store.deleteByTokenHash(hashOfWellFormed(token));
    },

    async deleteSessionById(userId, sessionId) {
      const violations: FieldViolation[] = [];
      checkId(userId, "session.userId", violations);
      checkId(sessionId, "session.sessionId", violations);
      throwIfAny(violations);
      if (!(await store.deleteById(userId, sessionId))) throw notFound("session not found");
    },

    async listSessions(userId) {
      const violations: FieldViolation[] = [];
      checkId(userId, "userId", violations);
      throwIfAny(violations);
      const now = clock();
      const sessions = await store.listByUser(userId);
      return sessions
        .filter((s) => s.expiresAtMs > now)
        .sort((a, b) => b.createdAtMs - a.createdAtMs || a.sessionId.localeCompare(b.sessionId));
    },

    async deleteUserSessions(userId, exceptSessionId) {
      const violations: FieldViolation[] = [];
      checkId(userId, "userId", violations);
      if (exceptSessionId && exceptSessionId.length > maxIdLength) {
        violations.push(tooLong("exceptSessionId", maxIdLength));
      }
      throwIfAny(violations);
      return store.deleteByUser(userId, exceptSessionId ? { exceptSessionId } : {});
    },
  };
}

function checkId(value: string, field: string, violations: FieldViolation[]): void {
  if (value === "") violations.push(required(field));
  else if (value.length > maxIdLength) violations.push(tooLong(field, maxIdLength));
}

function required(field: string): FieldViolation {
  return { field, description: "must not be empty", reason: "REQUIRED" };
}

function tooLong(field: string, max: number): FieldViolation {
  return { field, description: `must be at most ${max} characters`, reason: "TOO_LONG" };
}

function throwIfAny(violations: readonly FieldViolation[]): void {
  if (violations.length > 0) throw invalidArgument("invalid request", violations);
}
