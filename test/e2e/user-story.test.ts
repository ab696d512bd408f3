import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { startMesh, type Mesh } from "../support/mesh.js";
import { jpeg, png } from "../../services/photo/upload/test/test-images.js";
import { createApi, type Api } from "./api-client.js";

// The full story of a user, through the REST gateway of a mesh of real processes.

interface Auth { user: { id: string; email?: string; name: string }; session: { token: string } }
interface Photo { id: string; sha256: string; contentType: string; sizeBytes: string }

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("e2e: a user's whole story through the gateway", function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let api: Api;
  const email = `ada-${randomUUID()}@example.com`;
  const newEmail = `ada.lovelace-${randomUUID()}@example.com`;
  const password = "correct horse battery";
  let ada: Auth;
  let bob: Auth;
  const uploaded: Photo[] = [];
  const pngBytes = png(640, 480);
  const photoJpeg = jpeg(30, 20);

  before(async () => {
    mesh = await startMesh();
    api = createApi(mesh.baseUrl);
  });

  after(async () => {
    const codes = await mesh?.stop();
    expect(codes).to.deep.equal({ gateway: 0, photo: 0, user: 0, session: 0 });
  });

  it("registers: 201 with the user, a session token and an HttpOnly cookie", async () => {
    const res = await api<Auth>("POST", "/auth/register", { json: { email, password, name: "Ada" } });
    expect(res.status).to.equal(201);
    expect(res.json.user).to.include({ email, name: "Ada" });
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).to.match(/^session=[A-Za-z0-9_-]{43};/).and.match(/HttpOnly/i).and.match(/SameSite=Lax/i).and.match(/Path=\//);
    ada = res.json;
  });

  it("reads /me with the bearer token and with the cookie alike", async () => {
    const byToken = await api<{ user: { email: string }; photos: unknown[] }>("GET", "/me", { token: ada.session.token });
    expect(byToken.status).to.equal(200);
    expect(byToken.json.user.email).to.equal(email);
    expect(byToken.json.photos).to.deep.equal([]);
    const byCookie = await api("GET", "/me", { cookie: `session=${ada.session.token}` });
    expect(byCookie.status).to.equal(200);
  });

  it("updates the name, then the email with the current password", async () => {
    const named = await api<{ user: { name: string } }>("PATCH", "/me/update", { token: ada.session.token, json: { name: "Ada Lovelace" } });
    expect(named.status).to.equal(200);
    expect(named.json.user.name).to.equal("Ada Lovelace");
    const moved = await api<{ user: { email: string } }>("PATCH", "/me/update", { token: ada.session.token, json: { email: newEmail, currentPassword: password } });
    expect(moved.status).to.equal(200);
    expect(moved.json.user.email).to.equal(newEmail);
  });

  it("uploads three photos: multipart, raw PNG and raw JPEG", async () => {
    const form = new FormData();
    form.append("photo", new Blob([pngBytes], { type: "image/png" }), "first.png");
    const first = await api<{ photo: Photo }>("POST", "/me/photos", { token: ada.session.token, body: form });
    expect(first.status).to.equal(201);
    const second = await api<{ photo: Photo }>("POST", "/me/photos", { token: ada.session.token, body: png(100, 50), headers: { "content-type": "image/png" } });
    expect(second.status).to.equal(201);
    const third = await api<{ photo: Photo }>("POST", "/me/photos", { token: ada.session.token, body: photoJpeg.bytes, headers: { "content-type": "image/jpeg" } });
    expect(third.status, JSON.stringify(third.json)).to.equal(201);
    expect(third.json.photo.contentType).to.equal("image/jpeg");
    uploaded.push(first.json.photo, second.json.photo, third.json.photo);
  });

  it("strips EXIF/GPS metadata from a stored JPEG", async () => {
    const res = await api("GET", `/me/photos/${uploaded[2].id}/content`, { token: ada.session.token });
    expect(res.bytes.equals(photoJpeg.stripped)).to.equal(true);
    expect(res.bytes.includes(Buffer.from("Exif"))).to.equal(false);
  });

  it("lists the photos newest first", async () => {
    const res = await api<{ photos: Photo[] }>("GET", "/me/photos", { token: ada.session.token });
    expect(res.status).to.equal(200);
    expect(res.json.photos.map((p) => p.id)).to.deep.equal(uploaded.map((p) => p.id).reverse());
  });

  it("serves the bytes unchanged, with an ETag, and 304 on revalidation", async () => {
    const path = `/me/photos/${uploaded[0].id}/content`;
    const res = await api("GET", path, { token: ada.session.token });
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("image/png");
    expect(res.headers.get("x-content-type-options")).to.equal("nosniff");
    expect(res.bytes.equals(pngBytes)).to.equal(true);
    const etag = res.headers.get("etag")!;
    expect(etag).to.equal(`"${uploaded[0].sha256}"`);
    const again = await api("GET", path, { token: ada.session.token, headers: { "if-none-match": etag } });
    expect(again.status).to.equal(304);
    expect(again.bytes.length).to.equal(0);
  });

  it("shows Ada's public profile to Bob without her email, and Bob cannot delete her photo", async () => {
    bob = (await api<Auth>("POST", "/auth/register", { json: { email: `bob-${randomUUID()}@example.com`, password, name: "Bob" } })).json;
    const profile = await api<{ user: Record<string, unknown>; photos: Photo[] }>("GET", `/users/${ada.user.id}`, { token: bob.session.token });
    expect(profile.status).to.equal(200);
    expect(profile.json.user).to.not.have.property("email");
    expect(JSON.stringify(profile.json)).to.not.include(newEmail);
    expect(profile.json.photos).to.have.length(3);
    const viewed = await api("GET", `/users/${ada.user.id}/photos/${uploaded[1].id}/content`, { token: bob.session.token });
    expect(viewed.status).to.equal(200);
    const denied = await api("DELETE", `/me/photos/${uploaded[1].id}`, { token: bob.session.token });
    expect(denied.status).to.equal(404);
    const stillThere = await api("GET", `/me/photos/${uploaded[1].id}`, { token: ada.session.token });
    expect(stillThere.status).to.equal(200);
  });

  it("changes the password: other sessions end, the current one lives", async () => {
    const other = (await api<Auth>("POST", "/auth/login", { json: { email: newEmail, password } })).json;
    const sessions = await api<{ sessions: { id: string; current: boolean }[] }>("GET", "/me/sessions", { token: ada.session.token });
    expect(sessions.json.sessions.filter((s) => s.current)).to.have.length(1);
    const changed = await api("PATCH", "/me/update", { token: ada.session.token, json: { password: "a new battery staple", currentPassword: password } });
    expect(changed.status).to.equal(200);
    expect((await api("GET", "/me", { token: other.session.token })).status).to.equal(401);
    expect((await api("GET", "/me", { token: ada.session.token })).status).to.equal(200);
  });

  it("logs out: the token is dead and the cookie cleared", async () => {
    const res = await api("DELETE", "/users/logout", { token: ada.session.token });
    expect(res.status).to.equal(204);
    expect(res.headers.get("set-cookie")).to.match(/^session=;/);
    expect((await api("GET", "/me", { token: ada.session.token })).status).to.equal(401);
  });

  it("logs in again and deletes the account: photos, blobs and sessions go, the public profile is 404", async () => {
    const login = await api<Auth>("POST", "/auth/login", { json: { email: newEmail, password: "a new battery staple" } });
    expect(login.status).to.equal(200);
    const token = login.json.session.token;
    const deleted = await api("DELETE", "/users/delete", { token, json: { password: "a new battery staple" } });
    expect(deleted.status).to.equal(204);
    expect((await api("GET", "/me", { token })).status).to.equal(401);
    expect((await api("GET", `/users/${ada.user.id}`, { token: bob.session.token })).status).to.equal(404);
    await eventually(async () => (await readdir(join(mesh.storageDir, ada.user.id)).catch(() => [])).length === 0, "the blobs to be deleted");
    const photo = await api("GET", `/users/${ada.user.id}/photos/${uploaded[0].id}`, { token: bob.session.token });
    expect(photo.status).to.equal(404);
  });
});
