// The account's node tree as MEGA's API shows it: handles, parents, types and the opaque attribute and
// key blobs megajs encrypted. The stand-in never decrypts them.
import { randomBytes } from "node:crypto";
import { EACCESS, ECIRCULAR, ENOENT, type MegaErrorCode } from "./api-errors.js";

export const FILE = 0;
export const FOLDER = 1;
export const ROOT = 2;
export const INBOX = 3;
export const RUBBISH_BIN = 4;

export type NodeType = typeof FILE | typeof FOLDER | typeof ROOT | typeof INBOX | typeof RUBBISH_BIN;

export interface MegaNode {
  readonly h: string;
  p: string;
  readonly t: NodeType;
  /** Attributes encrypted by megajs with the node key (base64url); empty for the three roots. */
  readonly a: string;
  /** The node key encrypted by megajs with the master key (base64url); empty for the three roots. */
  readonly k: string;
  /** File size in bytes (files only). */
  readonly s?: number;
  /** Creation time, seconds since the epoch. */
  readonly ts: number;
}

export interface NodeTree {
  readonly root: MegaNode;
  readonly inbox: MegaNode;
  readonly rubbishBin: MegaNode;
  get(handle: string): MegaNode | undefined;
  /** Every node, each parent before its children (megajs links a child only to a parent it has seen). */
  list(): MegaNode[];
  /** Adds a file or folder; ENOENT when the parent is missing, EACCESS when it is a file. */
  add(parent: string, node: { t: typeof FILE | typeof FOLDER; a: string; k: string; s?: number }): MegaNode | MegaErrorCode;
  /** Moves a node; ENOENT, EACCESS for a root or a file target, ECIRCULAR into its own subtree. */
  move(handle: string, target: string): MegaNode | MegaErrorCode;
  /** Removes a node and its subtree and returns the removed nodes; ENOENT, or EACCESS for a root. */
  remove(handle: string): MegaNode[] | MegaErrorCode;
}

export function createNodeTree(): NodeTree {
  const nodes = new Map<string, MegaNode>();
  const now = () => Math.floor(Date.now() / 1000);

  function newHandle(): string {
    for (;;) {
      const handle = randomBytes(6).toString("base64url");
      if (!nodes.has(handle)) return handle;
    }
  }

  function insert(node: Omit<MegaNode, "h" | "ts">): MegaNode {
    const created: MegaNode = { ...node, h: newHandle(), ts: now() };
    nodes.set(created.h, created);
    return created;
  }

  function childrenOf(handle: string): MegaNode[] {
    return [...nodes.values()].filter((node) => node.p === handle);
  }

  function subtree(node: MegaNode): MegaNode[] {
    return [node, ...childrenOf(node.h).flatMap(subtree)];
  }

  const root = insert({ p: "", t: ROOT, a: "", k: "" });
  const inbox = insert({ p: "", t: INBOX, a: "", k: "" });
  const rubbishBin = insert({ p: "", t: RUBBISH_BIN, a: "", k: "" });
  const isRoot = (node: MegaNode) => node.t >= ROOT;

  return {
    root,
    inbox,
    rubbishBin,
    get: (handle) => nodes.get(handle),
    list: () => [root, inbox, rubbishBin].flatMap(subtree),
    add(parent, node) {
      const target = nodes.get(parent);
      if (target === undefined) return ENOENT;
      if (target.t === FILE) return EACCESS;
      return insert({ ...node, p: parent });
    },
    move(handle, targetHandle) {
      const node = nodes.get(handle);
      const target = nodes.get(targetHandle);
      if (node === undefined || target === undefined) return ENOENT;
      if (isRoot(node) || target.t === FILE) return EACCESS;
      for (let at: MegaNode | undefined = target; at !== undefined; at = nodes.get(at.p)) {
        if (at.h === node.h) return ECIRCULAR;
      }
      node.p = target.h;
      return node;
    },
    remove(handle) {
      const node = nodes.get(handle);
      if (node === undefined) return ENOENT;
      if (isRoot(node)) return EACCESS;
      const removed = subtree(node);
      for (const each of removed) nodes.delete(each.h);
      return removed;
    },
  };
}
