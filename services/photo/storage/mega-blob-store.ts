// Blobs in a MEGA account through megajs: a folder per user under the Cloud Drive, named by the user id,
// holding a file per photo, named by the photo id. megajs keeps the node tree in memory and, without its
// live event channel, never learns of changes made elsewhere, so this module keeps that tree honest itself.
import { createReadStream, type ReadStream } from "node:fs";
import { Storage } from "megajs";
import type { BlobStore } from "../photos.js";
import { ConnectError, internal, notFound, unavailable } from "../../../internal/errors/errors.js";
import { blobChunks } from "./blob-chunks.js";
import { parseBlobKey } from "./blob-key.js";

export interface MegaBlobStoreLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface MegaBlobStoreOptions {
  readonly email: string;
  readonly password: string;
  /** MEGA API base URL ("http://127.0.0.1:PORT/" for a stand-in); absent means MEGA itself. */
  readonly gateway?: string;
  /** Told when MEGA refuses the login, and about clean-up that failed. */
  readonly logger: MegaBlobStoreLogger;
  /** Limit on each HTTP request to MEGA (an API command, or one transfer chunk of at most 1 MiB). */
  readonly requestTimeoutMs?: number;
  /** After MEGA refused the credentials, calls fail at once for this long before a login is tried again. */
  readonly loginRetryDelayMs?: number;
}

export interface MegaBlobStore extends BlobStore {
  /**
   * Waits (at most requestTimeoutMs) for operations in flight, then logs out. Never rejects; later calls
   * throw UNAVAILABLE.
   */
  close(): Promise<void>;
}

type MegaNode = Storage["root"];
/** What upload() returns at runtime; MutableFile's declaration says only Writable. */
type UploadStream = ReturnType<Storage["upload"]>;
type RetryHandler = NonNullable<NonNullable<Parameters<MegaNode["download"]>[0]>["handleRetries"]>;

/** MEGA API error numbers this module acts on. */
const EAGAIN = -3;
const ERATELIMIT = -4;
const ETOOMANY = -6;
const ENOENT = -9;
const ESID = -15;
const EBLOCKED = -16;
const EOVERQUOTA = -17;
const ETEMPUNAVAIL = -18;
const ETOOMANYCONNECTIONS = -19;
const EMFAREQUIRED = -26;
const transientMegaErrors: ReadonlySet<number> = new Set([EAGAIN, ERATELIMIT, ETOOMANY, ETEMPUNAVAIL, ETOOMANYCONNECTIONS]);
/** Answers to a login that mean the account's credentials, not the network, are the problem. */
const refusedLoginErrors: ReadonlySet<number> = new Set([ENOENT, EBLOCKED, EMFAREQUIRED]);

/** megajs retries a failed transfer chunk 8 times over ~8 minutes by default; a call has seconds. */
const maxChunkTries = 3;
const chunkRetryDelayMs = 250;

interface Session {
  readonly storage: Storage;
  /** The tree reload in progress, shared by every caller that needs one. */
  reloading?: Promise<void>;
}

/**
 * A BlobStore in a MEGA account. Logs in on first use (and again after a failed login or an expired
 * session). Malformed keys throw INVALID_ARGUMENT; MEGA unreachable, busy, over quota or refusing the
 * credentials throws UNAVAILABLE; anything else INTERNAL with the cause kept for logs.
 *
 * Several instances may share one account: a blob another instance stored is found by reloading the tree
 * when it is not in this instance's view, and one it deleted is dropped from the view when MEGA says so.
 */
