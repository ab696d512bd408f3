// PhotoStore, KnownUsers and BlobDeletionQueue on PostgreSQL (tables in migrations/): users with their
// tombstones, photo metadata, and the queue of blobs to delete. Database errors become the mesh's errors
// in one function below.
import type pg from "pg";
import { ConnectError, internal, unavailable } from "../../internal/errors/errors.js";
import { isPgUnavailable, pgErrorCode, withTransaction } from "../../internal/stores/postgres.js";
import {
  userDeleted,
  type BlobDeletion,
  type BlobDeletionQueue,
  type KnownUsers,
  type PhotoStore,
  type StoredPhoto,
} from "./photos.js";

/** Everything the photo service keeps in PostgreSQL, on one pool. */
export type PgPhotoStore = PhotoStore & KnownUsers & BlobDeletionQueue;

// First half of the two-int advisory lock key taken per user by admitUser and deleteUser (the second half
// is hashtext(user id)); the two-int key space never meets runMigrations' one-bigint locks.
const userLockSpace = 0x70686f74; // "phot"

const columns = "id, user_id, storage_key, content_type, size_bytes, width, height, sha256, filename, created_at";
// The exact stored timestamp as text: a Date would drop the microseconds and make keyset pages overlap.
const createdKey = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key`;

interface PhotoRow {
  id: string;
  user_id: string;
  storage_key: string;
  content_type: string;
  /** int8 arrives as a string (see internal/stores/postgres.ts). */
  size_bytes: string;
  width: number;
  height: number;
  sha256: string;
  filename: string;
  created_at: Date;
}

/**
 * The photo service's stores on a pg pool. Errors are mapped by pgPhotoStoreError: UNAVAILABLE when the
 * database cannot be reached, FAILED_PRECONDITION (USER_DELETED) for a photo of a user that is gone,
 * INTERNAL otherwise.
 */
export function createPgPhotoStore(pool: pg.Pool): PgPhotoStore {
  const query = <R extends pg.QueryResultRow>(sql: string, values: unknown[]) =>
    mapped(() => pool.query<R>(sql, values));
  const transaction = <T>(fn: (client: pg.PoolClient) => Promise<T>) => mapped(() => withTransaction(pool, fn));
  // Serialises admitUser and deleteUser of one user until the transaction ends.
  const lockUser = (client: pg.PoolClient, userId: string) =>
    client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [userLockSpace, userId]);

  return {
    async admitUser(userId) {
      // The common case, a user already known, needs no lock: a deletion racing it is caught by the
      // foreign key of the photo that follows.
      const known = await query("SELECT 1 FROM users WHERE id = $1", [userId]);
      if (known.rowCount === 1) return true;
      return transaction(async (client) => {
        await lockUser(client, userId);
        // A statement after the lock sees every deletion committed before it.
        const { rows } = await client.query<{ deleted: boolean }>(
          "SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = $1) AS deleted",
          [userId],
        );
        if (rows[0].deleted) return false;
        await client.query("INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", [userId]);
        return true;
      });
    },

    async deleteUser(userId) {
      return transaction(async (client) => {
        await lockUser(client, userId);
        // Waits for photo inserts in flight (they hold a key-share lock on the user through the foreign
        // key) so their keys are collected below; later inserts fail on the foreign key.
        await client.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userId]);
        const { rows } = await client.query<{ storage_key: string }>(
          "SELECT storage_key FROM photos WHERE user_id = $1",
          [userId],
        );
        const keys = rows.map((row) => row.storage_key);
        await client.query(
          "INSERT INTO blob_deletions (storage_key) SELECT unnest($1::text[]) ON CONFLICT (storage_key) DO NOTHING",
          [keys],
        );
        await client.query("INSERT INTO deleted_users (id, deleted_at) VALUES ($1, now()) ON CONFLICT (id) DO NOTHING", [userId]);
        // ON DELETE CASCADE drops the photos' metadata.
        await client.query("DELETE FROM users WHERE id = $1", [userId]);
        return keys;
      });
    },

    async insertPhoto(photo) {
      const { rows } = await query<PhotoRow>(
        `INSERT INTO photos (id, user_id, storage_key, content_type, size_bytes, width, height, sha256, filename, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING ${columns}`,
        [
          photo.id,
          photo.userId,
          photo.storageKey,
          photo.contentType,
          photo.sizeBytes,
          photo.width,
          photo.height,
          photo.sha256,
          photo.filename,
          photo.createdAt,
        ],
      );
      return photoOf(rows[0]);
    },

    async findPhoto(userId, photoId) {
      const { rows } = await query<PhotoRow>(`SELECT ${columns} FROM photos WHERE id = $1 AND user_id = $2`, [
        photoId,
        userId,
      ]);
      return rows[0] && photoOf(rows[0]);
    },

    async listPhotos(userId, limit, after) {
      // One row more than asked tells whether another page follows.
      const { rows } = after
        ? await query<PhotoRow & { created_key: string }>(
            `SELECT ${columns}, ${createdKey} FROM photos
             WHERE user_id = $1 AND (created_at, id) < ($3::timestamptz, $4::uuid)
             ORDER BY created_at DESC, id DESC LIMIT $2`,
            [userId, limit + 1, after.createdAt, after.id],
          )
        : await query<PhotoRow & { created_key: string }>(
            `SELECT ${columns}, ${createdKey} FROM photos
             WHERE user_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2`,
            [userId, limit + 1],
          );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        photos: page.map(photoOf),
        nextKey: rows.length > limit && last ? { createdAt: last.created_key, id: last.id } : undefined,
      };
    },

    async deletePhoto(userId, photoId) {
      // One statement, hence one transaction: the metadata goes and its blob is queued, or neither.
      const { rows } = await query<{ storage_key: string }>(
        `WITH gone AS (
           DELETE FROM photos WHERE id = $1 AND user_id = $2 RETURNING storage_key
         ), queued AS (
           INSERT INTO blob_deletions (storage_key) SELECT storage_key FROM gone
           ON CONFLICT (storage_key) DO NOTHING
         )
         SELECT storage_key FROM gone`,
        [photoId, userId],
      );
      return rows[0]?.storage_key;
    },

    async enqueueBlobDeletions(keys) {
      await query(
        "INSERT INTO blob_deletions (storage_key) SELECT unnest($1::text[]) ON CONFLICT (storage_key) DO NOTHING",
        [keys],
      );
    },

    async completeBlobDeletion(key) {
      await query("DELETE FROM blob_deletions WHERE storage_key = $1", [key]);
    },

    async failBlobDeletion(key, error, retryInMs) {
      await query(
        `UPDATE blob_deletions
         SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
         WHERE storage_key = $1`,
        [key, error, retryInMs / 1000],
      );
    },

    async claimDueBlobDeletions(limit, leaseMs) {
      const { rows } = await query<{ storage_key: string; attempts: number }>(
        `UPDATE blob_deletions d SET next_attempt_at = now() + make_interval(secs => $2)
         WHERE d.storage_key IN (
           SELECT b.storage_key FROM blob_deletions b
           WHERE b.next_attempt_at <= now()
             AND NOT EXISTS (SELECT 1 FROM photos p WHERE p.storage_key = b.storage_key)
           ORDER BY b.next_attempt_at
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         )
         RETURNING d.storage_key, d.attempts`,
        [limit, leaseMs / 1000],
      );
      return rows.map((row): BlobDeletion => ({ storageKey: row.storage_key, attempts: row.attempts }));
    },
  };
}

/**
 * The one place PostgreSQL failures become the mesh's errors: a foreign-key violation (the only foreign
 * key is photos.user_id, so the user was deleted meanwhile) is FAILED_PRECONDITION USER_DELETED; a
 * database that cannot be reached (refused, reset, timed out, shutting down, pool exhausted) is
 * UNAVAILABLE; anything else is INTERNAL. ConnectErrors pass through. The cause stays on the error for
 * the log, never in the message.
 */
export function pgPhotoStoreError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (pgErrorCode(error) === "23503") return userDeleted();
  if (isPgUnavailable(error)) return unavailable("photo store unavailable", error);
  return internal(error);
}

async function mapped<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw pgPhotoStoreError(error);
  }
}

function photoOf(row: PhotoRow): StoredPhoto {
  return {
    id: row.id,
    userId: row.user_id,
    storageKey: row.storage_key,
    contentType: row.content_type,
    sizeBytes: Number(row.size_bytes),
    width: row.width,
    height: row.height,
    sha256: row.sha256,
    filename: row.filename,
    createdAt: row.created_at,
  };
}
