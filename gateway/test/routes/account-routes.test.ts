import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { fakePng } from "./fake-services.js";
import { startHarness, type Harness } from "./route-harness.js";

interface Profile {
  user: Record<string, unknown>;
  photos: { id: string; sizeBytes: string }[];
}

describe("account routes", () => {
  let harness: Harness;
  beforeEach(async () => (harness = await startHarness()));
  afterEach(() => harness.close());

  it("logs out: ends the session by its token and clears the cookie", async () => {
    const user = harness.mesh.addUser({ email: "out@example.com", name: "Out" });
    const session = harness.mesh.addSession(user.id);
    const res = await harness.call("DELETE", "/users/logout", { as: session });
    expect(res.status).to.equal(204);
    expect(res.body.byteLength).to.equal(0);
    const cookie = res.headers.getSetCookie()[0];
    expect(cookie).to.match(/^session=;/).and.match(/Expires=Thu, 01 Jan 1970 00:00:00 GMT/).and.match(/; HttpOnly/).and.match(/; Path=\//);
    expect(harness.mesh.state.sessions.has(session.sessionId)).to.equal(false);
    expect(harness.mesh.calls).to.include("UserService.logout");
  });

  it("runs the CSRF check on unsafe account routes", async () => {
    const user = harness.mesh.addUser({ email: "csrf@example.com", name: "C" });
    const session = harness.mesh.addSession(user.id);
    const res = await harness.call("DELETE", "/users/logout", { as: session, headers: { "sec-fetch-site": "cross-site" } });
    expect(res.status).to.equal(403);
    expect(harness.mesh.state.sessions.has(session.sessionId)).to.equal(true);
  });

  it("deletes the account with its password, then clears the cookie", async () => {
    const user = harness.mesh.addUser({ email: "gone@example.com", name: "Gone", password: "pass word 1" });
    const session = harness.mesh.addSession(user.id);
    const wrong = await harness.call("DELETE", "/users/delete", { as: session, json: { password: "nope nope" } });
    expect(wrong.status).to.equal(401);
    const missing = await harness.call("DELETE", "/users/delete", { as: session, json: {} });
    expect(missing.status).to.equal(400);
    expect(missing.json<{ errors: unknown[] }>().errors).to.deep.equal([{ field: "password", message: "is required" }]);

    const res = await harness.call("DELETE", "/users/delete", { as: session, json: { password: "pass word 1" } });
    expect(res.status).to.equal(204);
    expect(res.headers.getSetCookie()[0]).to.match(/^session=;/);
    expect(harness.mesh.state.users.has(user.id)).to.equal(false);
  });

  it("updates the profile, passing the new password and the session to keep", async () => {
    const user = harness.mesh.addUser({ email: "upd@example.com", name: "Old", password: "old password" });
    const session = harness.mesh.addSession(user.id);
    const other = harness.mesh.addSession(user.id);
    const res = await harness.call("PATCH", "/me/update", {
      as: session,
      json: { name: "New", password: "new password", currentPassword: "old password" },
    });
    expect(res.status).to.equal(200);
    expect(res.json<Profile>().user).to.include({ id: user.id, name: "New", email: "upd@example.com" });
    expect(harness.mesh.calls.find((c) => c.startsWith("UserService.updateProfile"))).to.equal(
      `UserService.updateProfile ${JSON.stringify({ name: "New", newPassword: "new password", currentPassword: "old password", sessionId: session.sessionId })}`,
    );
    expect(harness.mesh.state.sessions.has(session.sessionId)).to.equal(true);
    expect(harness.mesh.state.sessions.has(other.sessionId)).to.equal(false);
  });

  it("answers 422 for an email change without the current password", async () => {
    const user = harness.mesh.addUser({ email: "pre@example.com", name: "Pre" });
    const res = await harness.call("PATCH", "/me/update", { as: harness.mesh.addSession(user.id), json: { email: "new@example.com" } });
    expect(res.status).to.equal(422);
  });

  it("combines the profile (with email) and the first page of photos, fetched in parallel", async () => {
    const user = harness.mesh.addUser({ email: "me@example.com", name: "Me" });
    const photo = harness.mesh.addPhoto(user.id, fakePng(1000));
    harness.mesh.requireParallelProfileReads = true;
    const res = await harness.call("GET", "/me", { as: harness.mesh.addSession(user.id) });
    expect(res.status).to.equal(200);
    const body = res.json<Profile>();
    expect(body.user).to.include({ id: user.id, email: "me@example.com", name: "Me" });
    expect(body.photos.map((p) => p.id)).to.deep.equal([photo.photo.id]);
    expect(body.photos[0].sizeBytes).to.equal("1000");
  });

  it("shows another user's public profile without their email", async () => {
    const viewer = harness.mesh.addUser({ email: "viewer@example.com", name: "Viewer" });
    const owner = harness.mesh.addUser({ email: "secret@example.com", name: "Owner" });
    harness.mesh.addPhoto(owner.id, fakePng(64));
    harness.mesh.requireParallelProfileReads = true;
    const res = await harness.call("GET", `/users/${owner.id.toUpperCase()}`, { as: harness.mesh.addSession(viewer.id) });
    expect(res.status).to.equal(200);
    const body = res.json<Profile>();
    expect(Object.keys(body.user).sort()).to.deep.equal(["createdAt", "id", "name"]);
    expect(body.user).to.include({ id: owner.id, name: "Owner" });
    expect(res.body.toString()).not.to.include("secret@example.com");
    expect(body.photos).to.have.length(1);
  });

  it("answers 404 for a user that does not exist", async () => {
    const viewer = harness.mesh.addUser({ email: "v@example.com", name: "V" });
    const res = await harness.call("GET", `/users/${randomUUID()}`, { as: harness.mesh.addSession(viewer.id) });
    expect(res.status).to.equal(404);
    expect(res.json()).to.include({ status: 404 });
  });

  it("answers 400 with errors[] for an id that is not a UUID, without calling a service", async () => {
    const viewer = harness.mesh.addUser({ email: "v2@example.com", name: "V" });
    const res = await harness.call("GET", "/users/not-a-uuid", { as: harness.mesh.addSession(viewer.id) });
    expect(res.status).to.equal(400);
    expect(res.json<{ errors: unknown[] }>().errors).to.deep.equal([{ field: "id", message: "must be a UUID" }]);
    expect(harness.mesh.calls).to.deep.equal([]);
  });

  it("answers 401 without a session", async () => {
    const res = await harness.call("GET", "/me");
    expect(res.status).to.equal(401);
  });
});
