// Hand-made fakes of the photo domain's dependencies, for its unit tests and for the integration tests'
// blob store (the real backends have their own contract suite).
import { unavailable, notFound } from "../../../internal/errors/errors.js";
import {
  userDeleted,
  type BlobDeletionQueue,
  type BlobStore,
  type KnownUsers,
  type PageKey,
  type PhotoListCache,
  type PhotoPage,
  type PhotoStore,
  type StoredPhoto,
} from "../photos.js";

export interface FakeBlobStore extends BlobStore {
  /** Stored bytes by key. */
  readonly blobs: Map<string, Uint8Array>;
  /** Every call, in order: "put <key>", "get <key>", "delete <key>". */
  readonly calls: string[];
  /** Keys whose delete succeeded, in order (repeats included). */
  readonly deleted: string[];
  /** Makes the next n calls of the method fail with UNAVAILABLE. */
  failNext(method: "put" | "get" | "delete", n?: number): void;
  /** What put stores for a file path; by default the path's own text. */
  contentOf: (path: string) => Uint8Array;
  /** How get splits a blob into chunks; by default one chunk. */
  chunkSizes?: number[];
}

/** An in-memory BlobStore recording its calls; put stores contentOf(path), not the file. */
export function createFakeBlobStore(log: string[] = []): FakeBlobStore {
  const failures = { put: 0, get: 0, delete: 0 };
  const fail = (method: keyof typeof failures, key: string) => {
    store.calls.push(`${method} ${key}`);
    log.push(`blob ${method}`);
    if (failures[method] > 0) {
      failures[method]--;
      throw unavailable("blob store unavailable");
    }
  };
  const store: FakeBlobStore = {
    blobs: new Map(),
    calls: [],
    deleted: [],
    contentOf: (path) => new TextEncoder().encode(path),
    failNext(method, n = 1) {
      failures[method] = n;
    },
    async put(key, file) {
      fail("put", key);
      store.blobs.set(key, store.contentOf(file.path));
    },
    async get(key) {
      fail("get", key);
      const bytes = store.blobs.get(key);
      if (!bytes) throw notFound("blob not found");
      const sizes = store.chunkSizes ?? [bytes.byteLength];
      return (async function* () {
        let offset = 0;
        for (const size of sizes) {
          if (offset >= bytes.byteLength) break;
          yield bytes.subarray(offset, offset + size);
          offset += size;
        }
        if (offset < bytes.byteLength) yield bytes.subarray(offset);
      })();
    },
    async delete(key) {
      fail("delete", key);
      store.blobs.delete(key);
      store.deleted.push(key);
    },
  };
  return store;
}

interface QueuedDeletion {
  attempts: number;
  lastError?: string;
  retryInMs?: number;
}

export interface FakePhotoDb extends PhotoStore, KnownUsers, BlobDeletionQueue {
  readonly users: Set<string>;
  readonly tombstones: Set<string>;
  readonly photos: Map<string, StoredPhoto>;
  readonly queue: Map<string, QueuedDeletion>;
  /** Makes the next insertPhoto fail with UNAVAILABLE (as a lost database would). */
  failNextInsert: boolean;
  /** Makes every queue write fail with UNAVAILABLE. */
  queueDown: boolean;
}

