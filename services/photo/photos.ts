// The photo domain: uploads, reads, listing and deletion of a user's photos, with their rules (blob first,
// then metadata; ownership; tombstoned users; blob deletions that survive failures). Storage, blobs and the
// list cache are interfaces declared here and passed in.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import {
  Code,
  ConnectError,
  failedPrecondition,
  invalidArgument,
  notFound,
  type FieldViolation,
} from "../../internal/errors/errors.js";

/** ErrorInfo reasons callers may branch on. */
export const reasons = {
  userDeleted: "USER_DELETED",
} as const;

/** NOT_FOUND, the same for a photo that does not exist and for another user's, so ids cannot be probed. */
export function photoNotFound(): ConnectError {
  return notFound("photo not found");
}

/** FAILED_PRECONDITION, reason USER_DELETED: the user was deleted, so nothing may be added for it. */
export function userDeleted(): ConnectError {
  return failedPrecondition("the user has been deleted", reasons.userDeleted);
}

/** A photo as callers see it. */
export interface Photo {
  readonly id: string;
  readonly userId: string;
  /** Detected from the bytes: image/jpeg, image/png, image/webp or image/gif. */
  readonly contentType: string;
  readonly sizeBytes: number;
  readonly width: number;
  readonly height: number;
  /** Hex SHA-256 of the stored bytes. */
  readonly sha256: string;
  /** The client's name for the file, for display only. */
  readonly filename: string;
  readonly createdAt: Date;
}

/** A photo as stored: with the key of its blob. */
export interface StoredPhoto extends Photo {
  /** "<userId>/<photoId>". */
  readonly storageKey: string;
}

/** An upload checked and spooled to a temporary file (the upload pipeline's result; the caller discards it). */
export interface SpooledPhoto {
  readonly path: string;
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
  readonly sizeBytes: number;
  readonly sha256: string;
}

/** Where photo bytes live. Keys are "<userId>/<photoId>". */
export interface BlobStore {
  /** Stores the spooled file under key (the caller discards the temp file afterwards). Throws unavailable(...) when the backend cannot be reached. */
  put(key: string, file: { path: string; sizeBytes: number; contentType: string }): Promise<void>;
  /** Streams the blob's bytes; throws notFound(...) when there is none. */
  get(key: string): Promise<AsyncIterable<Uint8Array>>;
  /** Removes the blob; succeeds when it is already gone. Throws unavailable(...) on backend trouble. */
  delete(key: string): Promise<void>;
}

/**
 * Where a page of photos ends: the (created_at, id) of its last photo. createdAt is the stored timestamp
 * exactly (RFC 3339, UTC, microseconds), so the next page starts right after it.
 */
export interface PageKey {
  readonly createdAt: string;
  readonly id: string;
}

export interface StoredPhotoPage {
  readonly photos: readonly StoredPhoto[];
  /** The key of the last photo when more follow; undefined on the last page. */
  readonly nextKey?: PageKey;
}

/**
 * The users this service knows of, with tombstones. Both methods serialise with each other per user, so a
 * registration (or a first upload) and a deletion of the same user never interleave. Both throw
 * UNAVAILABLE when the database cannot be reached and INTERNAL for anything else it rejects.
 */
export interface KnownUsers {
  /**
   * Makes the user known (idempotent). False, with nothing written, when the user was deleted: a tombstone
   * stops a late upload or a redelivered registration from bringing it back.
   */
  admitUser(userId: string): Promise<boolean>;
  /**
   * In one transaction: queues the blob keys of the user's photos for deletion, tombstones the user and
   * deletes it (its photos go with it). Resolves with those keys; a user already deleted or never known
   * gets its tombstone and resolves with none.
   */
  deleteUser(userId: string): Promise<string[]>;
}

/**
 * Photo metadata. Every method throws UNAVAILABLE when the database cannot be reached and INTERNAL for
 * anything else it rejects.
 */
