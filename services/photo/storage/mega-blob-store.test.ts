// The MEGA BlobStore against the local MEGA stand-in through the real megajs: the contract, then what only
// a remote, shared, lazily logged-in account can get wrong.
import { expect } from "chai";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Storage } from "megajs";
import { Code, ConnectError } from "../../../internal/errors/errors.js";
import { startMegaStandIn, type MegaStandIn } from "../test/mega-stand-in/mega-stand-in.js";
import { createMegaBlobStore, type MegaBlobStore, type MegaBlobStoreLogger } from "./mega-blob-store.js";
import { codeOf, describeBlobStoreContract, readAll } from "./test/blob-store-contract.js";

const silent: MegaBlobStoreLogger = { warn: () => undefined, error: () => undefined };

describeBlobStoreContract("MEGA blob store (stand-in)", async () => {
  const standIn = await startMegaStandIn();
  const store = createMegaBlobStore({ email: standIn.email, password: standIn.password, gateway: standIn.gateway, logger: silent });
  return {
    store,
    async cleanup() {
      await store.close();
      await standIn.close();
    },
  };
});

describe("MEGA blob store (stand-in)", () => {
  let standIn: MegaStandIn;
  let standInRunning: boolean;
  let scratch: string;
  let closers: Array<() => Promise<void>>;
  let logged: Array<{ level: string; msg: string }>;
  const logger: MegaBlobStoreLogger = {
    warn: (msg) => logged.push({ level: "warn", msg }),
    error: (msg) => logged.push({ level: "error", msg }),
  };

  beforeEach(async () => {
    standIn = await startMegaStandIn({ email: "photos@example.test", password: "correct horse battery staple" });
    standInRunning = true;
    scratch = await mkdtemp(join(tmpdir(), "mega-blobs-"));
    closers = [];
    logged = [];
  });
  afterEach(async () => {
    for (const close of closers.reverse()) await close();
    if (standInRunning) await stopStandIn();
    await rm(scratch, { recursive: true, force: true });
  });

  async function stopStandIn(): Promise<void> {
    standInRunning = false;
    await standIn.close();
  }

  function openStore(password = standIn.password): MegaBlobStore {
    const store = createMegaBlobStore({ email: standIn.email, password, gateway: standIn.gateway, logger });
    closers.push(() => store.close());
    return store;
  }

  /** The account's folders and files as a fresh megajs login sees them: { folderName: [fileNames] }. */
  async function driveListing(): Promise<Record<string, string[]>> {
    const storage = new Storage({ email: standIn.email, password: standIn.password, gateway: standIn.gateway, keepalive: false });
    await storage.ready;
    try {
      return Object.fromEntries(
        (storage.root.children ?? []).map((folder) => [folder.name ?? "?", (folder.children ?? []).map((file) => file.name ?? "?")]),
      );
    } finally {
      await storage.close();
    }
  }

  async function spool(bytes: Uint8Array) {
    const path = join(scratch, randomUUID());
    await writeFile(path, bytes);
    return { path, sizeBytes: bytes.length, contentType: "image/webp" };
  }

  async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
    const started = performance.now();
    const value = await promise;
    return { value, ms: performance.now() - started };
  }

  it("keeps a folder per user, named by the user id, holding a file per photo, named by the photo id", async () => {
    const store = openStore();
    const [alice, bob] = [randomUUID(), randomUUID()];
    const [p1, p2, p3] = [randomUUID(), randomUUID(), randomUUID()];

    await Promise.all([
      store.put(`${alice}/${p1}`, await spool(randomBytes(100))),
      store.put(`${alice}/${p2}`, await spool(randomBytes(100))),
      store.put(`${bob}/${p3}`, await spool(randomBytes(100))),
    ]);

    const listing = await driveListing();
    expect(Object.keys(listing).sort()).to.deep.equal([alice, bob].sort());
    expect(listing[alice].sort()).to.deep.equal([p1, p2].sort());
    expect(listing[bob]).to.deep.equal([p3]);
  });

  it("deletes for good, not to the Rubbish Bin, and keeps one copy per key on overwrite", async () => {
    const store = openStore();
    const [kept, gone] = [`${randomUUID()}/${randomUUID()}`, `${randomUUID()}/${randomUUID()}`];
    await store.put(kept, await spool(randomBytes(1000)));
    await store.put(kept, await spool(randomBytes(2000)));
    await store.put(gone, await spool(randomBytes(3000)));

    await store.delete(gone);

    // Ciphertext is as long as the plaintext (AES-CTR).
    expect(standIn.stats()).to.deep.equal({ files: 1, bytes: 2000 });
  });

  it("lets a second instance (its own login) read, replace and delete what the first stored", async () => {
    const [first, second] = [openStore(), openStore()];
    const userId = randomUUID();
    const [a, b] = [`${userId}/${randomUUID()}`, `${userId}/${randomUUID()}`];
    const bytes = randomBytes(50_000);
    await first.put(a, await spool(bytes));
    await first.get(a).then(readAll); // the first instance is logged in from here on

    expect((await readAll(await second.get(a))).equals(bytes), "second reads").to.equal(true);

    const replacement = randomBytes(40_000);
    await second.put(a, await spool(replacement));
    expect((await readAll(await first.get(a))).equals(replacement), "first reads the replacement").to.equal(true);

    await second.put(b, await spool(bytes));
    expect((await readAll(await first.get(b))).equals(bytes), "first reads a blob stored after its login").to.equal(true);

    await second.delete(a);
    expect(await codeOf(first.get(a)), "first after second deleted").to.equal(Code.NotFound);
    await first.delete(b);
    expect(await codeOf(second.get(b)), "second after first deleted").to.equal(Code.NotFound);
    expect(standIn.stats()).to.deep.equal({ files: 0, bytes: 0 });
    expect(Object.keys(await driveListing()), "one folder for the user").to.deep.equal([userId]);
  });

  it("deletes a blob another instance stored after this one logged in", async () => {
    const [first, second] = [openStore(), openStore()];
    await first.delete(`${randomUUID()}/${randomUUID()}`); // logs the first instance in
    const key = `${randomUUID()}/${randomUUID()}`;
    await second.put(key, await spool(randomBytes(500)));

    await first.delete(key);

    expect(standIn.stats().files).to.equal(0);
  });

  it("answers UNAVAILABLE with a clear message for a wrong password, at once, and logs it once", async () => {
    const store = openStore("not the password");

    const { value: error, ms } = await timed(errorOf(store.put(`${randomUUID()}/${randomUUID()}`, await spool(randomBytes(10)))));
    const { value: again, ms: againMs } = await timed(errorOf(store.get(`${randomUUID()}/${randomUUID()}`)));

    expect(error.code).to.equal(Code.Unavailable);
    expect(error.rawMessage).to.match(/refused the login.*email and password/);
    expect(ms, "first failure, ms").to.be.below(5000);
    expect(again.code).to.equal(Code.Unavailable);
    expect(againMs, "second failure, ms").to.be.below(50);
    expect(logged.filter((line) => line.level === "error")).to.have.length(1);
  });

  it("answers UNAVAILABLE promptly once MEGA is gone, for every operation", async () => {
    const store = openStore();
    const key = `${randomUUID()}/${randomUUID()}`;
    await store.put(key, await spool(randomBytes(1000)));
    await stopStandIn();

    for (const [operation, call] of [
      ["get", () => store.get(key)],
      ["delete", () => store.delete(key)],
      ["put existing user", async () => store.put(`${key.split("/")[0]}/${randomUUID()}`, await spool(randomBytes(10)))],
      ["put new user", async () => store.put(`${randomUUID()}/${randomUUID()}`, await spool(randomBytes(10)))],
    ] as const) {
      const { value: code, ms } = await timed(codeOf(call()));
      expect(code, operation).to.equal(Code.Unavailable);
      expect(ms, `${operation}, ms`).to.be.below(3000);
    }
  });

  it("answers UNAVAILABLE when MEGA cannot be reached for the first login", async () => {
    await stopStandIn();
    const store = openStore();

    const { value: code, ms } = await timed(codeOf(store.get(`${randomUUID()}/${randomUUID()}`)));

    expect(code).to.equal(Code.Unavailable);
    expect(ms).to.be.below(3000);
  });

  it("logs in again on the next call after a failed login", async () => {
    const proxy = await startGatewayProxy(standIn.gateway);
    closers.push(() => proxy.close());
    const store = createMegaBlobStore({ email: standIn.email, password: standIn.password, gateway: proxy.gateway, logger });
    closers.push(() => store.close());
    proxy.mode = "http-503";

    const { value: code, ms } = await timed(codeOf(store.get(`${randomUUID()}/${randomUUID()}`)));
    expect(code, "while MEGA answers 503").to.equal(Code.Unavailable);
    expect(ms, "ms").to.be.below(1000);

    proxy.mode = "pass";
    expect(await codeOf(store.get(`${randomUUID()}/${randomUUID()}`)), "once MEGA is back").to.equal(Code.NotFound);
  });

  it("logs in again and carries on when MEGA says the session expired", async () => {
    const proxy = await startGatewayProxy(standIn.gateway);
    closers.push(() => proxy.close());
    const store = createMegaBlobStore({ email: standIn.email, password: standIn.password, gateway: proxy.gateway, logger });
    closers.push(() => store.close());
    const key = `${randomUUID()}/${randomUUID()}`;
    const bytes = randomBytes(1000);
    await store.put(key, await spool(bytes));
    const logins = proxy.commands.filter((command) => command === "us").length;

    proxy.mode = "esid-once";
    const read = await readAll(await store.get(key));

    expect(read.equals(bytes)).to.equal(true);
    expect(proxy.commands.filter((command) => command === "us")).to.have.length(logins + 1);
  });

  it("answers UNAVAILABLE when MEGA stops answering, after the request time limit", async () => {
    const proxy = await startGatewayProxy(standIn.gateway);
    closers.push(() => proxy.close());
    const store = createMegaBlobStore({
      email: standIn.email,
      password: standIn.password,
      gateway: proxy.gateway,
      logger,
      requestTimeoutMs: 300,
    });
    closers.push(() => store.close());
    await store.delete(`${randomUUID()}/${randomUUID()}`);
    proxy.mode = "silent";

    const { value: code, ms } = await timed(codeOf(store.delete(`${randomUUID()}/${randomUUID()}`)));

    expect(code).to.equal(Code.Unavailable);
    expect(ms).to.be.within(250, 2000);
  });

  it("refuses calls after close", async () => {
    const store = openStore();
    await store.put(`${randomUUID()}/${randomUUID()}`, await spool(randomBytes(10)));

    await store.close();

    expect(await codeOf(store.get(`${randomUUID()}/${randomUUID()}`))).to.equal(Code.Unavailable);
  });

  it("stops the download when the reader leaves early", async () => {
    const store = openStore();
    const key = `${randomUUID()}/${randomUUID()}`;
    await store.put(key, await spool(randomBytes(5 * 1024 * 1024)));

    for await (const chunk of await store.get(key)) {
      expect(chunk.length).to.be.above(0);
      break;
    }

    expect((await readAll(await store.get(key))).length).to.equal(5 * 1024 * 1024);
  });
});