export function createMegaBlobStore(options: MegaBlobStoreOptions): MegaBlobStore {
  const { logger } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const loginRetryDelayMs = options.loginRetryDelayMs ?? 5_000;
  const fetchWithLimits = createMegaFetch(requestTimeoutMs);
  const blobQueue = createKeyedQueue();
  const folderQueue = createKeyedQueue();
  const inFlight = new Set<Promise<unknown>>();
  let session: Promise<Session> | undefined;
  let refusal: { readonly error: ConnectError; readonly until: number } | undefined;
  let closed = false;

  async function login(): Promise<Session> {
    // megajs deletes the password from the options it is given, so each login gets a fresh object.
    const storage = new Storage({
      email: options.email,
      password: options.password,
      gateway: options.gateway,
      // Keepalive long-polls MEGA's event channel; this store reloads the tree when it needs to instead.
      keepalive: false,
      fetch: fetchWithLimits,
    });
    try {
      await storage.ready;
    } catch (error) {
      storage.api.close();
      throw loginError(error);
    }
    // megajs subscribes to the event channel on every tree load; with keepalive off nothing is ever sent there.
    storage.api.removeAllListeners("sc");
    refusal = undefined;
    return { storage };
  }

  function loginError(error: unknown): ConnectError {
    const code = megaErrorNumber(error);
    if (code === undefined || !refusedLoginErrors.has(code)) return megaStoreError(error);
    const refused = unavailable("MEGA refused the login: check the account's email and password", error);
    refusal = { error: refused, until: Date.now() + loginRetryDelayMs };
    logger.error("MEGA refused the login; check storage.mega.email and storage.mega.password", { err: error });
    return refused;
  }

  function currentSession(): Promise<Session> {
    if (closed) return Promise.reject(unavailable("the MEGA blob store is closed"));
    if (refusal && Date.now() < refusal.until) return Promise.reject(refusal.error);
    if (!session) {
      const pending = login();
      session = pending;
      pending.catch(() => {
        if (session === pending) session = undefined;
      });
    }
    return session;
  }

  /** Runs operation with a logged-in session; an expired session is replaced once. */
  async function withSession<T>(operation: (current: Session) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const pending = currentSession();
      const current = await pending;
      try {
        return await operation(current);
      } catch (error) {
        if (attempt > 1 || megaErrorNumber(error) !== ESID) throw error;
        if (session === pending) session = undefined;
      }
    }
  }

  /** Runs a store operation: counted for close(), every error mapped to a ConnectError. */
  async function guarded<T>(operation: () => Promise<T>): Promise<T> {
    const running = operation();
    inFlight.add(running);
    try {
      return await running;
    } catch (error) {
      throw megaStoreError(error);
    } finally {
      inFlight.delete(running);
    }
  }

  /** Loads nodes created elsewhere into the tree. It never removes nodes: forget() does that. */
  function reload(current: Session): Promise<void> {
    if (!current.reloading) {
      current.reloading = Promise.resolve()
        .then(() => current.storage.reload(true))
        .then(() => undefined)
        .finally(() => {
          current.storage.api.removeAllListeners("sc");
          current.reloading = undefined;
        });
    }
    return current.reloading;
  }

  /** The user's folder, created when neither this instance nor (after a reload) MEGA knows one. */
  function folderFor(current: Session, userId: string): Promise<MegaNode> {
    return folderQueue.run(userId, async () => {
      const known = userFolders(current.storage, userId)[0];
      if (known) return known;
      await reload(current);
      return userFolders(current.storage, userId)[0] ?? (await current.storage.root.mkdir(userId));
    });
  }

  /** Deletes a node for good (not to the Rubbish Bin); one already gone is fine. */
  async function deleteNode(storage: Storage, node: MegaNode): Promise<void> {
    try {
      await node.delete(true);
    } catch (error) {
      if (megaErrorNumber(error) !== ENOENT) throw error;
    }
    forget(storage, node);
  }

  return {
    async put(key, file) {
      const { userId, photoId } = parseBlobKey(key);
      return guarded(() =>
        blobQueue.run(key, () =>
          withSession(async (current) => {
            const previous = blobNodes(current.storage, userId, photoId);
            for (let attempt = 1; ; attempt++) {
              const folder = await folderFor(current, userId);
              try {
                await upload(folder, photoId, file);
                break;
              } catch (error) {
                // The folder was deleted behind this instance's back: look it up (or create it) again.
                if (attempt > 1 || megaErrorNumber(error) !== ENOENT) throw error;
                forget(current.storage, folder);
              }
            }
            // The new blob is in place before the old one goes, so a reader always finds one of them.
            for (const old of previous) {
              await deleteNode(current.storage, old).catch((error: unknown) => {
                logger.warn("could not delete the replaced copy of a MEGA blob; reads use the newest", {
                  storageKey: key,
                  err: error,
                });
              });
            }
          }),
        ),
      );
    },

    async get(key) {
      const { userId, photoId } = parseBlobKey(key);
      return guarded(() =>
        withSession(async (current) => {
          let reloaded = false;
          for (;;) {
            const node = newest(blobNodes(current.storage, userId, photoId));
            if (!node) {
              if (reloaded) throw notFound("blob not found");
              await reload(current);
              reloaded = true;
              continue;
            }
            try {
              return await openDownload(node);
            } catch (error) {
              if (megaErrorNumber(error) !== ENOENT) throw error;
              // Deleted elsewhere: drop it from the view and look again.
              forget(current.storage, node);
            }
          }
        }),
      );
    },

    async delete(key) {
      const { userId, photoId } = parseBlobKey(key);
      return guarded(() =>
        blobQueue.run(key, () =>
          withSession(async (current) => {
            let nodes = blobNodes(current.storage, userId, photoId);
            if (nodes.length === 0) {
              // Absent from this view is not absent from MEGA: another instance may have stored it.
              await reload(current);
              nodes = blobNodes(current.storage, userId, photoId);
            }
            for (const node of nodes) await deleteNode(current.storage, node);
          }),
        ),
      );
    },

    async close() {
      if (closed) return;
      closed = true;
      // megajs drops API answers that arrive after close, which would leave an operation waiting forever.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(inFlight),
        new Promise((resolve) => (timer = setTimeout(resolve, requestTimeoutMs))),
      ]);
      clearTimeout(timer);
      const last = session;
      session = undefined;
      if (!last) return;
      try {
        await (await last).storage.close();
      } catch {
        // Logging out is a courtesy: the session expires on MEGA's side anyway.
      }
    },
  };
}

