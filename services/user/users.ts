// The account domain: registration, login, logout, deletion and profile changes, with their rules.
// Storage, hashing, sessions, cache and throttle are interfaces declared here and passed in.
import { randomUUID } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import {
  internal,
  permissionDenied,
  type ConnectError,
  type FieldViolation,
} from "../../internal/errors/errors.js";
import type { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { runDetached } from "../../internal/trace/call-scope.js";
import {
  currentPasswordRequired,
  emailTaken,
  invalidCredentials,
  userNotFound,
  wrongCurrentPassword,
  wrongPassword,
} from "./errors.js";
import { userDeletedEvent, userRegisteredEvent, type OutboxEvent } from "./outbox.js";
import {
  checkEmail,
  checkName,
  checkPassword,
  checkRequired,
  checkUuid,
  emailKey,
  throwIfAny,
  validateRegistration,
} from "./validation.js";

/** A user as others may see it (the gateway drops the email for public views). */
export interface UserProfile {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A user as stored. */
export interface UserAccount extends UserProfile {
  readonly passwordHash: string;
}

export interface NewUser {
  readonly id: string;
  /** As the user typed it (trimmed); uniqueness ignores case. */
  readonly email: string;
  readonly name: string;
  readonly passwordHash: string;
  /** Also the first updatedAt. */
  readonly createdAt: Date;
}

/** Fields to change; an absent one keeps its value. */
export interface UserChanges {
  readonly name?: string;
  readonly email?: string;
  readonly passwordHash?: string;
  readonly updatedAt: Date;
}

/**
 * Writes inside one transaction. Every method throws UNAVAILABLE when the database cannot be reached and
 * INTERNAL for anything else it rejects; after any error the transaction is rolled back.
 */
export interface UserTx {
  /** ALREADY_EXISTS (reason EMAIL_TAKEN) when another user holds the email in any letter case. */
  insertUser(user: NewUser): Promise<UserAccount>;
  /** The updated user, or undefined when there is none. ALREADY_EXISTS (EMAIL_TAKEN) as insertUser. */
  updateUser(id: string, changes: UserChanges): Promise<UserAccount | undefined>;
  /** False when there was no such user. */
  deleteUser(id: string): Promise<boolean>;
  /** Records a lifecycle event, published only if the transaction commits. */
  appendEvent(event: OutboxEvent): Promise<void>;
}

/**
 * Where users live. Reads and transactions throw UNAVAILABLE when the database cannot be reached and
 * INTERNAL for anything else it rejects.
 */
export interface UserStore {
  findById(id: string): Promise<UserAccount | undefined>;
  /** Matches the email case-insensitively. */
  findByEmail(email: string): Promise<UserAccount | undefined>;
  /**
   * Runs fn in one transaction: commits when it resolves, rolls back when it (or the commit) throws,
   * and rethrows that error (store errors mapped as above, fn's own errors unchanged).
   */
  transaction<T>(fn: (tx: UserTx) => Promise<T>): Promise<T>;
}

export interface PasswordHasher {
  /** A salted hash. INVALID_ARGUMENT for a password over 72 bytes (never truncated). */
  hash(password: string): Promise<string>;
  /** True when the password matches; false (never a throw) for a password over 72 bytes. */
  verify(password: string, hash: string): Promise<boolean>;
  /** Costs what verify costs, against a hash of no account; always false. */
  verifyAgainstDummy(password: string): Promise<false>;
}

/** The part of SessionService this domain calls. Errors are the session service's ConnectErrors. */
export type SessionClient = Pick<
  Client<typeof SessionService>,
  "createSession" | "validateSession" | "deleteSession" | "deleteUserSessions"
>;

/** Cache-aside copies of profiles. Never throws: an outage is a miss, and writes become no-ops. */
export interface ProfileCache {
  get(userId: string): Promise<UserProfile | undefined>;
  set(profile: UserProfile): Promise<void>;
  invalidate(userId: string): Promise<void>;
}

/**
 * Failed password checks counted per account (email, compared case-insensitively) and per client IP
 * ("" when unknown: not counted per IP). Only check throws; a backend outage lets everything through.
 */
export interface LoginThrottle {
  /** RESOURCE_EXHAUSTED with RetryInfo when the account or the IP has reached its limit. */
  check(email: string, ip: string): Promise<void>;
  recordFailure(email: string, ip: string): Promise<void>;
  /** Clears the account's count after a success (the IP's count stays). */
  reset(email: string): Promise<void>;
}

export interface UsersLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** A session issued at registration or login; the token is shown this once. */
export interface IssuedSession {
  readonly sessionId: string;
  readonly token: string;
  readonly expiresAtMs: number;
}

export interface Authenticated {
  readonly user: UserProfile;
  readonly session: IssuedSession;
}

export interface RegisterInput {
  readonly email: string;
  readonly password: string;
  readonly name: string;
  readonly ip: string;
  readonly userAgent: string;
}

export interface LoginInput {
  readonly email: string;
  readonly password: string;
  readonly ip: string;
  readonly userAgent: string;
}

export interface DeleteAccountInput {
  readonly userId: string;
  readonly password: string;
  /** A live session of that same user: proof the caller acts for the account being deleted. */
  readonly sessionToken: string;
}

export interface UpdateProfileInput {
  readonly userId: string;
  readonly name?: string;
  readonly email?: string;
  readonly newPassword?: string;
  /** Required to change the password or the email. */
  readonly currentPassword?: string;
  /** The caller's session: it survives the password change that ends all the others. */
  readonly sessionId: string;
}

/**
 * The user service's operations. Bad input throws INVALID_ARGUMENT naming every bad field (proto3 JSON
 * names) before anything else happens; each operation writes in one transaction, so an error leaves
 * nothing half-written. Store and session service outages surface as UNAVAILABLE.
 */
export interface Users {
  /**
   * Creates the account, records user.registration and opens its first session, all committed together.
   * ALREADY_EXISTS (reason EMAIL_TAKEN) when the email is taken in any letter case.
   */
  register(input: RegisterInput): Promise<Authenticated>;
  /**
   * Checks the credentials and opens a new session (never reuses one). UNAUTHENTICATED "invalid email or
   * password" alike for an unknown email and a wrong password, which cost the same bcrypt time;
   * RESOURCE_EXHAUSTED (RetryInfo) once the account or the IP has too many recent failures.
   */
  login(input: LoginInput): Promise<Authenticated>;
  /** Ends the session of this token; an unknown token succeeds. */
  logout(token: string): Promise<void>;
  /**
   * Deletes the account, records user.delete and ends all its sessions. PERMISSION_DENIED when the
   * session token belongs to another user, UNAUTHENTICATED when it is not a live session or the
   * password is wrong, RESOURCE_EXHAUSTED when the account's failed-password limit is reached,
   * NOT_FOUND when the user does not exist.
   */
  deleteAccount(input: DeleteAccountInput): Promise<void>;
  /**
   * Changes name, email and/or password. A new password or email needs currentPassword:
   * FAILED_PRECONDITION (reason CURRENT_PASSWORD_REQUIRED) when absent or empty, INVALID_ARGUMENT on
   * field currentPassword when wrong, RESOURCE_EXHAUSTED when the account's failed-password limit is
   * reached. A new password ends every session but sessionId (every session when it is empty). ALREADY_EXISTS
   * (EMAIL_TAKEN) for another user's email; NOT_FOUND when the user does not exist. Returns the profile
   * as stored afterwards (unchanged and unwritten when nothing differs).
   */
  updateProfile(input: UpdateProfileInput): Promise<UserProfile>;
  /** The profile, from the cache when present. NOT_FOUND when the user does not exist. */
  getProfile(userId: string): Promise<UserProfile>;
}

export interface UsersDeps {
  readonly store: UserStore;
  readonly hasher: PasswordHasher;
  readonly sessions: SessionClient;
  readonly cache: ProfileCache;
  readonly throttle: LoginThrottle;
  /** Reports clean-up that failed after an error (an orphan session left to expire). */
  readonly logger: UsersLogger;
  /** Epoch milliseconds; tests inject their own. */
  readonly clock?: () => number;
}

export function createUsers(deps: UsersDeps): Users {
  const { store, hasher, sessions, cache, throttle, logger } = deps;
  const clock = deps.clock ?? Date.now;

  async function openSession(userId: string, ip: string, userAgent: string): Promise<IssuedSession> {
    const created = await sessions.createSession({ userId, ip, userAgent });
    if (!created.expiresAt) throw internal(new Error("CreateSession answered without expiresAt"));
    return { sessionId: created.sessionId, token: created.token, expiresAtMs: timestampMs(created.expiresAt) };
  }

  // Re-asking the password of a signed-in user (delete, email or password change) counts against the
  // same per-account limit as logins, so a stolen session cannot be used to guess the password.
  async function confirmPassword(user: UserAccount, password: string, wrong: () => ConnectError): Promise<void> {
    await throttle.check(user.email, "");
    if (!(await hasher.verify(password, user.passwordHash))) {
      await throttle.recordFailure(user.email, "");
      throw wrong();
    }
    await throttle.reset(user.email);
  }

  return {
    async register(input) {
      const { email, name, password } = validateRegistration(input);
      // Saves a bcrypt hash on the common case; the unique index still decides races.
      if (await store.findByEmail(email)) throw emailTaken();
      const passwordHash = await hasher.hash(password);
      const now = new Date(clock());

      // Set inside the transaction; read after it to end a session whose user was never committed.
      const opened: { session?: IssuedSession } = {};
      try {
        return await store.transaction(async (tx) => {
          const user = await tx.insertUser({ id: randomUUID(), email, name, passwordHash, createdAt: now });
          await tx.appendEvent(userRegisteredEvent(user.id, now));
          const session = await openSession(user.id, input.ip, input.userAgent);
          opened.session = session;
          return { user: profileOf(user), session };
        });
      } catch (error) {
        if (opened.session) await endSessionQuietly(opened.session);
        throw error;
      }
    },

    async login(input) {
      const email = input.email.trim();
      const violations: FieldViolation[] = [];
      checkRequired(email, "email", violations);
      checkRequired(input.password, "password", violations);
      throwIfAny(violations);

      await throttle.check(email, input.ip);
      const user = await store.findByEmail(email);
      const ok = user
        ? await hasher.verify(input.password, user.passwordHash)
        : await hasher.verifyAgainstDummy(input.password);
      if (!user || !ok) {
        // Unknown emails are counted too, so the throttle does not tell which accounts exist.
        await throttle.recordFailure(email, input.ip);
        throw invalidCredentials();
      }
      await throttle.reset(email);
      return { user: profileOf(user), session: await openSession(user.id, input.ip, input.userAgent) };
    },

    async logout(token) {
      const violations: FieldViolation[] = [];
      checkRequired(token, "token", violations);
      throwIfAny(violations);
      await sessions.deleteSession({ target: { case: "token", value: token } });
    },

    async deleteAccount(input) {
      const { userId, password, sessionToken } = input;
      const violations: FieldViolation[] = [];
      checkUuid(userId, "userId", violations);
      checkRequired(password, "password", violations);
      checkRequired(sessionToken, "sessionToken", violations);
      throwIfAny(violations);

      const session = await sessions.validateSession({ token: sessionToken });
      if (session.userId !== userId) throw permissionDenied("the session does not belong to this user");
      const user = await store.findById(userId);
      if (!user) throw userNotFound();
      await confirmPassword(user, password, wrongPassword);

      const now = new Date(clock());
      await store.transaction(async (tx) => {
        if (!(await tx.deleteUser(userId))) throw userNotFound();
        await tx.appendEvent(userDeletedEvent(userId, now));
        // Before the commit: if the sessions cannot be ended, the account stays and the caller retries.
        await sessions.deleteUserSessions({ userId });
      });
      await cache.invalidate(userId);
    },

    async updateProfile(input) {
      const violations: FieldViolation[] = [];
      checkUuid(input.userId, "userId", violations);
      const name = input.name === undefined ? undefined : checkName(input.name, "name", violations);
      const email = input.email === undefined ? undefined : checkEmail(input.email, "email", violations);
      const { newPassword } = input;
      if (newPassword !== undefined) checkPassword(newPassword, "newPassword", violations);
      throwIfAny(violations);

      const user = await store.findById(input.userId);
      if (!user) throw userNotFound();
      const newName = name !== undefined && name !== user.name ? name : undefined;
      const newEmail = email !== undefined && email !== user.email ? email : undefined;
      if (newName === undefined && newEmail === undefined && newPassword === undefined) return profileOf(user);

      if (newEmail !== undefined || newPassword !== undefined) {
        if (!input.currentPassword) throw currentPasswordRequired();
        await confirmPassword(user, input.currentPassword, wrongCurrentPassword);
      }
      if (newEmail !== undefined && emailKey(newEmail) !== emailKey(user.email)) {
        const holder = await store.findByEmail(newEmail);
        if (holder && holder.id !== user.id) throw emailTaken();
      }
      const passwordHash = newPassword === undefined ? undefined : await hasher.hash(newPassword);

      const updatedAt = new Date(clock());
      const updated = await store.transaction(async (tx) => {
        const row = await tx.updateUser(user.id, { name: newName, email: newEmail, passwordHash, updatedAt });
        if (!row) throw userNotFound();
        if (passwordHash !== undefined) {
          // Whoever else holds a session may be the reason for the change: end them before committing.
          await sessions.deleteUserSessions({ userId: user.id, exceptSessionId: input.sessionId });
        }
        return row;
      });
      await cache.invalidate(user.id);
      return profileOf(updated);
    },

    async getProfile(userId) {
      const violations: FieldViolation[] = [];
      checkUuid(userId, "userId", violations);
      throwIfAny(violations);

      const cached = await cache.get(userId);
      if (cached) return cached;
      const user = await store.findById(userId);
      if (!user) throw userNotFound();
      const profile = profileOf(user);
      await cache.set(profile);
      return profile;
    },
  };

  async function endSessionQuietly(session: IssuedSession): Promise<void> {
    try {
      // Detached: the registration may have failed because its caller left, and the session must end anyway.
      await runDetached(() => sessions.deleteSession({ target: { case: "token", value: session.token } }));
    } catch (error) {
      logger.warn("could not end the session of a registration that failed; it will expire", {
        sessionId: session.sessionId,
        err: error,
      });
    }
  }
}

/** The profile part of a stored user (never the hash). */
export function profileOf(user: UserAccount): UserProfile {
  return { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt, updatedAt: user.updatedAt };
}