interface GatewayProxy {
  readonly gateway: string;
  /** pass: forward; http-503: answer 503; esid-once: answer ESID (-15) to the next command batch; silent: never answer. */
  mode: "pass" | "http-503" | "esid-once" | "silent";
  /** The `a` of every command forwarded, in order. */
  readonly commands: string[];
  close(): Promise<void>;
}

/** An HTTP hop in front of the stand-in's command endpoint (transfers go to the stand-in directly). */
async function startGatewayProxy(target: string): Promise<GatewayProxy> {
  const proxy: GatewayProxy = { gateway: "", mode: "pass", commands: [], close: () => Promise.resolve() };
  const server = createServer((request, response) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = Buffer.concat(chunks);
      if (proxy.mode === "silent") return;
      if (proxy.mode === "http-503") return void response.writeHead(503).end();
      if (proxy.mode === "esid-once") {
        proxy.mode = "pass";
        return void response.writeHead(200, { "content-type": "application/json" }).end("-15");
      }
      try {
        for (const command of JSON.parse(body.toString("utf8")) as Array<{ a: string }>) proxy.commands.push(command.a);
      } catch {
        // Not a command batch: forwarded as it is.
      }
      const answer = await fetch(new URL(request.url ?? "/", target), {
        method: request.method,
        headers: { "content-type": request.headers["content-type"] ?? "application/json" },
        body,
      });
      response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
      response.end(Buffer.from(await answer.arrayBuffer()));
    })().catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(proxy, {
    gateway: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function errorOf(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ConnectError);
    return error as ConnectError;
  }
  expect.fail("expected a failure");
}
