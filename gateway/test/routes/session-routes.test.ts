import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { startHarness, type Harness } from "./route-harness.js";

interface SessionView {
  id: string;
  ip: string;
  userAgent: string;
  current: boolean;
}

describe("session routes", () => {
  let harness: Harness;
  beforeEach(async () => (harness = await startHarness()));
  afterEach(() => harness.close());

  it("lists the caller's sessions and marks the current one", async () => {
    const user = harness.mesh.addUser({ email: "s@example.com", name: "S" });
    const phone = harness.mesh.addSession(user.id, { ip: "10.0.0.7", userAgent: "phone" });
    const laptop = harness.mesh.addSession(user.id, { userAgent: "laptop" });
    harness.mesh.addSession(harness.mesh.addUser({ email: "x@example.com", name: "X" }).id);

    const res = await harness.call("GET", "/me/sessions", { as: laptop });
    expect(res.status).to.equal(200);
    const { sessions } = res.json<{ sessions: SessionView[] }>();
    expect(sessions.map((s) => [s.id, s.current])).to.have.deep.members([
      [phone.sessionId, false],
      [laptop.sessionId, true],
    ]);
    expect(sessions.find((s) => s.id === phone.sessionId)).to.include({ ip: "10.0.0.7", userAgent: "phone" });
    expect(res.body.toString()).not.to.include(phone.token);
  });

  it("ends one of the caller's other sessions", async () => {
    const user = harness.mesh.addUser({ email: "s2@example.com", name: "S" });
    const current = harness.mesh.addSession(user.id);
    const other = harness.mesh.addSession(user.id);
    const res = await harness.call("DELETE", `/me/sessions/${other.sessionId}`, { as: current });
    expect(res.status).to.equal(204);
    expect(res.headers.getSetCookie()).to.deep.equal([]);
    expect(harness.mesh.state.sessions.has(other.sessionId)).to.equal(false);
  });

  it("clears the cookie when the current session ends itself", async () => {
    const user = harness.mesh.addUser({ email: "s3@example.com", name: "S" });
    const current = harness.mesh.addSession(user.id);
    const res = await harness.call("DELETE", `/me/sessions/${current.sessionId}`, { as: current });
    expect(res.status).to.equal(204);
    expect(res.headers.getSetCookie()[0]).to.match(/^session=;/);
  });

  it("answers 404 for another user's session and leaves it alone", async () => {
    const me = harness.mesh.addUser({ email: "me@example.com", name: "Me" });
    const them = harness.mesh.addUser({ email: "them@example.com", name: "Them" });
    const theirs = harness.mesh.addSession(them.id);
    const res = await harness.call("DELETE", `/me/sessions/${theirs.sessionId}`, { as: harness.mesh.addSession(me.id) });
    expect(res.status).to.equal(404);
    expect(harness.mesh.state.sessions.has(theirs.sessionId)).to.equal(true);
    const unknown = await harness.call("DELETE", `/me/sessions/${randomUUID()}`, { as: harness.mesh.addSession(me.id) });
    expect(unknown.status).to.equal(404);
  });

  it("answers 400 for a session id that is not a UUID", async () => {
    const me = harness.mesh.addUser({ email: "bad@example.com", name: "B" });
    const res = await harness.call("DELETE", "/me/sessions/123", { as: harness.mesh.addSession(me.id) });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: unknown[] }>().errors).to.deep.equal([{ field: "id", message: "must be a UUID" }]);
  });

  it("ends every other session and says how many", async () => {
    const user = harness.mesh.addUser({ email: "all@example.com", name: "A" });
    const current = harness.mesh.addSession(user.id);
    harness.mesh.addSession(user.id);
    harness.mesh.addSession(user.id);
    const res = await harness.call("DELETE", "/me/sessions", { as: current });
    expect(res.status).to.equal(200);
    expect(res.json()).to.deep.equal({ ended: 2 });
    expect([...harness.mesh.state.sessions.values()].filter((s) => s.userId === user.id).map((s) => s.sessionId)).to.deep.equal([current.sessionId]);
  });
});