export interface PhotoStore {
  /** FAILED_PRECONDITION (reason USER_DELETED) when the user is not (any longer) known. */
  insertPhoto(photo: StoredPhoto): Promise<StoredPhoto>;
  /** The photo when it exists AND belongs to userId; undefined otherwise. */
  findPhoto(userId: string, photoId: string): Promise<StoredPhoto | undefined>;
  /** Up to limit photos of the user, newest first by (createdAt, id), strictly after `after` when given. */
  listPhotos(userId: string, limit: number, after?: PageKey): Promise<StoredPhotoPage>;
  /**
   * Deletes the user's photo and queues its blob key for deletion, in one transaction. Resolves with that
   * key, or undefined (nothing written) when the user has no such photo.
   */
  deletePhoto(userId: string, photoId: string): Promise<string | undefined>;
}

/** A blob queued for deletion, as the janitor claims it. */
export interface BlobDeletion {
  readonly storageKey: string;
  /** Failed attempts so far. */
  readonly attempts: number;
}

/**
 * Blobs waiting to be deleted (the blob_deletions table). Every method throws UNAVAILABLE when the
 * database cannot be reached and INTERNAL for anything else it rejects.
 */
export interface BlobDeletionQueue {
  /** Queues keys, due at once; a key already queued keeps its row. */
  enqueueBlobDeletions(keys: readonly string[]): Promise<void>;
  /** Removes the key's row: its blob is gone. A missing row is fine. */
  completeBlobDeletion(key: string): Promise<void>;
  /** Records a failed attempt: attempts + 1, the error text, next attempt retryInMs from now. */
  failBlobDeletion(key: string, error: string, retryInMs: number): Promise<void>;
  /**
   * Claims up to limit due rows, oldest due first, by moving their next attempt leaseMs ahead: other
   * claimers skip them meanwhile, and a claimer that dies leaves them to be retried after the lease. Never
   * claims the key of a blob that photo metadata still points at.
   */
  claimDueBlobDeletions(limit: number, leaseMs: number): Promise<BlobDeletion[]>;
}

