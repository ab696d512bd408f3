// Hand-made fakes of the account domain's dependencies, for its unit tests.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  CreateSessionResponseSchema,
  DeleteSessionResponseSchema,
  DeleteUserSessionsResponseSchema,
  ValidateSessionResponseSchema,
} from "../../../gen/usermesh/session/v1/session_pb.js";
import { Code, ConnectError, resourceExhausted, unauthenticated, unavailable } from "../../../internal/errors/errors.js";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { emailTaken } from "../errors.js";
import type { OutboxEvent } from "../outbox.js";
import type {
  LoginThrottle,
  PasswordHasher,
  ProfileCache,
  SessionClient,
  UserAccount,
  UserProfile,
  UserStore,
} from "../users.js";

export interface FakeUserStore extends UserStore {
  /** Committed state. */
  readonly users: Map<string, UserAccount>;
  readonly events: OutboxEvent[];
  /** Every read and transaction outcome, in order. */
  readonly calls: string[];
  /** Makes the next commit fail after fn resolved (as a lost connection at COMMIT would). */
  failNextCommit: boolean;
  /** Makes findByEmail miss, so only the insert's uniqueness check can catch a taken email (a race). */
  blindEmailReads: boolean;
}

/**
 * Keeps users in a Map. A transaction works on copies and replaces the committed state only when fn
 * resolves (and the commit is not made to fail), so a rollback leaves nothing behind.
 */
export function createFakeUserStore(): FakeUserStore {
  const store: FakeUserStore = {
    users: new Map(),
    events: [],
    calls: [],
    failNextCommit: false,
    blindEmailReads: false,

    findById(id) {
      store.calls.push("findById");
      return Promise.resolve(store.users.get(id));
    },

    findByEmail(email) {
      store.calls.push("findByEmail");
      if (store.blindEmailReads) return Promise.resolve(undefined);
      return Promise.resolve(findEmail(store.users, email));
    },

    async transaction(fn) {
      const users = new Map(store.users);
      const events: OutboxEvent[] = [];
      const result = await fn({
        insertUser(user) {
          if (findEmail(users, user.email) || users.has(user.id)) return Promise.reject(emailTaken());
          const account: UserAccount = { ...user, updatedAt: user.createdAt };
          users.set(user.id, account);
          return Promise.resolve(account);
        },
        updateUser(id, changes) {
          const current = users.get(id);
          if (!current) return Promise.resolve(undefined);
          const holder = changes.email === undefined ? undefined : findEmail(users, changes.email);
          if (holder && holder.id !== id) return Promise.reject(emailTaken());
          const updated: UserAccount = {
            ...current,
            name: changes.name ?? current.name,
            email: changes.email ?? current.email,
            passwordHash: changes.passwordHash ?? current.passwordHash,
            updatedAt: changes.updatedAt,
          };
          users.set(id, updated);
          return Promise.resolve(updated);
        },
        deleteUser(id) {
          return Promise.resolve(users.delete(id));
        },
        appendEvent(event) {
          events.push(event);
          return Promise.resolve();
        },
      }).catch((error: unknown) => {
        store.calls.push("rollback");
        throw error;
      });
      if (store.failNextCommit) {
        store.failNextCommit = false;
        store.calls.push("rollback");
        throw unavailable("user store unavailable");
      }
      store.calls.push("commit");
      store.users.clear();
      for (const [id, user] of users) store.users.set(id, user);
      store.events.push(...events);
      return result;
    },
  };
  return store;
}

function findEmail(users: Map<string, UserAccount>, email: string): UserAccount | undefined {
  return [...users.values()].find((u) => u.email.toLowerCase() === email.trim().toLowerCase());
}

export interface FakeHasher extends PasswordHasher {
  readonly calls: string[];
}

/** "hash:<password>", so tests can see which password a stored hash is of; calls are recorded. */
export function createFakeHasher(): FakeHasher {
  const calls: string[] = [];
  return {
    calls,
    hash(password) {
      calls.push("hash");
      return Promise.resolve(`hash:${password}`);
    },
    verify(password, hash) {
      calls.push("verify");
      return Promise.resolve(hash === `hash:${password}`);
    },
    verifyAgainstDummy() {
      calls.push("verifyAgainstDummy");
      return Promise.resolve(false);
    },
  };
}

interface FakeSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly ip: string;
}

