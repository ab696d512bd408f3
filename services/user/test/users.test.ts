// Unit tests of the account domain over hand-made fakes (test/fakes.ts) and a fixed clock.
import { expect } from "chai";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { fieldViolationsOf, reasonOf, retryDelayMsOf } from "../../../internal/errors/errors.js";
import { UserDeletedSchema, UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { runInScope } from "../../../internal/trace/call-scope.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createUsers, type UserAccount } from "../users.js";
import {
  createFakeHasher,
  createFakeProfileCache,
  createFakeSessionClient,
  createFakeThrottle,
  createFakeUserStore,
} from "./fakes.js";

const start = Date.UTC(2030, 0, 1);
const password = "correct horse";
const registration = { email: "Ada@Example.com", password, name: "Ada", ip: "203.0.113.7", userAgent: "mocha" };

function setup() {
  const store = createFakeUserStore();
  const hasher = createFakeHasher();
  const sessions = createFakeSessionClient();
  const cache = createFakeProfileCache();
  const throttle = createFakeThrottle(3);
  const warnings: string[] = [];
  let now = start;
  const users = createUsers({
    store,
    hasher,
    sessions,
    cache,
    throttle,
    logger: { warn: (msg) => void warnings.push(msg) },
    clock: () => now,
  });
  return {
    store,
    hasher,
    sessions,
    cache,
    throttle,
    warnings,
    users,
    advance: (ms: number) => void (now += ms),
    /** A registered user, its first session token and id. */
    registered: async (input = registration) => {
      const { user, session } = await users.register(input);
      return { user, token: session.token, sessionId: session.sessionId };
    },
  };
}

function stored(store: ReturnType<typeof createFakeUserStore>, id: string): UserAccount {
  const user = store.users.get(id);
  expect(user, "stored user").to.not.equal(undefined);
  return user!;
}

describe("users (domain)", () => {
  describe("register", () => {
    it("creates the account, records user.registration and opens a session, committed together", async () => {
      const { users, store, sessions } = setup();
      const { user, session } = await users.register({ ...registration, email: "  Ada@Example.com ", name: " Ada " });

      expect(user).to.deep.include({ email: "Ada@Example.com", name: "Ada" });
      expect(user.id).to.match(/^[0-9a-f-]{36}$/);
      expect(user.createdAt.getTime()).to.equal(start);
      expect(user.updatedAt.getTime()).to.equal(start);
      expect(user).not.to.have.property("passwordHash");
      expect(stored(store, user.id).passwordHash).to.equal(`hash:${password}`);

      expect(store.events).to.have.length(1);
      const [event] = store.events;
      expect(event).to.include({ routingKey: "user.registration", type: "usermesh.user.v1.registered", userId: user.id });
      const payload = fromBinary(UserRegisteredSchema, event.payload);
      expect(payload.userId).to.equal(user.id);
      expect(timestampDate(payload.registeredAt!).getTime()).to.equal(start);

      expect(sessions.sessions.get(session.token)).to.include({ userId: user.id, sessionId: session.sessionId, ip: "203.0.113.7" });
      expect(session.expiresAtMs).to.equal(Date.UTC(2030, 0, 2));
    });

    it("refuses an email taken in another letter case with ALREADY_EXISTS EMAIL_TAKEN, before hashing", async () => {
      const { users, store, hasher, registered } = setup();
      await registered();
      hasher.calls.length = 0;
      const error = await rejectionOf(users.register({ ...registration, email: "ADA@example.COM" }));
      expect(error.code).to.equal(Code.AlreadyExists);
      expect(reasonOf(error)).to.equal("EMAIL_TAKEN");
      expect(hasher.calls).to.deep.equal([]);
      expect(store.users.size).to.equal(1);
      expect(store.events).to.have.length(1);
    });

    it("answers ALREADY_EXISTS when the insert loses a race for the email, opening no session", async () => {
      const { users, store, sessions, registered } = setup();
      await registered();
      store.blindEmailReads = true;
      const error = await rejectionOf(users.register({ ...registration, email: "ada@example.com" }));
      expect(error.code).to.equal(Code.AlreadyExists);
      expect(reasonOf(error)).to.equal("EMAIL_TAKEN");
      expect(store.users.size).to.equal(1);
      expect(sessions.sessions.size).to.equal(1);
    });

    it("reports every invalid field at once and touches nothing", async () => {
      const { users, store, hasher, sessions } = setup();
      const error = await rejectionOf(users.register({ ...registration, email: "nope", name: "", password: "short" }));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["email", "name", "password"]);
      expect(store.calls).to.deep.equal([]);
      expect(hasher.calls).to.deep.equal([]);
      expect(sessions.calls).to.deep.equal([]);
    });

    it("writes nothing when the session service fails during registration", async () => {
      const { users, store, sessions } = setup();
      sessions.failing.add("createSession");
      const error = await rejectionOf(users.register(registration));
      expect(error.code).to.equal(Code.Unavailable);
      expect(store.calls).to.include("rollback");
      expect(store.users.size).to.equal(0);
      expect(store.events).to.deep.equal([]);
      expect(sessions.sessions.size).to.equal(0);
    });

    it("ends the session it opened when the commit fails afterwards", async () => {
      const { users, store, sessions } = setup();
      store.failNextCommit = true;
      const error = await rejectionOf(users.register(registration));
      expect(error.code).to.equal(Code.Unavailable);
      expect(store.users.size).to.equal(0);
      expect(store.events).to.deep.equal([]);
      expect(sessions.calls).to.deep.equal(["createSession", "deleteSession"]);
      expect(sessions.sessions.size).to.equal(0);
    });

    it("ends the session it opened even when the caller has gone by then", async () => {
      const { users, store, sessions } = setup();
      const caller = new AbortController();
      const createSession = sessions.createSession.bind(sessions);
      sessions.createSession = async (req) => {
        const created = await createSession(req);
        caller.abort();
        return created;
      };
      store.failNextCommit = true;
      await rejectionOf(runInScope({ traceId: "t-gone", signal: caller.signal }, () => users.register(registration)));
      expect(sessions.calls).to.deep.equal(["createSession", "deleteSession"]);
      expect(sessions.sessions.size).to.equal(0);
    });

    it("still reports the commit failure when ending the orphan session fails too, and logs it", async () => {
      const { users, store, sessions, warnings } = setup();
      store.failNextCommit = true;
      sessions.failing.add("deleteSession");
      expect((await rejectionOf(users.register(registration))).code).to.equal(Code.Unavailable);
      expect(warnings).to.have.length(1);
      expect(store.users.size).to.equal(0);
    });
  });

  describe("login", () => {
    it("issues a new session on every login, matching the email in any case", async () => {
      const { users, registered, sessions } = setup();
      const { user, token } = await registered();
      const first = await users.login({ email: " ADA@example.com", password, ip: "198.51.100.1", userAgent: "a" });
      const second = await users.login({ email: "ada@example.com", password, ip: "198.51.100.1", userAgent: "a" });
      expect(first.user).to.deep.equal(user);
      expect(new Set([token, first.session.token, second.session.token]).size).to.equal(3);
      expect(first.session.sessionId).not.to.equal(second.session.sessionId);
      expect(sessions.sessions.size).to.equal(3);
    });

    it("answers an unknown email exactly as a wrong password, after a dummy bcrypt compare", async () => {
      const { users, registered, hasher } = setup();
      await registered();
      hasher.calls.length = 0;
      const wrong = await rejectionOf(users.login({ email: registration.email, password: "wrong password", ip: "", userAgent: "" }));
      expect(hasher.calls).to.deep.equal(["verify"]);
      const unknown = await rejectionOf(users.login({ email: "bob@example.com", password, ip: "", userAgent: "" }));
      expect(hasher.calls).to.deep.equal(["verify", "verifyAgainstDummy"]);

      expect(wrong.code).to.equal(Code.Unauthenticated);
      expect(unknown.code).to.equal(wrong.code);
      expect(unknown.rawMessage).to.equal("invalid email or password");
      expect(unknown.rawMessage).to.equal(wrong.rawMessage);
      expect(unknown.details).to.deep.equal(wrong.details);
    });

    it("counts failures for unknown and known accounts alike and resets the account on success", async () => {
      const { users, registered, throttle } = setup();
      await registered();
      const attempt = (email: string, pw: string) => users.login({ email, password: pw, ip: "192.0.2.1", userAgent: "" });
      await rejectionOf(attempt("ada@example.com", "wrong password"));
      await rejectionOf(attempt("nobody@example.com", "wrong password"));
      expect(throttle.failures.get("account:ada@example.com")).to.equal(1);
      expect(throttle.failures.get("account:nobody@example.com")).to.equal(1);
      expect(throttle.failures.get("ip:192.0.2.1")).to.equal(2);

      await attempt("Ada@Example.com", password);
      expect(throttle.failures.has("account:ada@example.com")).to.equal(false);
      expect(throttle.failures.get("ip:192.0.2.1")).to.equal(2);
    });

    it("refuses with RESOURCE_EXHAUSTED past the limit, even with the right password, without checking it", async () => {
      const { users, registered, hasher, sessions } = setup();
      await registered();
      for (let i = 0; i < 3; i++) {
        await rejectionOf(users.login({ email: "ada@example.com", password: "wrong password", ip: "", userAgent: "" }));
      }
      hasher.calls.length = 0;
      const sessionsBefore = sessions.sessions.size;
      const error = await rejectionOf(users.login({ email: "ada@example.com", password, ip: "", userAgent: "" }));
      expect(error.code).to.equal(Code.ResourceExhausted);
      expect(retryDelayMsOf(error)).to.be.greaterThan(0);
      expect(hasher.calls).to.deep.equal([]);
      expect(sessions.sessions.size).to.equal(sessionsBefore);
    });

    it("requires an email and a password", async () => {
      const { users } = setup();
      const error = await rejectionOf(users.login({ email: " ", password: "", ip: "", userAgent: "" }));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["email", "password"]);
    });
  });

  describe("logout", () => {
    it("ends the session of the token", async () => {
      const { users, registered, sessions } = setup();
      const { token } = await registered();
      await users.logout(token);
      expect(sessions.sessions.has(token)).to.equal(false);
    });

    it("requires a token", async () => {
      const { users } = setup();
      const error = await rejectionOf(users.logout(""));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error)[0]?.field).to.equal("token");
    });
  });

  describe("deleteAccount", () => {
    it("deletes the user, records user.delete, ends every session and drops the cached profile", async () => {
      const { users, registered, store, sessions, cache, advance } = setup();
      const { user, token } = await registered();
      sessions.open(user.id);
      await users.getProfile(user.id);
      expect(cache.entries.has(user.id)).to.equal(true);
      advance(5000);

      await users.deleteAccount({ userId: user.id, password, sessionToken: token });
      expect(store.users.size).to.equal(0);
      const event = store.events.at(-1)!;
      expect(event).to.include({ routingKey: "user.delete", type: "usermesh.user.v1.deleted", userId: user.id });
      const payload = fromBinary(UserDeletedSchema, event.payload);
      expect(payload.userId).to.equal(user.id);
      expect(timestampDate(payload.deletedAt!).getTime()).to.equal(start + 5000);
      expect(sessions.sessions.size).to.equal(0);
      expect(cache.entries.has(user.id)).to.equal(false);
    });

    it("refuses a wrong password with UNAUTHENTICATED, deletes nothing and counts the failure", async () => {
      const { users, registered, store, sessions, throttle } = setup();
      const { user, token } = await registered();
      const error = await rejectionOf(users.deleteAccount({ userId: user.id, password: "wrong password", sessionToken: token }));
      expect(error.code).to.equal(Code.Unauthenticated);
      expect(store.users.size).to.equal(1);
      expect(store.events).to.have.length(1);
      expect(sessions.sessions.has(token)).to.equal(true);
      expect(throttle.failures.get("account:ada@example.com")).to.equal(1);
    });

    it("refuses a session of another user with PERMISSION_DENIED", async () => {
      const { users, registered, store } = setup();
      const ada = await registered();
      const bob = await registered({ ...registration, email: "bob@example.com" });
      const error = await rejectionOf(users.deleteAccount({ userId: ada.user.id, password, sessionToken: bob.token }));
      expect(error.code).to.equal(Code.PermissionDenied);
      expect(store.users.size).to.equal(2);
    });

    it("refuses an unknown session token with UNAUTHENTICATED", async () => {
      const { users, registered } = setup();
      const { user } = await registered();
      const error = await rejectionOf(users.deleteAccount({ userId: user.id, password, sessionToken: "gone" }));
      expect(error.code).to.equal(Code.Unauthenticated);
    });

    it("answers NOT_FOUND for a user that does not exist", async () => {
      const { users, sessions } = setup();
      const userId = "5b7f6a3e-2c1d-4e8f-9a0b-1c2d3e4f5a6b";
      const { token } = sessions.open(userId);
      const error = await rejectionOf(users.deleteAccount({ userId, password, sessionToken: token }));
      expect(error.code).to.equal(Code.NotFound);
    });

    it("keeps the account when its sessions cannot be ended (rolled back, no event)", async () => {
      const { users, registered, store, sessions } = setup();
      const { user, token } = await registered();
      sessions.failing.add("deleteUserSessions");
      const error = await rejectionOf(users.deleteAccount({ userId: user.id, password, sessionToken: token }));
      expect(error.code).to.equal(Code.Unavailable);
      expect(store.users.has(user.id)).to.equal(true);
      expect(store.events.map((e) => e.routingKey)).to.deep.equal(["user.registration"]);
    });

    it("validates every field at once", async () => {
      const { users } = setup();
      const error = await rejectionOf(users.deleteAccount({ userId: "x", password: "", sessionToken: "" }));
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["userId", "password", "sessionToken"]);
    });
  });

  describe("updateProfile", () => {
    it("changes the name without the current password and drops the cached profile", async () => {
      const { users, registered, store, cache, advance } = setup();
      const { user, sessionId } = await registered();
      await users.getProfile(user.id);
      advance(1000);
      const updated = await users.updateProfile({ userId: user.id, name: "  Ada King ", sessionId });
      expect(updated).to.deep.include({ name: "Ada King", email: user.email });
      expect(updated.updatedAt.getTime()).to.equal(start + 1000);
      expect(updated.createdAt.getTime()).to.equal(start);
      expect(stored(store, user.id).name).to.equal("Ada King");
      expect(cache.entries.has(user.id)).to.equal(false);
      expect((await users.getProfile(user.id)).name).to.equal("Ada King");
    });

    it("needs the current password for a new password or a new email: FAILED_PRECONDITION CURRENT_PASSWORD_REQUIRED", async () => {
      const { users, registered, store } = setup();
      const { user, sessionId } = await registered();
      for (const change of [{ newPassword: "new password!" }, { email: "ada@new.example" }]) {
        const error = await rejectionOf(users.updateProfile({ userId: user.id, sessionId, ...change }));
        expect(error.code).to.equal(Code.FailedPrecondition);
        expect(reasonOf(error)).to.equal("CURRENT_PASSWORD_REQUIRED");
      }
      expect(stored(store, user.id)).to.deep.include({ email: user.email, passwordHash: `hash:${password}` });
    });

    it("refuses a wrong current password as INVALID_ARGUMENT on currentPassword, changing nothing", async () => {
      const { users, registered, store, sessions, throttle } = setup();
      const { user, sessionId } = await registered();
      sessions.open(user.id);
      const error = await rejectionOf(
        users.updateProfile({ userId: user.id, sessionId, newPassword: "new password!", currentPassword: "not it at all" }),
      );
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error)).to.deep.equal([
        { field: "currentPassword", description: "does not match the current password", reason: "WRONG_PASSWORD" },
      ]);
      expect(stored(store, user.id).passwordHash).to.equal(`hash:${password}`);
      expect(sessions.sessions.size).to.equal(2);
      expect(throttle.failures.get("account:ada@example.com")).to.equal(1);
    });

    it("ends every other session when the password changes, keeping the caller's", async () => {
      const { users, registered, store, sessions } = setup();
      const { user, token, sessionId } = await registered();
      const other = sessions.open(user.id);
      const bob = await registered({ ...registration, email: "bob@example.com" });

      await users.updateProfile({ userId: user.id, sessionId, newPassword: "new password!", currentPassword: password });
      expect(stored(store, user.id).passwordHash).to.equal("hash:new password!");
      expect(sessions.sessions.has(token)).to.equal(true);
      expect(sessions.sessions.has(other.token)).to.equal(false);
      expect(sessions.sessions.has(bob.token)).to.equal(true);

      await users.login({ email: user.email, password: "new password!", ip: "", userAgent: "" });
      const old = await rejectionOf(users.login({ email: user.email, password, ip: "", userAgent: "" }));
      expect(old.code).to.equal(Code.Unauthenticated);
    });

    it("keeps every session when only the name or the email changes", async () => {
      const { users, registered, sessions } = setup();
      const { user, sessionId } = await registered();
      sessions.open(user.id);
      await users.updateProfile({ userId: user.id, sessionId, name: "Countess", email: "ada@new.example", currentPassword: password });
      expect(sessions.sessions.size).to.equal(2);
      expect(sessions.calls).not.to.include("deleteUserSessions");
    });

    it("refuses another user's email in any letter case with ALREADY_EXISTS EMAIL_TAKEN", async () => {
      const { users, registered, store } = setup();
      const { user, sessionId } = await registered();
      await registered({ ...registration, email: "bob@example.com" });
      const error = await rejectionOf(
        users.updateProfile({ userId: user.id, sessionId, email: "BOB@example.com", currentPassword: password }),
      );
      expect(error.code).to.equal(Code.AlreadyExists);
      expect(reasonOf(error)).to.equal("EMAIL_TAKEN");
      expect(stored(store, user.id).email).to.equal(user.email);
    });

    it("lets a user change the letter case of their own email", async () => {
      const { users, registered } = setup();
      const { user, sessionId } = await registered();
      const updated = await users.updateProfile({ userId: user.id, sessionId, email: "ada@example.com", currentPassword: password });
      expect(updated.email).to.equal("ada@example.com");
    });

    it("writes nothing when no field differs", async () => {
      const { users, registered, store, cache } = setup();
      const { user, sessionId } = await registered();
      store.calls.length = 0;
      const same = await users.updateProfile({ userId: user.id, sessionId, name: "Ada", email: user.email });
      expect(same).to.deep.equal(user);
      expect(store.calls).to.deep.equal(["findById"]);
      expect(cache.calls).to.deep.equal([]);
    });

    it("writes nothing when the other sessions cannot be ended", async () => {
      const { users, registered, store, sessions } = setup();
      const { user, sessionId } = await registered();
      sessions.failing.add("deleteUserSessions");
      const error = await rejectionOf(
        users.updateProfile({ userId: user.id, sessionId, newPassword: "new password!", currentPassword: password }),
      );
      expect(error.code).to.equal(Code.Unavailable);
      expect(stored(store, user.id).passwordHash).to.equal(`hash:${password}`);
    });

    it("reports every invalid field at once", async () => {
      const { users } = setup();
      const error = await rejectionOf(
        users.updateProfile({ userId: "nope", sessionId: "", name: "\u200b", email: "a@b", newPassword: "€".repeat(25) }),
      );
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["userId", "name", "email", "newPassword"]);
    });

    it("answers NOT_FOUND for a user that does not exist", async () => {
      const { users } = setup();
      const error = await rejectionOf(
        users.updateProfile({ userId: "5b7f6a3e-2c1d-4e8f-9a0b-1c2d3e4f5a6b", sessionId: "", name: "Someone" }),
      );
      expect(error.code).to.equal(Code.NotFound);
    });
  });

  describe("getProfile", () => {
    it("reads through the cache: a miss loads and fills it, a hit skips the store", async () => {
      const { users, registered, store, cache } = setup();
      const { user } = await registered();
      store.calls.length = 0;
      expect(await users.getProfile(user.id)).to.deep.equal(user);
      expect(cache.calls).to.deep.equal([`get ${user.id}`, `set ${user.id}`]);
      expect(store.calls).to.deep.equal(["findById"]);
      expect(await users.getProfile(user.id)).to.deep.equal(user);
      expect(store.calls).to.deep.equal(["findById"]);
    });

    it("answers NOT_FOUND for an unknown user and INVALID_ARGUMENT for an id that is not a UUID", async () => {
      const { users } = setup();
      expect((await rejectionOf(users.getProfile("5b7f6a3e-2c1d-4e8f-9a0b-1c2d3e4f5a6b"))).code).to.equal(Code.NotFound);
      const bad = await rejectionOf(users.getProfile("42"));
      expect(bad.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(bad)[0]?.field).to.equal("userId");
    });
  });
});
