// Blobs as files in a local directory: dir/<userId>/<photoId>, written atomically (temp file, fsync, rename),
// so a reader sees the old blob, the new one or none, never part of one. The temp file is a hard link to
// the spooled upload when both are on one filesystem, so the bytes are written once; a copy otherwise.
import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, link, mkdir, open, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BlobStore } from "../photos.js";
import { internal, notFound, unavailable } from "../../../internal/errors/errors.js";
import { blobChunks } from "./blob-chunks.js";
import { parseBlobKey } from "./blob-key.js";

export interface LocalBlobStoreOptions {
  /** The root directory; created on the first put. */
  readonly dir: string;
  /**
   * Gives `existing` the second name `target` (fs.link, the default; tests inject failures). When it fails
   * because hard links cannot be made there (linkRefusals), the store copies, for this put and the next.
   */
  readonly link?: (existing: string, target: string) => Promise<void>;
}

/**
 * Why link() may fail where a copy works: another filesystem (EXDEV), or one without hard links (EPERM,
 * ENOTSUP/EOPNOTSUPP). None of them goes away, so the store stops trying.
 */
export const linkRefusals: ReadonlySet<string> = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP"]);

/** Size of the chunks a get streams. */
export const localReadChunkBytes = 64 * 1024;

/** Temp files start with a dot, so they never look like a photo id. */
const tempPrefix = ".";
/** How often a put re-creates the user directory that a concurrent delete removed under it. */
const maxDirectoryRaces = 3;

/**
 * A BlobStore on the local filesystem. Malformed keys throw INVALID_ARGUMENT before the filesystem is
 * touched; a full or failing disk throws UNAVAILABLE; anything else INTERNAL with the cause kept.
 */
export function createLocalBlobStore(options: LocalBlobStoreOptions): BlobStore {
  const root = resolve(options.dir);
  const linkFile = options.link ?? link;
  let linking = true;

  /** Makes target a new file with source's bytes: a link to it while links work, else a copy. */
  async function place(source: string, target: string): Promise<void> {
    if (linking) {
      try {
        await linkFile(source, target);
        return;
      } catch (error) {
        if (!linkRefusals.has(codeOf(error) ?? "")) throw error;
        linking = false;
      }
    }
    await copyFile(source, target, constants.COPYFILE_EXCL);
  }

  function pathsOf(key: string) {
    const { userId, photoId } = parseBlobKey(key);
    const userDir = join(root, userId);
    return { userDir, photoId, blobPath: join(userDir, photoId) };
  }

  return {
    async put(key, file) {
      const { userDir, photoId, blobPath } = pathsOf(key);
      const tempPath = join(userDir, `${tempPrefix}${photoId}.${randomUUID()}.tmp`);
      try {
        await placeInDirectory(place, file.path, tempPath, userDir);
        const handle = await open(tempPath, "r+");
        try {
          const { size } = await handle.stat();
          if (size !== file.sizeBytes) {
            throw new Error(`the spooled file holds ${size} bytes where ${file.sizeBytes} were announced`);
          }
          // Linked, this flushes the spooled bytes themselves: the upload pipeline does not fsync its file.
          await handle.sync();
        } finally {
          await handle.close();
        }
        // No race with a delete here: the temp file keeps the directory from being removed.
        await rename(tempPath, blobPath);
      } catch (error) {
        await rm(tempPath, { force: true }).catch(() => undefined);
        throw localStoreError(error);
      }
      await syncDirectory(userDir);
    },

    async get(key) {
      const { blobPath } = pathsOf(key);
      let handle;
      try {
        handle = await open(blobPath, "r");
      } catch (error) {
        if (codeOf(error) === "ENOENT") throw notFound("blob not found");
        throw localStoreError(error);
      }
      const stream = handle.createReadStream({ highWaterMark: localReadChunkBytes });
      return blobChunks({ chunks: stream[Symbol.asyncIterator](), destroy: () => stream.destroy() }, localStoreError);
    },

    async delete(key) {
      const { userDir, blobPath } = pathsOf(key);
      try {
        await unlink(blobPath);
      } catch (error) {
        if (codeOf(error) !== "ENOENT") throw localStoreError(error);
      }
      try {
        await rmdir(userDir);
      } catch (error) {
        // Another blob of the user (or a put in progress) keeps the directory; a concurrent delete took it.
        if (!["ENOTEMPTY", "EEXIST", "ENOENT"].includes(codeOf(error) ?? "")) throw localStoreError(error);
      }
    },
  };
}

/**
 * Places source at target (see place), creating target's directory when it is missing: tried first without
 * a mkdir, which the directory of a user's earlier blobs makes unnecessary. A delete of the user's last blob
 * may remove the directory between the mkdir and the placing; then it is created again.
 */
async function placeInDirectory(
  place: (source: string, target: string) => Promise<void>,
  source: string,
  target: string,
  directory: string,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await place(source, target);
      return;
    } catch (error) {
      // ENOENT names no path: only a missing directory, not a missing source, is worth a mkdir.
      if (codeOf(error) !== "ENOENT" || attempt >= maxDirectoryRaces || !(await exists(source))) throw error;
    }
    await mkdir(directory, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes the rename durable. Best effort: some filesystems refuse to fsync a directory. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The blob is in place either way; only its survival of a power cut is less certain.
  }
}

// Errors that mean the disk cannot take or give bytes now, rather than a bug.
const unavailableCodes = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS", "EMFILE", "ENFILE", "EBUSY"]);

/** Maps a filesystem error: disk trouble → UNAVAILABLE, anything else → INTERNAL (the cause kept for logs). */
function localStoreError(error: unknown) {
  if (unavailableCodes.has(codeOf(error) ?? "")) return unavailable("local blob storage is unavailable", error);
  return internal(error);
}

function codeOf(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}