/** Users, photos and the deletion queue in memory, with the semantics of the PostgreSQL store. */
export function createFakePhotoDb(log: string[] = []): FakePhotoDb {
  const keyOf = (p: StoredPhoto): PageKey => ({ createdAt: p.createdAt.toISOString(), id: p.id });
  const newerFirst = (a: PageKey, b: PageKey) =>
    a.createdAt === b.createdAt ? b.id.localeCompare(a.id) : Date.parse(b.createdAt) - Date.parse(a.createdAt);
  const queueWrite = () => {
    if (db.queueDown) throw unavailable("photo store unavailable");
  };
  const db: FakePhotoDb = {
    users: new Set(),
    tombstones: new Set(),
    photos: new Map(),
    queue: new Map(),
    failNextInsert: false,
    queueDown: false,

    async admitUser(userId) {
      log.push("admit user");
      if (db.tombstones.has(userId)) return false;
      db.users.add(userId);
      return true;
    },
    async deleteUser(userId) {
      const keys = [...db.photos.values()].filter((p) => p.userId === userId).map((p) => p.storageKey);
      for (const key of keys) if (!db.queue.has(key)) db.queue.set(key, { attempts: 0 });
      for (const [id, p] of db.photos) if (p.userId === userId) db.photos.delete(id);
      db.tombstones.add(userId);
      db.users.delete(userId);
      return keys;
    },

    async insertPhoto(photo) {
      log.push("insert photo");
      if (db.failNextInsert) {
        db.failNextInsert = false;
        throw unavailable("photo store unavailable");
      }
      if (!db.users.has(photo.userId)) throw userDeleted();
      db.photos.set(photo.id, photo);
      return photo;
    },
    async findPhoto(userId, photoId) {
      const photo = db.photos.get(photoId);
      return photo?.userId === userId ? photo : undefined;
    },
    async listPhotos(userId, limit, after) {
      const mine = [...db.photos.values()].filter((p) => p.userId === userId).sort((a, b) => newerFirst(keyOf(a), keyOf(b)));
      const rest = after ? mine.filter((p) => newerFirst(after, keyOf(p)) < 0) : mine;
      const photos = rest.slice(0, limit);
      const last = photos.at(-1);
      return { photos, nextKey: rest.length > limit && last ? keyOf(last) : undefined };
    },
    async deletePhoto(userId, photoId) {
      log.push("delete photo");
      const photo = db.photos.get(photoId);
      if (photo?.userId !== userId) return undefined;
      db.photos.delete(photoId);
      if (!db.queue.has(photo.storageKey)) db.queue.set(photo.storageKey, { attempts: 0 });
      return photo.storageKey;
    },

    async enqueueBlobDeletions(keys) {
      queueWrite();
      for (const key of keys) if (!db.queue.has(key)) db.queue.set(key, { attempts: 0 });
    },
    async completeBlobDeletion(key) {
      queueWrite();
      db.queue.delete(key);
    },
    async failBlobDeletion(key, error, retryInMs) {
      queueWrite();
      const row = db.queue.get(key);
      if (row) db.queue.set(key, { attempts: row.attempts + 1, lastError: error, retryInMs });
    },
    async claimDueBlobDeletions(limit) {
      return [...db.queue].slice(0, limit).map(([storageKey, row]) => ({ storageKey, attempts: row.attempts }));
    },
  };
  return db;
}

export interface FakePhotoListCache extends PhotoListCache {
  readonly pages: Map<string, PhotoPage>;
  readonly calls: string[];
}

/** Pages in a Map keyed "<userId> <size> <token>"; invalidate drops every page of the user. */
export function createFakePhotoListCache(): FakePhotoListCache {
  const pages = new Map<string, PhotoPage>();
  const calls: string[] = [];
  return {
    pages,
    calls,
    async get(userId, pageSize, pageToken) {
      calls.push(`get ${userId}`);
      return pages.get(`${userId} ${pageSize} ${pageToken}`);
    },
    async set(userId, pageSize, pageToken, page) {
      calls.push(`set ${userId}`);
      pages.set(`${userId} ${pageSize} ${pageToken}`, page);
    },
    async invalidate(userId) {
      calls.push(`invalidate ${userId}`);
      for (const key of [...pages.keys()]) if (key.startsWith(`${userId} `)) pages.delete(key);
    },
  };
}

export interface RecordedLine {
  readonly level: "info" | "warn" | "error";
  readonly msg: string;
  readonly fields?: Record<string, unknown>;
}

/** Collects what a component logs, for assertions. */
export function createRecordingLogger() {
  const lines: RecordedLine[] = [];
  const at = (level: RecordedLine["level"]) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, msg, fields });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

/** A spooled upload description as the upload pipeline would hand it over. */
export function spooledPhoto(overrides: Partial<{ path: string; sizeBytes: number; contentType: string }> = {}) {
  return {
    path: "/tmp/spool/upload-1",
    contentType: "image/png",
    width: 640,
    height: 480,
    sizeBytes: 1234,
    sha256: "a".repeat(64),
    ...overrides,
  };
}
