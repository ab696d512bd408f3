import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { fieldViolationsOf, reasonOf, retryDelayMsOf } from "../../../internal/errors/errors.js";
import { errorFromStatus } from "../../../internal/rpc/grpc-codec.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";
import { startUserMesh, type UserMesh } from "../../../test/support/user-mesh.js";

// UserService through a stock grpc-js client, against real session + user processes, PostgreSQL
// and Redis.

const pkg = loadStockPackage(["usermesh/user/v1/user.proto", "usermesh/session/v1/session.proto"]);

interface WireUser { id: string; email: string; name: string }
interface WireAuth { user: WireUser; session: { sessionId: string; token: string } }

async function failure(promise: Promise<unknown>) {
  const error = await promise.then(() => undefined, (e: unknown) => e as grpc.ServiceError);
  expect(error, "expected the call to fail").to.not.equal(undefined);
  return errorFromStatus(error!);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe("UserService over gRPC (real user + session processes)", function () {
  this.timeout(60_000);
  let mesh: UserMesh;
  let users: grpc.Client;
  let sessions: grpc.Client;
  const register = (email: string, password = "correct horse battery", name = "Ada") =>
    callUnary<WireAuth>(users, "register", { email, password, name, ip: "198.51.100.7", userAgent: "mocha" });
  const login = (email: string, password: string, ip = "") => callUnary<WireAuth>(users, "login", { email, password, ip, userAgent: "mocha" });
  const email = () => `u-${randomUUID()}@example.com`;

  before(async () => {
    // bcrypt cost 10: cheap enough for the suite, dominant enough for the timing comparison.
    mesh = await startUserMesh({ USERMESH_HASHING__BCRYPT_COST: "10" });
    users = stockClient(pkg, "usermesh.user.v1.UserService", `127.0.0.1:${mesh.user.grpcPort}`);
    sessions = stockClient(pkg, "usermesh.session.v1.SessionService", `127.0.0.1:${mesh.session.grpcPort}`);
  });

  after(async () => {
    users?.close();
    sessions?.close();
    expect(await mesh?.stop()).to.deep.equal([0, 0]);
  });

  it("registers and logs in at once, with a session the session service validates", async () => {
    const address = email();
    const res = await register(address);
    expect(res.user).to.include({ email: address, name: "Ada" });
    expect(res.user.id).to.match(/^[0-9a-f-]{36}$/);
    const validated = await callUnary<{ userId: string }>(sessions, "validateSession", { token: res.session.token });
    expect(validated.userId).to.equal(res.user.id);
  });

  it("refuses a taken email, whatever its case, with ALREADY_EXISTS", async () => {
    const address = email();
    await register(address);
    const error = await failure(register(address.toUpperCase()));
    expect(error.code).to.equal(Code.AlreadyExists);
    expect(reasonOf(error)).to.equal("EMAIL_TAKEN");
  });

  it("reports every bad field at once, and rejects a 73-byte password instead of truncating it", async () => {
    const error = await failure(register("not-an-email", "é".repeat(36) + "x", " "));
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(error).map((v) => v.field).sort()).to.deep.equal(["email", "name", "password"]);
  });

  it("lets exactly one of 20 parallel registrations of one email succeed", async () => {
    const address = email();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => register(i % 2 ? address : address.toUpperCase())));
    expect(results.filter((r) => r.status === "fulfilled")).to.have.length(1);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as grpc.ServiceError).code).to.equal(grpc.status.ALREADY_EXISTS);
    }
  });

  it("issues a new session on every login", async () => {
    const address = email();
    const registered = await register(address);
    const first = await login(address, "correct horse battery");
    const second = await login(address.toUpperCase(), "correct horse battery");
    expect(new Set([registered.session.sessionId, first.session.sessionId, second.session.sessionId]).size).to.equal(3);
  });

  it("answers an unknown email and a wrong password alike, in the same time (medians within 20 %)", async () => {
    // One account per wrong-password try keeps every try under the per-account throttle.
    const accounts = await Promise.all(Array.from({ length: 20 }, async () => (await register(email())).user.email));
    const unknownTimes: number[] = [];
    const wrongTimes: number[] = [];
    const messages = new Set<string>();
    for (const account of accounts) {
      for (const [address, times] of [[email(), unknownTimes], [account, wrongTimes]] as const) {
        const started = performance.now();
        const error = await failure(login(address, "wrong password!"));
        times.push(performance.now() - started);
        expect(error.code).to.equal(Code.Unauthenticated);
        messages.add(error.rawMessage);
      }
    }
    expect([...messages]).to.deep.equal(["invalid email or password"]);
    const [unknown, wrong] = [median(unknownTimes), median(wrongTimes)];
    expect(Math.abs(unknown - wrong) / Math.max(unknown, wrong), `medians ${unknown.toFixed(1)} vs ${wrong.toFixed(1)} ms`).to.be.below(0.2);
  });

  it("throttles an account after five failed logins, with a retry-after", async () => {
    const address = email();
    await register(address);
    for (let i = 0; i < 5; i++) expect((await failure(login(address, "wrong password!"))).code).to.equal(Code.Unauthenticated);
    const blocked = await failure(login(address, "correct horse battery"));
    expect(blocked.code).to.equal(Code.ResourceExhausted);
    expect(retryDelayMsOf(blocked)).to.be.greaterThan(0);
  });

  it("logs out: the token no longer validates", async () => {
    const { session } = await register(email());
    await callUnary(users, "logout", { token: session.token });
    expect((await failure(callUnary(sessions, "validateSession", { token: session.token }))).code).to.equal(Code.Unauthenticated);
  });

  it("updates the name and reads it back", async () => {
    const { user } = await register(email());
    const updated = await callUnary<{ user: WireUser }>(users, "updateProfile", { userId: user.id, name: "Grace" });
    expect(updated.user.name).to.equal("Grace");
    expect((await callUnary<{ user: WireUser }>(users, "getProfile", { userId: user.id })).user.name).to.equal("Grace");
  });

  it("needs the current password to change the email or the password", async () => {
    const { user } = await register(email());
    const noCurrent = await failure(callUnary(users, "updateProfile", { userId: user.id, email: email() }));
    expect(noCurrent.code).to.equal(Code.FailedPrecondition);
    const wrongCurrent = await failure(callUnary(users, "updateProfile", { userId: user.id, newPassword: "a new password", currentPassword: "nope nope" }));
    expect(wrongCurrent.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(wrongCurrent)[0]?.field).to.equal("currentPassword");
  });

  it("ends every other session when the password changes, and the new password logs in", async () => {
    const address = email();
    const current = await register(address);
    const other = await login(address, "correct horse battery");
    await callUnary(users, "updateProfile", {
      userId: current.user.id,
      newPassword: "a brand new password",
      currentPassword: "correct horse battery",
      sessionId: current.session.sessionId,
    });
    await callUnary(sessions, "validateSession", { token: current.session.token });
    expect((await failure(callUnary(sessions, "validateSession", { token: other.session.token }))).code).to.equal(Code.Unauthenticated);
    expect((await failure(login(address, "correct horse battery"))).code).to.equal(Code.Unauthenticated);
    await login(address, "a brand new password");
  });

  it("answers NOT_FOUND for a profile that does not exist", async () => {
    expect((await failure(callUnary(users, "getProfile", { userId: randomUUID() }))).code).to.equal(Code.NotFound);
  });

  it("deletes an account only with its password, then its sessions and profile are gone", async () => {
    const address = email();
    const { user, session } = await register(address);
    const wrong = await failure(callUnary(users, "deleteAccount", { userId: user.id, password: "wrong password!", sessionToken: session.token }));
    expect(wrong.code).to.equal(Code.Unauthenticated);
    await callUnary(users, "getProfile", { userId: user.id });

    await callUnary(users, "deleteAccount", { userId: user.id, password: "correct horse battery", sessionToken: session.token });
    expect((await failure(callUnary(users, "getProfile", { userId: user.id }))).code).to.equal(Code.NotFound);
    expect((await failure(callUnary(sessions, "validateSession", { token: session.token }))).code).to.equal(Code.Unauthenticated);
    expect((await failure(login(address, "correct horse battery"))).code).to.equal(Code.Unauthenticated);
  });
});

describe("UserService with its Redis cache down", function () {
  this.timeout(60_000);
  let mesh: UserMesh;
  let users: grpc.Client;

  before(async () => {
    mesh = await startUserMesh({ USERMESH_REDIS__URL: "redis://127.0.0.1:1" });
    users = stockClient(pkg, "usermesh.user.v1.UserService", `127.0.0.1:${mesh.user.grpcPort}`);
  });

  after(async () => {
    users?.close();
    expect(await mesh?.stop()).to.deep.equal([0, 0]);
  });

  it("still registers, logs in and reads profiles from PostgreSQL", async () => {
    const address = `u-${randomUUID()}@example.com`;
    const registered = await callUnary<WireAuth>(users, "register", { email: address, password: "correct horse battery", name: "Ada" });
    await callUnary(users, "login", { email: address, password: "correct horse battery" });
    const profile = await callUnary<{ user: WireUser }>(users, "getProfile", { userId: registered.user.id });
    expect(profile.user.email).to.equal(address);
  });
});
