// The MEGA stand-in driven by the real megajs over HTTP: login with MEGA's key derivation, the node
// tree, folders, chunked encrypted upload, ranged download, trash and permanent delete.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { Storage } from "megajs";
import { startMegaStandIn, type MegaStandIn } from "./mega-stand-in/mega-stand-in.js";

type MegaFile = Storage["root"];
/** What MutableFile.upload returns at runtime; its declaration says only Writable. */
type UploadStream = ReturnType<Storage["upload"]>;

const mebibyte = 1024 * 1024;

describe("MEGA stand-in (real megajs over HTTP)", () => {
  let standIn: MegaStandIn;
  let storages: Storage[];

  beforeEach(async () => {
    standIn = await startMegaStandIn({ email: "Photos@Example.test", password: "correct horse battery staple" });
    storages = [];
  });
  afterEach(async () => {
    // Logging out (`sml`) is part of what megajs sends; a session the test already closed is fine.
    await Promise.allSettled(storages.map((storage) => storage.close()));
    await standIn.close();
  });

  async function login(password = standIn.password): Promise<Storage> {
    const storage = new Storage({ email: standIn.email, password, gateway: standIn.gateway, keepalive: false });
    await storage.ready;
    storages.push(storage);
    return storage;
  }

  /** Uploads random bytes into `folder` and returns the file node and the plaintext. */
  async function uploadRandom(folder: MegaFile, name: string, size: number) {
    const content = randomBytes(size);
    // megajs encrypts a Buffer source in place.
    const file = await (folder.upload({ name, size }, Buffer.from(content)) as UploadStream).complete;
    return { file, content };
  }

  /**
   * Names in a folder as a new login sees them: megajs updates its local tree after a move or delete
   * only through the live event channel (`sc`), which neither keepalive: false nor the stand-in has.
   */
  async function namesAfterFreshLogin(folder: (storage: Storage) => MegaFile | undefined): Promise<string[]> {
    const found = folder(await login());
    expect(found, "folder").to.not.equal(undefined);
    return (found?.children ?? []).map((child) => child.name ?? "<undecryptable>");
  }
  const userFolder = (storage: Storage) => storage.root.children?.find((child) => child.name === "user-42");

  it("logs in with the derived keys and finds an empty Cloud Drive, Inbox and Rubbish Bin", async () => {
    const storage = await login();

    expect(storage.status).to.equal("ready");
    expect(storage.root.name).to.equal("Cloud Drive");
    expect(storage.root.children).to.deep.equal([]);
    expect(storage.trash.name).to.equal("Rubbish Bin");
    expect(storage.inbox.name).to.equal("Inbox");
    expect(storage.sid).to.match(/^[\w-]{58}$/);
  });

  it("refuses a wrong password", async () => {
    const error = await errorOf(login("not the password"));

    expect(error.message).to.match(/^ENOENT \(-9\)/);
  });

  it("uploads 3 MiB into a new folder in chunks and downloads identical bytes, buffered and streamed", async () => {
    const storage = await login();
    const folder = await storage.mkdir("user-42");
    const { file, content } = await uploadRandom(folder, "photo.jpg", 3 * mebibyte);

    expect(folder.children?.map((child) => [child.name, child.size])).to.deep.equal([["photo.jpg", 3 * mebibyte]]);
    expect(standIn.stats()).to.deep.equal({ files: 1, bytes: 3 * mebibyte });
    expect((await file.downloadBuffer({})).equals(content)).to.equal(true);
    expect((await readAll(file.download({}))).equals(content)).to.equal(true);
  });

  it("shows the uploaded file, with decryptable attributes and content, to a second login", async () => {
    const first = await login();
    const { content } = await uploadRandom(await first.mkdir("user-42"), "photo.jpg", 200_000);

    const file = userFolder(await login())?.children?.find((child) => child.name === "photo.jpg");

    expect(file?.size).to.equal(200_000);
    expect((await file?.downloadBuffer({}))?.equals(content)).to.equal(true);
  });

  it("stores an empty file", async () => {
    const storage = await login();
    const { file } = await uploadRandom(storage.root, "empty.bin", 0);

    expect(file.size).to.equal(0);
    expect(await file.downloadBuffer({})).to.have.length(0);
  });

  it("deletes a file permanently, removing it from its folder and from storage", async () => {
    const storage = await login();
    const folder = await storage.mkdir("user-42");
    const { file } = await uploadRandom(folder, "gone.jpg", 100_000);
    await uploadRandom(folder, "kept.jpg", 1000);

    await file.delete(true);

    expect(await namesAfterFreshLogin(userFolder)).to.deep.equal(["kept.jpg"]);
    expect(standIn.stats()).to.deep.equal({ files: 1, bytes: 1000 });
  });

  it("moves a file to the Rubbish Bin on the default delete", async () => {
    const storage = await login();
    const folder = await storage.mkdir("user-42");
    const { file } = await uploadRandom(folder, "trashed.jpg", 5000);

    await file.delete();

    expect(await namesAfterFreshLogin(userFolder)).to.deep.equal([]);
    expect(await namesAfterFreshLogin((storage) => storage.trash)).to.deep.equal(["trashed.jpg"]);
    expect(standIn.stats()).to.deep.equal({ files: 1, bytes: 5000 });
  });

  it("deletes a folder with its files", async () => {
    const storage = await login();
    const folder = await storage.mkdir("user-42");
    await uploadRandom(folder, "a.jpg", 1000);
    await uploadRandom(folder, "b.jpg", 2000);

    await folder.delete(true);

    expect(await namesAfterFreshLogin((storage) => storage.root)).to.deep.equal([]);
    expect(standIn.stats()).to.deep.equal({ files: 0, bytes: 0 });
  });

  it("fails to download a deleted file", async () => {
    const storage = await login();
    const { file } = await uploadRandom(storage.root, "gone.jpg", 1000);
    await file.delete(true);

    const error = await errorOf(file.downloadBuffer({}));

    expect(error.message).to.match(/^ENOENT \(-9\)/);
  });

  it("answers ESID to a command without a valid session", async () => {
    const response = await fetch(`${standIn.gateway}cs?id=1&sid=forged`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ a: "f", c: 1 }]),
    });

    expect(await response.json()).to.equal(-15);
  });

  it("ends the session on logout", async () => {
    const storage = await login();
    const sid = storage.sid;
    await storage.close();

    const response = await fetch(`${standIn.gateway}cs?id=1&sid=${sid}`, {
      method: "POST",
      body: JSON.stringify([{ a: "ug" }]),
    });

    expect(await response.json()).to.equal(-15);
  });
});

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    return error as Error;
  }
  expect.fail("expected a failure");
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
