import { expect } from "chai";
import { startHarness, type Harness } from "./route-harness.js";

interface SignedIn {
  user: { id: string; email: string; name: string };
  session: { id: string; token: string; expiresAt: string };
}

function sessionCookie(headers: Headers): string {
  const cookies = headers.getSetCookie().filter((c) => c.startsWith("session="));
  expect(cookies, "one session cookie").to.have.length(1);
  return cookies[0];
}

describe("auth routes", () => {
  let harness: Harness;
  before(async () => (harness = await startHarness()));
  after(() => harness.close());

  it("registers, returns the token once and sets it as an HttpOnly, SameSite=Lax session cookie", async () => {
    const res = await harness.call("POST", "/auth/register", {
      json: { email: "ada@example.com", password: "correct horse", name: "Ada" },
      headers: { "user-agent": "route-test/1.0" },
    });
    expect(res.status).to.equal(201);
    const body = res.json<SignedIn>();
    expect(body.user).to.include({ email: "ada@example.com", name: "Ada" });
    expect(body.session.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(res.headers.get("cache-control")).to.equal("no-store");

    const cookie = sessionCookie(res.headers);
    expect(cookie.split(";")[0]).to.equal(`session=${body.session.token}`);
    expect(cookie).to.match(/; HttpOnly/).and.match(/; SameSite=Lax/).and.match(/; Path=\//);
    expect(cookie).not.to.match(/; Secure/);
    const expires = /; Expires=([^;]+)/.exec(cookie)?.[1];
    expect(new Date(expires ?? "").getTime()).to.equal(Math.floor(new Date(body.session.expiresAt).getTime() / 1000) * 1000);

    const stored = harness.mesh.state.sessions.get(body.session.id);
    expect(stored).to.include({ userId: body.user.id, userAgent: "route-test/1.0" });
    expect(stored?.ip).to.match(/127\.0\.0\.1/);
  });

  it("logs in with 200 and the same shape, with a new session cookie", async () => {
    harness.mesh.addUser({ email: "bob@example.com", name: "Bob", password: "hunter2hunter2" });
    const res = await harness.call("POST", "/auth/login", { json: { email: "BOB@example.com", password: "hunter2hunter2" } });
    expect(res.status).to.equal(200);
    const body = res.json<SignedIn>();
    expect(body.user.name).to.equal("Bob");
    expect(sessionCookie(res.headers).split(";")[0]).to.equal(`session=${body.session.token}`);
  });

  it("answers 401 for a wrong password without setting a cookie", async () => {
    harness.mesh.addUser({ email: "eve@example.com", name: "Eve", password: "the real one" });
    const res = await harness.call("POST", "/auth/login", { json: { email: "eve@example.com", password: "a guess!!" } });
    expect(res.status).to.equal(401);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(res.headers.getSetCookie()).to.deep.equal([]);
  });

  it("answers 409 when the email is taken", async () => {
    harness.mesh.addUser({ email: "taken@example.com", name: "First" });
    const res = await harness.call("POST", "/auth/register", { json: { email: "Taken@example.com", password: "long enough", name: "Second" } });
    expect(res.status).to.equal(409);
  });

  it("lists every missing or mistyped field in errors[] before calling the user service", async () => {
    const before = harness.mesh.calls.length;
    const res = await harness.call("POST", "/auth/register", { json: { email: 42, name: "No password" } });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: unknown[] }>().errors).to.have.deep.members([
      { field: "email", message: "must be a string" },
      { field: "password", message: "is required" },
    ]);
    expect(harness.mesh.calls.length).to.equal(before);
  });

  it("passes the user service's field violations on as errors[]", async () => {
    const res = await harness.call("POST", "/auth/register", { json: { email: "not-an-email", password: "short", name: "X" } });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).to.have.members(["email", "password"]);
  });

  it("refuses a body that is a JSON array", async () => {
    const res = await harness.call("POST", "/auth/login", { json: [1, 2] });
    expect(res.status).to.equal(400);
  });
});

describe("auth routes with secure cookies", () => {
  let harness: Harness;
  before(async () => (harness = await startHarness({ secureCookie: true })));
  after(() => harness.close());

  it("adds Secure to the session cookie when configured", async () => {
    const res = await harness.call("POST", "/auth/register", { json: { email: "sec@example.com", password: "correct horse", name: "Sec" } });
    expect(res.status).to.equal(201);
    expect(sessionCookie(res.headers)).to.match(/; Secure/).and.match(/; HttpOnly/);
  });
});