export interface FakeSessionClient extends SessionClient {
  /** Live sessions by token. */
  readonly sessions: Map<string, FakeSession>;
  readonly calls: string[];
  /** Makes every call of these methods fail with UNAVAILABLE. */
  readonly failing: Set<"createSession" | "deleteSession" | "deleteUserSessions" | "validateSession">;
  /** Opens a session directly (as another device would have). */
  open(userId: string): { token: string; sessionId: string };
}

export function createFakeSessionClient(expiresAtMs = Date.UTC(2030, 0, 2)): FakeSessionClient {
  const sessions = new Map<string, FakeSession>();
  const calls: string[] = [];
  const failing = new Set<"createSession" | "deleteSession" | "deleteUserSessions" | "validateSession">();
  const fail = (method: "createSession" | "deleteSession" | "deleteUserSessions" | "validateSession") => {
    calls.push(method);
    if (failing.has(method)) throw unavailable("session service unavailable");
    // As the real transport does: a call made for a caller that has gone is never sent.
    if (currentScope()?.signal?.aborted) throw new ConnectError("the caller went away", Code.Canceled);
  };
  const open = (userId: string, ip = "") => {
    const token = randomUUID();
    const sessionId = randomUUID();
    sessions.set(token, { sessionId, userId, ip });
    return { token, sessionId };
  };
  return {
    sessions,
    calls,
    failing,
    open,
    async createSession(req) {
      fail("createSession");
      const { token, sessionId } = open(req.userId ?? "", req.ip ?? "");
      return create(CreateSessionResponseSchema, { sessionId, token, expiresAt: timestampFromMs(expiresAtMs) });
    },
    async validateSession(req) {
      fail("validateSession");
      const session = sessions.get(req.token ?? "");
      if (!session) throw unauthenticated("session expired or unknown");
      return create(ValidateSessionResponseSchema, { userId: session.userId, sessionId: session.sessionId });
    },
    async deleteSession(req) {
      fail("deleteSession");
      if (req.target?.case === "token") sessions.delete(req.target.value);
      return create(DeleteSessionResponseSchema, {});
    },
    async deleteUserSessions(req) {
      fail("deleteUserSessions");
      let deletedCount = 0;
      for (const [token, s] of sessions) {
        if (s.userId === req.userId && s.sessionId !== req.exceptSessionId) {
          sessions.delete(token);
          deletedCount++;
        }
      }
      return create(DeleteUserSessionsResponseSchema, { deletedCount });
    },
  };
}

export interface FakeProfileCache extends ProfileCache {
  readonly entries: Map<string, UserProfile>;
  readonly calls: string[];
}

export function createFakeProfileCache(): FakeProfileCache {
  const entries = new Map<string, UserProfile>();
  const calls: string[] = [];
  return {
    entries,
    calls,
    get(userId) {
      calls.push(`get ${userId}`);
      return Promise.resolve(entries.get(userId));
    },
    set(profile) {
      calls.push(`set ${profile.id}`);
      entries.set(profile.id, profile);
      return Promise.resolve();
    },
    invalidate(userId) {
      calls.push(`invalidate ${userId}`);
      entries.delete(userId);
      return Promise.resolve();
    },
  };
}

export interface FakeThrottle extends LoginThrottle {
  /** Failures by "account:<lowercased email>" and "ip:<ip>". */
  readonly failures: Map<string, number>;
  readonly calls: string[];
}

/** Counts failures in a Map; check refuses at `max` failures per account or per IP. */
export function createFakeThrottle(max = 3): FakeThrottle {
  const failures = new Map<string, number>();
  const calls: string[] = [];
  const count = (key: string) => failures.get(key) ?? 0;
  return {
    failures,
    calls,
    check(email, ip) {
      calls.push("check");
      const account = `account:${email.toLowerCase()}`;
      if (count(account) >= max || (ip !== "" && count(`ip:${ip}`) >= max)) {
        return Promise.reject(resourceExhausted("too many failed login attempts, try again later", 60_000));
      }
      return Promise.resolve();
    },
    recordFailure(email, ip) {
      calls.push("recordFailure");
      const account = `account:${email.toLowerCase()}`;
      failures.set(account, count(account) + 1);
      if (ip !== "") failures.set(`ip:${ip}`, count(`ip:${ip}`) + 1);
      return Promise.resolve();
    },
    reset(email) {
      calls.push("reset");
      failures.delete(`account:${email.toLowerCase()}`);
      return Promise.resolve();
    },
  };
}
