// The `{gateway}cs` endpoint: a JSON array of commands in, one answer per command out, each answer an
// object or a negative error code. Only the commands megajs 1.3.10 sends for login, listing, mkdir,
// upload, download, move and delete are known; anything else answers EARGS.
import { createDecoySalt, type MegaAccount } from "./account.js";
import { EARGS, ENOENT, ESID } from "./api-errors.js";
import { FILE, FOLDER, type MegaNode, type NodeTree } from "./node-tree.js";
import type { Transfers } from "./transfers.js";

export interface ApiCommandDependencies {
  readonly account: MegaAccount;
  readonly tree: NodeTree;
  readonly transfers: Transfers;
  /** Ciphertext of every file node, by node handle. */
  readonly blobs: Map<string, Buffer>;
  /** The absolute URL megajs uses for an upload ("ul") or download ("dl") token. */
  transferUrl(kind: "ul" | "dl", token: string): string;
  /** Keys the salts answered for unknown emails. */
  readonly decoySecret: Buffer;
}

export interface ApiCommands {
  /**
   * Answers one `cs` request body. A batch that needs a session and carries no valid `sid` gets the
   * bare number ESID, as MEGA answers it; a body that is not an array of commands gets EARGS.
   */
  handleBatch(body: unknown, sid: string | undefined): unknown;
}

type Command = Record<string, unknown>;

/** Commands that run before a session exists. */
const sessionless = new Set(["us0", "us"]);

export function createApiCommands(deps: ApiCommandDependencies): ApiCommands {
  const { account, tree, transfers, blobs } = deps;
  const sessions = new Set<string>();

  function toWire(node: MegaNode) {
    const user = account.userHandle;
    const wire: Record<string, unknown> = { h: node.h, p: node.p, u: user, t: node.t, ts: node.ts };
    if (node.t === FILE || node.t === FOLDER) {
      wire.a = node.a;
      // MEGA prefixes each key with the handle of whoever can decrypt it; megajs picks its own.
      wire.k = `${user}:${node.k}`;
    }
    if (node.s !== undefined) wire.s = node.s;
    return wire;
  }

  const handlers = new Map<string, (command: Command, sid: string | undefined) => unknown>(Object.entries({
    us0(command) {
      const user = text(command, "user")?.toLowerCase();
      if (user === undefined) return EARGS;
      const salt = user === account.email ? account.salt : createDecoySalt(deps.decoySecret, user);
      return { v: 2, s: salt };
    },
    us(command) {
      const user = text(command, "user")?.toLowerCase();
      const uh = text(command, "uh");
      if (user === undefined || uh === undefined) return EARGS;
      if (user !== account.email || !account.verifyAuthKey(uh)) return ENOENT;
      const { sid, csid } = account.createSession();
      sessions.add(sid);
      return { k: account.encryptedMasterKey, privk: account.encryptedPrivateKey, csid, u: account.userHandle };
    },
    ug() {
      return { u: account.userHandle, email: account.email, name: account.email.split("@")[0] };
    },
    sml(_command, sid) {
      if (sid !== undefined) sessions.delete(sid);
      return 0;
    },
    f() {
      return { f: tree.list().map(toWire), ok: [], s: [] };
    },
    p(command) {
      const target = text(command, "t");
      const nodes = command.n;
      // megajs creates one node per `p`; imports (`ph`) and copies are not supported.
      if (target === undefined || !Array.isArray(nodes) || nodes.length !== 1 || !isCommand(nodes[0])) return EARGS;
      const node = nodes[0];
      const [h, type, a, k] = [text(node, "h"), node.t, text(node, "a"), text(node, "k")];
      if (h === undefined || a === undefined || k === undefined) return EARGS;
      if (tree.get(target) === undefined) return ENOENT;
      if (type === FOLDER) return created(tree.add(target, { t: FOLDER, a, k }));
      if (type !== FILE) return EARGS;
      const ciphertext = transfers.takeCompleted(h);
      if (ciphertext === undefined) return ENOENT;
      const file = tree.add(target, { t: FILE, a, k, s: ciphertext.length });
      if (typeof file !== "number") blobs.set(file.h, ciphertext);
      return created(file);
    },
    u(command) {
      const size = command.s;
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return EARGS;
      return { p: deps.transferUrl("ul", transfers.openUpload(size)) };
    },
    g(command) {
      const handle = text(command, "n");
      if (handle === undefined) return EARGS;
      const node = tree.get(handle);
      const ciphertext = blobs.get(handle);
      if (node === undefined || ciphertext === undefined) return ENOENT;
      const answer: Record<string, unknown> = { s: ciphertext.length, at: node.a };
      if (command.g === 1) answer.g = deps.transferUrl("dl", transfers.openDownload(handle));
      return answer;
    },
    m(command) {
      const [handle, target] = [text(command, "n"), text(command, "t")];
      if (handle === undefined || target === undefined) return EARGS;
      const moved = tree.move(handle, target);
      return typeof moved === "number" ? moved : 0;
    },
    d(command) {
      const handle = text(command, "n");
      if (handle === undefined) return EARGS;
      const removed = tree.remove(handle);
      if (typeof removed === "number") return removed;
      for (const node of removed) blobs.delete(node.h);
      return 0;
    },
  }));

  function created(node: MegaNode | number) {
    return typeof node === "number" ? node : { f: [toWire(node)] };
  }

  return {
    handleBatch(body, sid) {
      if (!Array.isArray(body) || !body.every(isCommand)) return EARGS;
      const needsSession = body.some((command) => !sessionless.has(String(command.a)));
      if (needsSession && (sid === undefined || !sessions.has(sid))) return ESID;
      return body.map((command) => handlers.get(String(command.a))?.(command, sid) ?? EARGS);
    },
  };
}

function isCommand(value: unknown): value is Command {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(command: Command, key: string): string | undefined {
  const value = command[key];
  return typeof value === "string" ? value : undefined;
}
