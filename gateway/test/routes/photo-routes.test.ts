import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { fakePng, type StoredPhoto, type StoredSession } from "./fake-services.js";
import { startHarness, type Harness } from "./route-harness.js";

interface PhotoView {
  id: string;
  userId: string;
  sizeBytes: string;
  sha256: string;
}

describe("photo routes", () => {
  let harness: Harness;
  let owner: StoredSession;
  let viewer: StoredSession;
  let stored: StoredPhoto;
  beforeEach(async () => {
    harness = await startHarness();
    owner = harness.mesh.addSession(harness.mesh.addUser({ email: "owner@example.com", name: "Owner" }).id);
    viewer = harness.mesh.addSession(harness.mesh.addUser({ email: "viewer@example.com", name: "Viewer" }).id);
    stored = harness.mesh.addPhoto(owner.userId, fakePng(150 * 1024));
  });
  afterEach(() => harness.close());

  describe("content", () => {
    it("streams the bytes with type, length, ETag, caching and nosniff headers", async () => {
      const res = await harness.call("GET", `/me/photos/${stored.photo.id}/content`, { as: owner });
      expect(res.status).to.equal(200);
      expect(res.body.equals(Buffer.from(stored.bytes))).to.equal(true);
      expect(res.headers.get("content-type")).to.equal("image/png");
      expect(res.headers.get("content-length")).to.equal(String(stored.bytes.byteLength));
      expect(res.headers.get("etag")).to.equal(`"${stored.photo.sha256}"`);
      expect(res.headers.get("cache-control")).to.equal("private, max-age=3600");
      expect(res.headers.get("x-content-type-options")).to.equal("nosniff");
      expect(res.headers.get("content-disposition")).to.equal("inline");
    });

    it("serves another user's photo to any signed-in user through /users/{id}/photos/{photoId}/content", async () => {
      const res = await harness.call("GET", `/users/${owner.userId}/photos/${stored.photo.id}/content`, { as: viewer });
      expect(res.status).to.equal(200);
      expect(res.body.equals(Buffer.from(stored.bytes))).to.equal(true);
    });

    it("answers 304 with no body when If-None-Match names the ETag, without opening the content stream", async () => {
      for (const ifNoneMatch of [`"${stored.photo.sha256}"`, `"other", W/"${stored.photo.sha256}"`, "*"]) {
        harness.mesh.calls.length = 0;
        const res = await harness.call("GET", `/me/photos/${stored.photo.id}/content`, { as: owner, headers: { "if-none-match": ifNoneMatch } });
        expect(res.status, ifNoneMatch).to.equal(304);
        expect(res.body.byteLength).to.equal(0);
        expect(res.headers.get("etag")).to.equal(`"${stored.photo.sha256}"`);
        expect(res.headers.get("cache-control")).to.equal("private, max-age=3600");
        expect(harness.mesh.calls).to.deep.equal(["PhotoService.getPhoto"]);
      }
    });

    it("streams the bytes when If-None-Match names another version", async () => {
      const res = await harness.call("GET", `/me/photos/${stored.photo.id}/content`, { as: owner, headers: { "if-none-match": `"${"0".repeat(64)}"` } });
      expect(res.status).to.equal(200);
      expect(res.body.equals(Buffer.from(stored.bytes))).to.equal(true);
    });

    it("answers HEAD with the headers only, from the metadata", async () => {
      harness.mesh.calls.length = 0;
      const res = await harness.call("HEAD", `/me/photos/${stored.photo.id}/content`, { as: owner });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-length")).to.equal(String(stored.bytes.byteLength));
      expect(harness.mesh.calls).to.deep.equal(["PhotoService.getPhoto"]);
    });

    it("never serves a type outside the four image types as itself", async () => {
      const html = harness.mesh.addPhoto(owner.userId, Buffer.from("<script>alert(1)</script>"), "text/html");
      const res = await harness.call("GET", `/me/photos/${html.photo.id}/content`, { as: owner });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/octet-stream");
      expect(res.headers.get("x-content-type-options")).to.equal("nosniff");
    });

    it("cancels the content stream when the client goes away", async () => {
      const big = harness.mesh.addPhoto(owner.userId, fakePng(4 * 1024 * 1024));
      harness.mesh.contentChunkDelayMs = 30;
      const abort = new AbortController();
      const response = await fetch(`${harness.baseUrl}/me/photos/${big.photo.id}/content`, { headers: harness.authHeaders(owner), signal: abort.signal });
      const reader = response.body?.getReader();
      await reader?.read();
      abort.abort();
      const outcome = await Promise.race([harness.mesh.contentStreams[0].ended, new Promise((r) => setTimeout(() => r("still streaming"), 3000))]);
      expect(outcome).to.equal("aborted");
    });

    it("answers 404 for a photo the named user does not hold", async () => {
      const res = await harness.call("GET", `/me/photos/${stored.photo.id}/content`, { as: viewer });
      expect(res.status).to.equal(404);
    });
  });

  describe("metadata", () => {
    it("lists the caller's photos a page at a time", async () => {
      harness.mesh.addPhoto(owner.userId, fakePng(10));
      harness.mesh.addPhoto(owner.userId, fakePng(20));
      const first = await harness.call("GET", "/me/photos?pageSize=2", { as: owner });
      expect(first.status).to.equal(200);
      const page = first.json<{ photos: PhotoView[]; nextPageToken: string }>();
      expect(page.photos).to.have.length(2);
      expect(page.nextPageToken).not.to.equal("");
      const second = await harness.call("GET", `/me/photos?pageSize=2&pageToken=${page.nextPageToken}`, { as: owner });
      const last = second.json<{ photos: PhotoView[]; nextPageToken: string }>();
      expect(last.photos.map((p) => p.id)).to.deep.equal([stored.photo.id]);
      expect(last.nextPageToken).to.equal("");
    });

    it("answers 400 for a page size out of range", async () => {
      for (const query of ["pageSize=0", "pageSize=101", "pageSize=ten", "pageToken=a&pageToken=b"]) {
        const res = await harness.call("GET", `/me/photos?${query}`, { as: owner });
        expect(res.status, query).to.equal(400);
        expect(res.json<{ errors: unknown[] }>().errors, query).to.have.length(1);
      }
    });

    it("reads one photo's metadata, sizeBytes as a string", async () => {
      const res = await harness.call("GET", `/me/photos/${stored.photo.id}`, { as: owner });
      expect(res.status).to.equal(200);
      expect(res.json<{ photo: PhotoView }>().photo).to.include({ id: stored.photo.id, userId: owner.userId, sizeBytes: String(150 * 1024), sha256: stored.photo.sha256 });
    });

    it("reads another user's photo by owner and id, but not through /me", async () => {
      const ok = await harness.call("GET", `/users/${owner.userId}/photos/${stored.photo.id}`, { as: viewer });
      expect(ok.status).to.equal(200);
      const mine = await harness.call("GET", `/me/photos/${stored.photo.id}`, { as: viewer });
      expect(mine.status).to.equal(404);
      const wrongOwner = await harness.call("GET", `/users/${viewer.userId}/photos/${stored.photo.id}`, { as: viewer });
      expect(wrongOwner.status).to.equal(404);
    });

    it("answers 400 naming each malformed id", async () => {
      const res = await harness.call("GET", "/users/nope/photos/also-nope", { as: viewer });
      expect(res.status).to.equal(400);
      expect(res.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).to.deep.equal(["id", "photoId"]);
    });
  });

  describe("delete", () => {
    it("deletes the caller's photo with 204", async () => {
      const res = await harness.call("DELETE", `/me/photos/${stored.photo.id}`, { as: owner });
      expect(res.status).to.equal(204);
      expect(res.body.byteLength).to.equal(0);
      expect(harness.mesh.state.photos.has(stored.photo.id)).to.equal(false);
    });

    it("answers 404 for someone else's photo and keeps it", async () => {
      const res = await harness.call("DELETE", `/me/photos/${stored.photo.id}`, { as: viewer });
      expect(res.status).to.equal(404);
      expect(harness.mesh.state.photos.has(stored.photo.id)).to.equal(true);
      const unknown = await harness.call("DELETE", `/me/photos/${randomUUID()}`, { as: owner });
      expect(unknown.status).to.equal(404);
    });
  });
});