/** One page of a user's photos, as answered and cached. */
export interface PhotoPage {
  readonly photos: readonly Photo[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/**
 * Cached pages of users' photo lists, all pages of a user dropped at once. Never throws: an outage is a
 * miss, and writes become no-ops.
 */
export interface PhotoListCache {
  get(userId: string, pageSize: number, pageToken: string): Promise<PhotoPage | undefined>;
  set(userId: string, pageSize: number, pageToken: string, page: PhotoPage): Promise<void>;
  invalidate(userId: string): Promise<void>;
}

export interface PhotosLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A photo and its bytes, in order. */
export interface PhotoContent {
  readonly photo: Photo;
  readonly bytes: AsyncIterable<Uint8Array>;
}

/**
 * The photo service's operations. Bad ids or paging input throw INVALID_ARGUMENT naming every bad field
 * (proto3 JSON names) before anything else happens. Store and blob store outages surface as UNAVAILABLE.
 */
export interface Photos {
  /**
   * Stores an upload already checked and spooled: makes the user known if its registration event has not
   * arrived yet, stores the blob, then the metadata. FAILED_PRECONDITION (reason USER_DELETED) when the
   * user was deleted. If the metadata cannot be written the blob is deleted again (or queued for deletion).
   */
  addPhoto(userId: string, filename: string, spooled: SpooledPhoto): Promise<Photo>;
  /** NOT_FOUND for a missing photo and for another user's alike. */
  getPhoto(userId: string, photoId: string): Promise<Photo>;
  /** The metadata and a stream of the bytes; NOT_FOUND as getPhoto. */
  openContent(userId: string, photoId: string): Promise<PhotoContent>;
  /**
   * A page of the user's photos, newest first. pageSize 0 means the default; a size outside
   * 0..maxPageSize or a token not from a previous page is INVALID_ARGUMENT.
   */
  listPhotos(userId: string, pageSize: number, pageToken: string): Promise<PhotoPage>;
  /**
   * Deletes the photo's metadata, then its blob (a blob that cannot be deleted now is retried by the
   * janitor). NOT_FOUND for a missing photo and for another user's alike.
   */
  deletePhoto(userId: string, photoId: string): Promise<void>;
}

export interface PhotosDeps {
  readonly store: PhotoStore;
  readonly users: Pick<KnownUsers, "admitUser">;
  readonly deletions: Pick<BlobDeletionQueue, "enqueueBlobDeletions" | "completeBlobDeletion" | "failBlobDeletion">;
  readonly blobs: BlobStore;
  readonly cache: PhotoListCache;
  readonly pagination: { readonly defaultPageSize: number; readonly maxPageSize: number };
  /** Reports clean-up that failed (a blob left behind, a deletion left to the janitor). */
  readonly logger: PhotosLogger;
  /** Epoch milliseconds; tests inject their own. */
  readonly clock?: () => number;
}

/** Longest filename kept, in characters. */
export const maxFilenameLength = 255;
// Control (Cc), format (Cf), lone surrogates (Cs), line/paragraph separators: nothing a display name needs.
const invisible = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

export function createPhotos(deps: PhotosDeps): Photos {
  const { store, users, deletions, blobs, cache, pagination, logger } = deps;
  const clock = deps.clock ?? Date.now;

  async function ownPhoto(userId: string, photoId: string): Promise<StoredPhoto> {
    const violations: FieldViolation[] = [];
    checkUuid(userId, "userId", violations);
    checkUuid(photoId, "photoId", violations);
    throwIfAny(violations);
    const photo = await store.findPhoto(userId, photoId);
    if (!photo) throw photoNotFound();
    return photo;
  }

  /** After a failed metadata write: the blob must not outlive it. Never throws. */
  async function discardBlob(key: string): Promise<void> {
    try {
      await blobs.delete(key);
      return;
    } catch (error) {
      logger.warn("could not delete the blob of a failed upload; queueing it", { storageKey: key, err: error });
    }
    try {
      await deletions.enqueueBlobDeletions([key]);
    } catch (error) {
      logger.error("blob of a failed upload left behind", { storageKey: key, err: error });
    }
  }

  return {
    async addPhoto(userId, filename, spooled) {
      const name = validateUploadHeader(userId, filename);
      if (!(await users.admitUser(userId))) throw userDeleted();

      const id = randomUUID();
      const storageKey = `${userId}/${id}`;
      await blobs.put(storageKey, { path: spooled.path, sizeBytes: spooled.sizeBytes, contentType: spooled.contentType });
      let stored: StoredPhoto;
      try {
        stored = await store.insertPhoto({
          id,
          userId,
          storageKey,
          contentType: spooled.contentType,
          sizeBytes: spooled.sizeBytes,
          width: spooled.width,
          height: spooled.height,
          sha256: spooled.sha256,
          filename: name,
          createdAt: new Date(clock()),
        });
      } catch (error) {
        await discardBlob(storageKey);
        throw error;
      }
      await cache.invalidate(userId);
      return photoOf(stored);
    },

    async getPhoto(userId, photoId) {
      return photoOf(await ownPhoto(userId, photoId));
    },

    async openContent(userId, photoId) {
      const photo = await ownPhoto(userId, photoId);
      try {
        return { photo: photoOf(photo), bytes: await blobs.get(photo.storageKey) };
      } catch (error) {
        // A deletion committed since the metadata was read: the photo is gone, as far as the caller knows.
        if (error instanceof ConnectError && error.code === Code.NotFound) throw photoNotFound();
        throw error;
      }
    },

    async listPhotos(userId, pageSize, pageToken) {
      const violations: FieldViolation[] = [];
      checkUuid(userId, "userId", violations);
      if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > pagination.maxPageSize) {
        violations.push({
          field: "pageSize",
          description: `must be between 0 and ${pagination.maxPageSize} (0 means ${pagination.defaultPageSize})`,
          reason: "OUT_OF_RANGE",
        });
      }
      const after = pageToken === "" ? undefined : decodePageToken(pageToken);
      if (after === null) {
        violations.push({ field: "pageToken", description: "is not a token from a previous page", reason: "INVALID_FORMAT" });
      }
      throwIfAny(violations);

      const size = pageSize === 0 ? pagination.defaultPageSize : pageSize;
      const cached = await cache.get(userId, size, pageToken);
      if (cached) return cached;
      const page = await store.listPhotos(userId, size, after ?? undefined);
      const result: PhotoPage = {
        photos: page.photos.map(photoOf),
        nextPageToken: page.nextKey ? encodePageToken(page.nextKey) : "",
      };
      await cache.set(userId, size, pageToken, result);
      return result;
    },

    async deletePhoto(userId, photoId) {
      const violations: FieldViolation[] = [];
      checkUuid(userId, "userId", violations);
      checkUuid(photoId, "photoId", violations);
      throwIfAny(violations);

      const storageKey = await store.deletePhoto(userId, photoId);
      if (storageKey === undefined) throw photoNotFound();
      await cache.invalidate(userId);
      await deleteQueuedBlobs([storageKey], { blobs, deletions, logger });
    },
  };
}

/**
 * Checks an upload's header before its bytes are read: userId a UUID, filename at most 255 characters
 * without control or invisible characters. Returns the filename trimmed and NFC-normalised; throws
 * INVALID_ARGUMENT naming each bad field.
 */
export function validateUploadHeader(userId: string, filename: string): string {
  const violations: FieldViolation[] = [];
  checkUuid(userId, "userId", violations);
  const name = filename.normalize("NFC").trim();
  if ([...name].length > maxFilenameLength) {
    violations.push({ field: "filename", description: `must be at most ${maxFilenameLength} characters`, reason: "TOO_LONG" });
  }
  if (invisible.test(name)) {
    violations.push({
      field: "filename",
      description: "must not contain control or invisible formatting characters",
      reason: "INVALID_CHARACTERS",
    });
  }
  throwIfAny(violations);
  return name;
}

/**
 * Deletes blobs whose keys are already queued (their metadata is gone): each success removes the key's
 * queue row, each failure is recorded on it and left to the janitor. Never throws.
 */
export async function deleteQueuedBlobs(
  keys: readonly string[],
  deps: {
    readonly blobs: Pick<BlobStore, "delete">;
    readonly deletions: Pick<BlobDeletionQueue, "completeBlobDeletion" | "failBlobDeletion">;
    readonly logger: Pick<PhotosLogger, "warn">;
  },
): Promise<void> {
  for (const key of keys) {
    try {
      await deps.blobs.delete(key);
    } catch (error) {
      deps.logger.warn("blob delete failed; the janitor will retry it", { storageKey: key, err: error });
      // Due at once: the janitor's next pass tries again, and backs off from there.
      await deps.deletions.failBlobDeletion(key, describeError(error), 0).catch(() => undefined);
      continue;
    }
    try {
      await deps.deletions.completeBlobDeletion(key);
    } catch (error) {
      // The janitor will delete the blob again (a no-op) and then the row.
      deps.logger.warn("blob deleted but its queue row stays", { storageKey: key, err: error });
    }
  }
}

/** The public part of a stored photo (never the storage key). */
export function photoOf(photo: StoredPhoto): Photo {
  return {
    id: photo.id,
    userId: photo.userId,
    contentType: photo.contentType,
    sizeBytes: photo.sizeBytes,
    width: photo.width,
    height: photo.height,
    sha256: photo.sha256,
    filename: photo.filename,
    createdAt: photo.createdAt,
  };
}

// RFC 3339 in UTC with up to microseconds, as the store writes PageKey.createdAt.
const pageKeyTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const pageTokenSchema = z.tuple([z.string().regex(pageKeyTime), z.uuid()]);

/** The opaque token for the page after `key`: base64url of the key. */
export function encodePageToken(key: PageKey): string {
  return Buffer.from(JSON.stringify([key.createdAt, key.id]), "utf8").toString("base64url");
}

/** The key inside a token from encodePageToken, or null when the token is not one. */
export function decodePageToken(token: string): PageKey | null {
  if (token.length > 200 || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  const parsed = pageTokenSchema.safeParse(json);
  if (!parsed.success || Number.isNaN(Date.parse(parsed.data[0]))) return null;
  return { createdAt: parsed.data[0], id: parsed.data[1] };
}

/** Appends REQUIRED or INVALID_FORMAT unless the value is a UUID. */
export function checkUuid(value: string, field: string, violations: FieldViolation[]): void {
  if (value === "") violations.push({ field, description: "must not be empty", reason: "REQUIRED" });
  else if (!z.uuid().safeParse(value).success) {
    violations.push({ field, description: "must be a UUID", reason: "INVALID_FORMAT" });
  }
}

function throwIfAny(violations: readonly FieldViolation[]): void {
  if (violations.length > 0) throw invalidArgument("invalid request", violations);
}

/** A short text for the blob_deletions.last_error column (never a stack). */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 500);
}