/** Uploads the spooled file into folder under name, streaming it; resolves when MEGA holds the node. */
async function upload(
  folder: MegaNode,
  name: string,
  file: { path: string; sizeBytes: number },
): Promise<MegaNode> {
  // megajs needs a stream's size up front; an empty Buffer spares it a stream that has nothing to say.
  const source: ReadStream | Buffer = file.sizeBytes === 0 ? Buffer.alloc(0) : createReadStream(file.path);
  // handleRetries is honoured at run time but missing from uploadOpts' declaration; so is a stream source.
  const uploadOptions: Parameters<MegaNode["upload"]>[0] & { handleRetries: RetryHandler } = {
    name,
    size: file.sizeBytes,
    handleRetries: retryChunk,
  };
  try {
    const transfer = folder.upload(uploadOptions, source as Buffer) as UploadStream;
    return await new Promise<MegaNode>((resolve, reject) => {
      const fail = (error: Error) => {
        transfer.destroy();
        reject(error);
      };
      // Failed chunks surface only as 'error' events, possibly several; and once a listener exists, megajs
      // reports its other failures there too instead of rejecting `complete`. The listener stays, so a late
      // error never goes unheard (which would crash the process).
      transfer.on("error", fail);
      if (!Buffer.isBuffer(source)) source.on("error", fail);
      transfer.complete.then(resolve, fail);
    });
  } finally {
    if (!Buffer.isBuffer(source)) source.destroy();
  }
}

/**
 * The node's decrypted bytes. Resolves once the first chunk (or the end) arrived, so a node MEGA no longer
 * has rejects here with ENOENT rather than in the caller's loop.
 */
async function openDownload(node: MegaNode): Promise<AsyncIterable<Uint8Array>> {
  const stream = node.download({ handleRetries: retryChunk });
  // megajs emits one 'error' per failed chunk; the iterator reports the first, this keeps the rest quiet.
  stream.on("error", () => undefined);
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  try {
    return blobChunks({ chunks, destroy: () => stream.destroy() }, megaStoreError, await chunks.next());
  } catch (error) {
    stream.destroy();
    throw error;
  }
}

const retryChunk: RetryHandler = (tries, error, retry) => {
  if (tries < maxChunkTries && isTransient(error)) setTimeout(() => retry(null), chunkRetryDelayMs * tries);
  else retry(error);
};

function userFolders(storage: Storage, userId: string): MegaNode[] {
  return (storage.root.children ?? []).filter((node) => node.directory && node.name === userId);
}

