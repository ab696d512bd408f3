// The local BlobStore: the contract, then what only a directory can get wrong (paths, temp files, atomicity).
import { expect } from "chai";
import { randomBytes, randomUUID } from "node:crypto";
import { link, mkdir, mkdtemp, readdir, readFile, readlink, rm, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "../../../internal/errors/errors.js";
import type { BlobStore } from "../photos.js";
import { createLocalBlobStore, localReadChunkBytes, type LocalBlobStoreOptions } from "./local-blob-store.js";
import { codeOf, describeBlobStoreContract, readAll, spoolRandom } from "./test/blob-store-contract.js";

describeBlobStoreContract("local blob store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "local-blobs-"));
  return { store: createLocalBlobStore({ dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe("local blob store", () => {
  let parent: string;
  let dir: string;
  let store: BlobStore;
  let userId: string;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), "local-blobs-"));
    dir = join(parent, "blobs");
    store = createLocalBlobStore({ dir });
    userId = randomUUID();
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  async function spool(bytes: Uint8Array, sizeBytes = bytes.length) {
    const path = join(parent, `spool-${randomUUID()}`);
    await writeFile(path, bytes);
    return { path, sizeBytes, contentType: "image/png" };
  }

  it("stores a blob at dir/<userId>/<photoId>, and nothing else", async () => {
    const photoId = randomUUID();

    await store.put(`${userId}/${photoId}`, await spool(randomBytes(100)));

    expect(await readdir(dir)).to.deep.equal([userId]);
    expect(await readdir(join(dir, userId))).to.deep.equal([photoId]);
  });

  it("refuses path traversal without touching anything outside dir", async () => {
    const outside = join(parent, "outside");
    await mkdir(outside);
    await writeFile(join(outside, randomUUID()), "secret");
    const before = await readdir(parent, { recursive: true });
    const file = await spool(randomBytes(10));
    const after = [...before, file.path.slice(parent.length + 1)].sort();

    for (const key of ["../outside/x", `../outside/${randomUUID()}`, `${userId}/../../outside`, "/etc/passwd"]) {
      expect(await codeOf(store.put(key, file)), key).to.equal(Code.InvalidArgument);
      expect(await codeOf(store.get(key)), key).to.equal(Code.InvalidArgument);
      expect(await codeOf(store.delete(key)), key).to.equal(Code.InvalidArgument);
    }

    expect((await readdir(parent, { recursive: true })).sort()).to.deep.equal(after);
  });

  it("leaves no temp file behind after a put", async () => {
    const key = `${userId}/${randomUUID()}`;

    await store.put(key, await spool(randomBytes(5000)));
    await store.put(key, await spool(randomBytes(6000)));

    expect(await readdir(join(dir, userId))).to.deep.equal([key.split("/")[1]]);
  });

  it("leaves no temp file and no blob behind after a failed put", async () => {
    const key = `${userId}/${randomUUID()}`;

    expect(await codeOf(store.put(key, await spool(randomBytes(5000), 4000)))).to.equal(Code.Internal);
    expect(await codeOf(store.put(key, { path: join(parent, "missing"), sizeBytes: 1, contentType: "image/png" }))).to.equal(
      Code.Internal,
    );

    expect(await readdir(join(dir, userId))).to.deep.equal([]);
    expect(await codeOf(store.get(key))).to.equal(Code.NotFound);
  });

  it("keeps the previous blob whole when a replacing put fails", async () => {
    const key = `${userId}/${randomUUID()}`;
    const original = randomBytes(5000);
    await store.put(key, await spool(original));

    await codeOf(store.put(key, await spool(randomBytes(7000), 1)));

    expect((await readAll(await store.get(key))).equals(original)).to.equal(true);
  });

  it("never lets a reader see part of a blob while it is replaced", async function () {
    this.timeout(30_000);
    const key = `${userId}/${randomUUID()}`;
    const [first, second] = [Buffer.alloc(4 * 1024 * 1024, 1), Buffer.alloc(4 * 1024 * 1024, 2)];
    await store.put(key, await spool(first));
    const replacement = await spool(second);

    let done = false;
    const writer = store.put(key, replacement).finally(() => (done = true));
    const seen = new Set<string>();
    while (!done) {
      const bytes = await readAll(await store.get(key));
      seen.add(bytes.equals(first) ? "first" : bytes.equals(second) ? "second" : `torn (${bytes.length} bytes)`);
    }
    await writer;

    expect([...seen].filter((s) => s.startsWith("torn"))).to.deep.equal([]);
    expect((await readAll(await store.get(key))).equals(second)).to.equal(true);
  });

  describe("placing the spooled file", () => {
    const failure = (code: string) => Object.assign(new Error(`injected ${code}`), { code });
    /** fs.link, with each call recorded and, from the given call on, failing with `code`. */
    function recordedLink(code?: string): { calls: number; link: NonNullable<LocalBlobStoreOptions["link"]> } {
      const recorded = {
        calls: 0,
        async link(existing: string, target: string) {
          recorded.calls++;
          if (code) throw failure(code);
          await link(existing, target);
        },
      };
      return recorded;
    }

    it("links the spooled file into place rather than copying its bytes", async () => {
      const key = `${userId}/${randomUUID()}`;
      const file = await spool(randomBytes(5000));

      await store.put(key, file);

      const [blob, spooled] = await Promise.all([stat(join(dir, key)), stat(file.path)]);
      expect(blob.ino).to.equal(spooled.ino);
      expect(blob.nlink).to.equal(2);
    });

    it("keeps a linked blob whole when the spooled file is deleted and its name reused", async () => {
      const key = `${userId}/${randomUUID()}`;
      const bytes = randomBytes(5000);
      const file = await spool(bytes);
      await store.put(key, file);

      await unlink(file.path);
      await writeFile(file.path, randomBytes(3000));

      expect((await readAll(await store.get(key))).equals(bytes)).to.equal(true);
      expect((await stat(join(dir, key))).nlink).to.equal(1);
    });

    for (const code of ["EXDEV", "EPERM"]) {
      it(`copies when link fails with ${code}, and stops trying links`, async () => {
        const linker = recordedLink(code);
        store = createLocalBlobStore({ dir, link: linker.link });
        const [first, second] = [`${userId}/${randomUUID()}`, `${userId}/${randomUUID()}`];
        const bytes = randomBytes(5000);
        const file = await spool(bytes);

        await store.put(first, file);
        await store.put(second, file);

        expect(linker.calls).to.equal(1);
        for (const key of [first, second]) {
          expect((await stat(join(dir, key))).ino).to.not.equal((await stat(file.path)).ino);
          expect((await readAll(await store.get(key))).equals(bytes)).to.equal(true);
        }
        expect((await readdir(join(dir, userId))).sort()).to.deep.equal([first, second].map((k) => k.split("/")[1]).sort());
        expect((await readFile(file.path)).equals(bytes), "spooled file untouched").to.equal(true);
      });
    }

    it("passes another link failure on (EIO as UNAVAILABLE) and leaves nothing behind", async () => {
      store = createLocalBlobStore({ dir, link: recordedLink("EIO").link });
      const key = `${userId}/${randomUUID()}`;
      const file = await spool(randomBytes(5000));

      expect(await codeOf(store.put(key, file))).to.equal(Code.Unavailable);

      expect(await readdir(join(dir, userId)).catch(() => [])).to.deep.equal([]);
      expect((await stat(file.path)).nlink).to.equal(1);
    });

    it("creates the user's directory again when a delete removes it between the mkdir and the link", async () => {
      let calls = 0;
      // The first link finds no directory (a new user), so the put creates it; then a concurrent delete of
      // the user's last blob removes it right before the second link.
      const racing = async (existing: string, target: string) => {
        if (++calls === 2) await rmdir(join(dir, userId));
        await link(existing, target);
      };
      store = createLocalBlobStore({ dir, link: racing });
      const key = `${userId}/${randomUUID()}`;
      const bytes = randomBytes(1000);

      await store.put(key, await spool(bytes));

      expect(calls).to.equal(3);
      expect((await readAll(await store.get(key))).equals(bytes)).to.equal(true);
      expect(await readdir(join(dir, userId))).to.deep.equal([key.split("/")[1]]);
    });

    it("gives up with INTERNAL when the directory keeps disappearing, leaving nothing behind", async () => {
      let calls = 0;
      const alwaysRacing = async (existing: string, target: string) => {
        calls++;
        await rmdir(join(dir, userId)).catch(() => undefined);
        await link(existing, target);
      };
      store = createLocalBlobStore({ dir, link: alwaysRacing });
      const file = await spool(randomBytes(10));

      expect(await codeOf(store.put(`${userId}/${randomUUID()}`, file))).to.equal(Code.Internal);

      expect(calls).to.equal(4);
      expect(await readdir(join(dir, userId)).catch(() => [])).to.deep.equal([]);
      expect((await stat(file.path)).nlink).to.equal(1);
    });
  });

  it(`streams in chunks of ${localReadChunkBytes / 1024} KiB`, async () => {
    const key = `${userId}/${randomUUID()}`;
    const { file } = await spoolRandom(join(parent, "large"), 1024 * 1024);
    await store.put(key, file);

    const sizes: number[] = [];
    for await (const chunk of await store.get(key)) sizes.push(chunk.length);

    expect(sizes).to.have.length(16);
    expect(new Set(sizes)).to.deep.equal(new Set([localReadChunkBytes]));
  });

  it("closes the file when the reader stops, even before the first chunk", async () => {
    const key = `${userId}/${randomUUID()}`;
    await store.put(key, await spool(randomBytes(200_000)));
    const blobPath = join(dir, key);

    const untouched = (await store.get(key))[Symbol.asyncIterator]();
    await untouched.return?.();
    const started = (await store.get(key))[Symbol.asyncIterator]();
    await started.next();
    await started.return?.();

    expect(await openDescriptorsOf(blobPath)).to.equal(0);
  });

  it("removes the user's directory with its last blob", async () => {
    const [first, second] = [`${userId}/${randomUUID()}`, `${userId}/${randomUUID()}`];
    await store.put(first, await spool(randomBytes(10)));
    await store.put(second, await spool(randomBytes(10)));

    await store.delete(first);
    expect(await readdir(dir)).to.deep.equal([userId]);
    await store.delete(second);

    expect(await readdir(dir)).to.deep.equal([]);
  });

  it("stores blobs while other blobs of the same user are deleted", async () => {
    const keys = Array.from({ length: 20 }, () => `${userId}/${randomUUID()}`);
    const bytes = randomBytes(1000);
    const file = await spool(bytes);

    await Promise.all(keys.map(async (key) => {
      await store.put(key, file);
      await store.delete(key);
    }));
    const survivor = `${userId}/${randomUUID()}`;
    await Promise.all([store.put(survivor, file), ...keys.map((key) => store.delete(key))]);

    expect((await readAll(await store.get(survivor))).equals(bytes)).to.equal(true);
  });
});

/** How many of this process's file descriptors point at path, once pending closes have run (Linux). */
async function openDescriptorsOf(path: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    await new Promise((resolve) => setImmediate(resolve));
    const targets = await Promise.all(
      (await readdir("/proc/self/fd")).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")),
    );
    const open = targets.filter((target) => target === path).length;
    if (open === 0 || attempt >= 20) return open;
  }
}
