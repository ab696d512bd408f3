// A local stand-in for MEGA's API, enough for megajs 1.3.10 to log in, list, create folders, upload,
// download, move and delete through its `gateway` option, with megajs doing all of its real crypto.
// Test-only: one account, state in memory, HTTP on 127.0.0.1.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createMegaAccount } from "./account.js";
import { createApiCommands } from "./api-commands.js";
import { EARGS } from "./api-errors.js";
import { FILE, createNodeTree } from "./node-tree.js";
import { createTransfers } from "./transfers.js";

export interface MegaStandIn {
  /** Pass as megajs's `gateway` option: "http://127.0.0.1:PORT/". */
  readonly gateway: string;
  readonly email: string;
  readonly password: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
  /** For tests: how many file nodes exist (rubbish bin included) and their stored ciphertext bytes. */
  stats(): { files: number; bytes: number };
}

export interface MegaStandInOptions {
  /** Defaults to "stand-in@example.test"; megajs lower-cases it, and so does the stand-in. */
  email?: string;
  /** Defaults to a random password. */
  password?: string;
}

/** Largest `cs` command batch accepted. */
const maxCommandBytes = 1024 * 1024;
/** Largest upload chunk accepted; megajs sends at most 1 MiB unless told otherwise. */
const maxChunkBytes = 16 * 1024 * 1024;

/**
 * Creates a fresh account (empty Cloud Drive, inbox and rubbish bin) and serves it on an ephemeral
 * port. Rejects only when the port cannot be bound.
 */
export async function startMegaStandIn(options: MegaStandInOptions = {}): Promise<MegaStandIn> {
  const email = options.email ?? "stand-in@example.test";
  const password = options.password ?? randomBytes(12).toString("base64url");
  const account = await createMegaAccount(email, password);
  const tree = createNodeTree();
  const transfers = createTransfers();
  const blobs = new Map<string, Buffer>();
  let gateway = "";
  const commands = createApiCommands({
    account,
    tree,
    transfers,
    blobs,
    transferUrl: (kind, token) => `${gateway}${kind}/${token}`,
    decoySecret: randomBytes(32),
  });

  async function handleCommands(request: IncomingMessage, response: ServerResponse, url: URL) {
    let body: unknown;
    try {
      body = JSON.parse((await readBody(request, maxCommandBytes)).toString("utf8"));
    } catch {
      body = undefined;
    }
    const answer = body === undefined ? EARGS : commands.handleBatch(body, url.searchParams.get("sid") ?? undefined);
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  async function handleUploadChunk(request: IncomingMessage, response: ServerResponse, token: string, offset: number) {
    const chunk = await readBody(request, maxChunkBytes);
    const result = transfers.receiveChunk(token, offset, chunk);
    // MEGA answers a chunk with an empty body, the completion token, or an error number as text.
    response.writeHead(200, { "content-type": "application/octet-stream" }).end(String(result));
  }

  function handleDownload(response: ServerResponse, token: string, start: number, end: number) {
    const handle = transfers.downloadTarget(token);
    const ciphertext = handle === undefined ? undefined : blobs.get(handle);
    if (ciphertext === undefined) {
      response.writeHead(404).end();
    } else if (start > end || end >= ciphertext.length) {
      response.writeHead(416).end();
    } else {
      const slice = ciphertext.subarray(start, end + 1);
      response.writeHead(200, { "content-type": "application/octet-stream", "content-length": slice.length }).end(slice);
    }
  }

  async function route(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? "/", "http://stand-in");
    const upload = /^\/ul\/([\w-]+)\/(\d+)$/.exec(url.pathname);
    const download = /^\/dl\/([\w-]+)\/(\d+)-(\d+)$/.exec(url.pathname);
    if (request.method === "POST" && url.pathname === "/cs") return handleCommands(request, response, url);
    if (request.method === "POST" && upload) return handleUploadChunk(request, response, upload[1], Number(upload[2]));
    if (request.method === "GET" && download) {
      return handleDownload(response, download[1], Number(download[2]), Number(download[3]));
    }
    response.writeHead(404).end();
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      const status = error instanceof BodyTooLargeError ? 413 : 500;
      if (!response.headersSent) response.writeHead(status);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    gateway,
    email: account.email,
    password,
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
    stats() {
      const files = tree.list().filter((node) => node.t === FILE).length;
      let bytes = 0;
      for (const ciphertext of blobs.values()) bytes += ciphertext.length;
      return { files, bytes };
    },
  };
}

class BodyTooLargeError extends Error {}

async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) throw new BodyTooLargeError(`request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}