/** Every copy of the blob this instance knows of, oldest folder first, each folder's children in order. */
function blobNodes(storage: Storage, userId: string, photoId: string): MegaNode[] {
  return userFolders(storage, userId).flatMap((folder) =>
    (folder.children ?? []).filter((node) => !node.directory && node.name === photoId),
  );
}

/** The copy to read when an interrupted overwrite left two: the latest timestamp, the later one on a tie. */
function newest(nodes: readonly MegaNode[]): MegaNode | undefined {
  return nodes.reduce<MegaNode | undefined>(
    (best, node) => (best === undefined || (node.timestamp ?? 0) >= (best.timestamp ?? 0) ? node : best),
    undefined,
  );
}

/** Removes a node MEGA no longer has from megajs's tree, which megajs itself only does on live events. */
function forget(storage: Storage, node: MegaNode): void {
  const siblings = node.parent?.children;
  const index = siblings?.indexOf(node) ?? -1;
  if (siblings && index >= 0) siblings.splice(index, 1);
  if (node.nodeId !== undefined && storage.files[node.nodeId] === node) delete storage.files[node.nodeId];
}

/** A request to MEGA that got no HTTP answer: refused, reset, timed out. */
class MegaTransportError extends Error {
  override readonly name = "MegaTransportError";
}

/** An HTTP error status from MEGA; megajs itself keeps only the status text. */
class MegaHttpError extends Error {
  override readonly name = "MegaHttpError";
  constructor(readonly status: number) {
    super(`MEGA answered HTTP ${status}`);
  }
}

/**
 * The fetch megajs is given: every request limited to timeoutMs (megajs sets none, so a silent server would
 * hang a call forever), and failures typed so megaStoreError can tell a network fault from an API error.
 */
function createMegaFetch(timeoutMs: number): typeof fetch {
  return async (input, init) => {
    const limit = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, limit]) : limit;
    let response: Response;
    try {
      response = await fetch(input, { ...init, signal });
    } catch (error) {
      if (init?.signal?.aborted) throw error;
      throw isNetworkFailure(error) ? new MegaTransportError("MEGA cannot be reached", { cause: error }) : error;
    }
    // 509 stays: megajs reads its bandwidth-quota header.
    if (!response.ok && response.status !== 509) {
      await response.body?.cancel().catch(() => undefined);
      throw new MegaHttpError(response.status);
    }
    return response;
  };
}

/** Maps anything megajs or the network threw to the store's errors, in one place. */
function megaStoreError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (megaErrorNumber(error) === EOVERQUOTA) return unavailable("the MEGA account is over its storage quota", error);
  if (isTransient(error)) return unavailable("MEGA cannot be reached or is busy", error);
  return internal(error);
}

/** True when trying again later may succeed: no answer, a server-side HTTP error, or MEGA saying it is busy. */
function isTransient(error: unknown): boolean {
  if (error instanceof MegaTransportError || isNetworkFailure(error)) return true;
  if (error instanceof MegaHttpError) return error.status >= 500 || error.status === 408 || error.status === 429;
  const code = megaErrorNumber(error);
  return code !== undefined && transientMegaErrors.has(code);
}

/**
 * MEGA's error number behind a megajs error. megajs keeps it only in the message text: "ENOENT (-9): …" for
 * API answers, "Server returned error -9 while uploading" for transfer answers.
 */
function megaErrorNumber(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^E[A-Z]+ \((-\d+)\)/.exec(error.message) ?? /^Server returned error (-\d+) while uploading$/.exec(error.message);
  return match ? Number(match[1]) : undefined;
}

// Node and undici codes for a request that got no (complete) answer.
const networkErrorCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** True for a timeout or a connection failure anywhere in the error's cause chain. */
function isNetworkFailure(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current.name === "TimeoutError") return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && networkErrorCodes.has(code)) return true;
  }
  return false;
}

/** Runs tasks that share a key one at a time, in call order; other keys run alongside. */
function createKeyedQueue() {
  const tails = new Map<string, Promise<void>>();
  return {
    run<T>(key: string, task: () => Promise<T>): Promise<T> {
      const result = (tails.get(key) ?? Promise.resolve()).then(task);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
  };
}
