// The BlobStore contract, as one mocha suite every implementation runs (kratos' store contract suites): what
// the photo domain relies on, whatever holds the bytes.
import { expect } from "chai";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "../../../../internal/errors/errors.js";
import type { BlobStore } from "../../photos.js";

export interface BlobStoreUnderTest {
  readonly store: BlobStore;
  /** Releases what makeStore set up (connections, servers, directories). */
  cleanup(): Promise<void>;
}

export interface SpooledFile {
  readonly path: string;
  readonly sizeBytes: number;
  readonly contentType: string;
}

const mebibyte = 1024 * 1024;
const largeBlobBytes = 20 * mebibyte;

/** Defines the contract's tests for the store makeStore returns; a fresh store (and cleanup) per test. */
export function describeBlobStoreContract(name: string, makeStore: () => Promise<BlobStoreUnderTest>): void {
  describe(`${name}: the BlobStore contract`, () => {
    let subject: BlobStoreUnderTest;
    let store: BlobStore;
    let scratch: string;

    beforeEach(async () => {
      scratch = await mkdtemp(join(tmpdir(), "blob-contract-"));
      subject = await makeStore();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
      await rm(scratch, { recursive: true, force: true });
    });

    /** Writes bytes to a temp file as the upload pipeline spools them. */
    async function spool(bytes: Uint8Array): Promise<SpooledFile> {
      const path = join(scratch, randomUUID());
      await writeFile(path, bytes);
      return { path, sizeBytes: bytes.length, contentType: "image/jpeg" };
    }

    it("returns the bytes it was given", async () => {
      const key = newKey();
      const bytes = randomBytes(300_000);

      await store.put(key, await spool(bytes));

      expect((await readAll(await store.get(key))).equals(bytes)).to.equal(true);
    });

    it("keeps the blob after the caller discards its spooled file", async () => {
      const key = newKey();
      const bytes = randomBytes(10_000);
      const file = await spool(bytes);

      await store.put(key, file);
      await rm(file.path);

      expect((await readAll(await store.get(key))).equals(bytes)).to.equal(true);
    });

    it("replaces the blob when the same key is put again", async () => {
      const key = newKey();
      await store.put(key, await spool(randomBytes(50_000)));
      const replacement = randomBytes(20_000);

      await store.put(key, await spool(replacement));

      expect((await readAll(await store.get(key))).equals(replacement)).to.equal(true);
    });

    it("stores an empty blob", async () => {
      const key = newKey();

      await store.put(key, await spool(new Uint8Array(0)));

      expect(await readAll(await store.get(key))).to.have.length(0);
    });

    it("answers NOT_FOUND for a key never put", async () => {
      expect(await codeOf(store.get(newKey()))).to.equal(Code.NotFound);
    });

    it("answers NOT_FOUND for a photo id put for another user only", async () => {
      const photoId = randomUUID();
      await store.put(`${randomUUID()}/${photoId}`, await spool(randomBytes(100)));

      expect(await codeOf(store.get(`${randomUUID()}/${photoId}`))).to.equal(Code.NotFound);
    });

    it("answers NOT_FOUND after a delete", async () => {
      const key = newKey();
      await store.put(key, await spool(randomBytes(1000)));

      await store.delete(key);

      expect(await codeOf(store.get(key))).to.equal(Code.NotFound);
    });

    it("succeeds deleting a key that holds nothing, and deleting twice", async () => {
      const key = newKey();
      await store.delete(key);
      await store.put(key, await spool(randomBytes(1000)));

      await store.delete(key);
      await store.delete(key);

      expect(await codeOf(store.get(key))).to.equal(Code.NotFound);
    });

    it("deletes one blob of a user and keeps the others", async () => {
      const userId = randomUUID();
      const [gone, kept] = [`${userId}/${randomUUID()}`, `${userId}/${randomUUID()}`];
      const keptBytes = randomBytes(2000);
      await store.put(gone, await spool(randomBytes(1000)));
      await store.put(kept, await spool(keptBytes));

      await store.delete(gone);

      expect(await codeOf(store.get(gone))).to.equal(Code.NotFound);
      expect((await readAll(await store.get(kept))).equals(keptBytes)).to.equal(true);
    });

    it("keeps the same photo id of two users apart", async () => {
      const photoId = randomUUID();
      const [first, second] = [`${randomUUID()}/${photoId}`, `${randomUUID()}/${photoId}`];
      const [firstBytes, secondBytes] = [randomBytes(3000), randomBytes(4000)];

      await store.put(first, await spool(firstBytes));
      await store.put(second, await spool(secondBytes));
      await store.delete(first);

      expect(await codeOf(store.get(first))).to.equal(Code.NotFound);
      expect((await readAll(await store.get(second))).equals(secondBytes)).to.equal(true);
    });

    it("stores several blobs of a new user at once", async () => {
      const userId = randomUUID();
      const blobs = await Promise.all(
        Array.from({ length: 5 }, async () => ({ key: `${userId}/${randomUUID()}`, bytes: randomBytes(20_000) })),
      );

      await Promise.all(blobs.map(async ({ key, bytes }) => store.put(key, await spool(bytes))));

      for (const { key, bytes } of blobs) {
        expect((await readAll(await store.get(key))).equals(bytes), key).to.equal(true);
      }
    });

    it("streams a 20 MiB blob in and out in chunks, with the same SHA-256", async function () {
      this.timeout(120_000);
      const key = newKey();
      const { file, sha256 } = await spoolRandom(join(scratch, "large.bin"), largeBlobBytes);

      await store.put(key, file);
      const hash = createHash("sha256");
      let chunks = 0;
      let largestChunk = 0;
      let total = 0;
      for await (const chunk of await store.get(key)) {
        hash.update(chunk);
        chunks++;
        total += chunk.length;
        largestChunk = Math.max(largestChunk, chunk.length);
      }

      expect(total).to.equal(largeBlobBytes);
      expect(hash.digest("hex")).to.equal(sha256);
      expect(chunks, "chunks").to.be.at.least(20);
      expect(largestChunk, "largest chunk").to.be.at.most(2 * mebibyte);
    });

    it("refuses malformed keys with INVALID_ARGUMENT on every operation", async () => {
      const [user, photo] = [randomUUID(), randomUUID()];
      const malformed = [
        "",
        "..",
        user,
        `${user}/`,
        `/${photo}`,
        `${user}/..`,
        `../${photo}`,
        `${user}/../${photo}`,
        `/${user}/${photo}`,
        `${user}/${photo}/`,
        `${user}/${photo}/${randomUUID()}`,
        `${user}\\${photo}`,
        `${user}//${photo}`,
        ` ${user}/${photo}`,
        `${user}/${photo}\n`,
        `${user}/not-a-uuid`,
      ];
      const file = await spool(randomBytes(10));

      for (const key of malformed) {
        expect(await codeOf(store.put(key, file)), `put ${JSON.stringify(key)}`).to.equal(Code.InvalidArgument);
        expect(await codeOf(store.get(key)), `get ${JSON.stringify(key)}`).to.equal(Code.InvalidArgument);
        expect(await codeOf(store.delete(key)), `delete ${JSON.stringify(key)}`).to.equal(Code.InvalidArgument);
      }
    });
  });
}

export function newKey(): string {
  return `${randomUUID()}/${randomUUID()}`;
}

/** Writes size random bytes to path, 1 MiB at a time, and returns the file and its SHA-256. */
export async function spoolRandom(path: string, size: number): Promise<{ file: SpooledFile; sha256: string }> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += mebibyte) {
    const chunk = randomBytes(Math.min(mebibyte, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return { file: { path, sizeBytes: size, contentType: "application/octet-stream" }, sha256: hash.digest("hex") };
}

export async function readAll(bytes: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of bytes) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The ConnectError code the promise rejects with; fails the test when it resolves or throws anything else. */
export async function codeOf(promise: Promise<unknown>): Promise<Code> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ConnectError);
    return (error as ConnectError).code;
  }
  expect.fail("expected a ConnectError");
}
