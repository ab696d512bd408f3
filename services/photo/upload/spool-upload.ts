// The upload pipeline: checks what arrives (size while streaming, type from magic bytes, pixel count from the
// header), strips JPEG metadata and spools the result to a temporary file, holding at most the header
// window (headerLimitBytes) plus one chunk in memory whatever the upload's size.
import { createHash, randomUUID } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import {
  detectImageType,
  headerLimitBytes,
  readDimensions,
  typeSampleBytes,
  type ImageType,
} from "./image-sniffer.js";
import { stripJpegMetadata } from "./jpeg-metadata-stripper.js";
import { emptyUpload, photoTooLarge, tooManyPixels, unsupportedMediaType } from "./upload-errors.js";

export interface UploadLimits {
  /** The most bytes an upload may send (counted as received, before metadata is stripped). */
  readonly maxBytes: number;
  /** The most pixels (width × height) the header may declare. */
  readonly maxPixels: number;
}

export interface SpooledUpload {
  readonly path: string;
  readonly contentType: ImageType;
  readonly width: number;
  readonly height: number;
  /** Size of the stored bytes (after metadata stripping). */
  readonly sizeBytes: number;
  /** SHA-256 of the stored bytes, lowercase hex. */
  readonly sha256: string;
  /** Deletes the temp file; safe to call twice. */
  discard(): Promise<void>;
}

interface ImageHeader {
  readonly contentType: ImageType;
  readonly width: number;
  readonly height: number;
}

/**
 * Reads an upload into a new file in `dir` (which must exist), fsynced, and describes what was stored.
 * Bytes are refused as soon as they can be: the size on the chunk that crosses `maxBytes`, the type and
 * pixel count from the first bytes (at most headerLimitBytes), before anything is written. On any failure
 * the source is stopped (its iterator returned, so the sender is told) and the temp file removed.
 *
 * Throws ConnectError INVALID_ARGUMENT with ErrorInfo reason UNSUPPORTED_MEDIA_TYPE (not JPEG, PNG, WebP
 * or GIF by magic bytes, or a header that cannot be read), PHOTO_TOO_LARGE, TOO_MANY_PIXELS or
 * EMPTY_UPLOAD; other failures (disk, the source's own errors) propagate unchanged.
 */
export async function spoolUpload(
  chunks: AsyncIterable<Uint8Array>,
  options: { dir: string; limits: UploadLimits },
): Promise<SpooledUpload> {
  const { dir, limits } = options;
  const received = limitSize(chunks, limits.maxBytes)[Symbol.asyncIterator]();
  let path: string | undefined;
  try {
    const { header, buffered } = await readHeader(received, limits);
    path = join(dir, `upload-${randomUUID()}`);
    const body = replay(buffered, received);
    const stored = header.contentType === "image/jpeg" ? stripJpegMetadata(body) : body;
    const { sizeBytes, sha256 } = await writeSpool(path, stored);
    const spooled = path;
    return { path, ...header, sizeBytes, sha256, discard: () => rm(spooled, { force: true }) };
  } catch (error) {
    // The original error is what the caller must see, not a failure of the source to stop.
    await received.return?.().catch(() => undefined);
    if (path !== undefined) await rm(path, { force: true });
    throw error;
  }
}

/** The non-empty chunks of `chunks`, failing on the one that takes the total past `maxBytes`. */
async function* limitSize(chunks: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  let total = 0;
  // Throwing inside for-await returns the source's iterator: the sender is stopped there and then.
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    total += chunk.length;
    if (total > maxBytes) throw photoTooLarge(maxBytes);
    yield chunk;
  }
}

/**
 * Buffers the first bytes until the type and dimensions are known, at most headerLimitBytes (or maxBytes,
 * past which nothing is accepted anyway), and enforces the pixel limit. Returns the header and the bytes
 * read so far, which the caller must replay before the rest of `received`.
 */
async function readHeader(
  received: AsyncIterator<Uint8Array>,
  limits: UploadLimits,
): Promise<{ header: ImageHeader; buffered: Uint8Array[] }> {
  const prefix = new Uint8Array(Math.min(headerLimitBytes, limits.maxBytes));
  let filled = 0;
  let overflow: Uint8Array | undefined;
  let type: ImageType | undefined;

  /** The header, undefined while the bytes so far do not hold it; throws when the image is refused. */
  const identify = async (): Promise<ImageHeader | undefined> => {
    const bytes = prefix.subarray(0, filled);
    if (type === undefined) {
      type = await detectImageType(bytes);
      if (type === undefined) throw unsupportedMediaType();
    }
    const dimensions = readDimensions(bytes, type);
    if (dimensions === undefined) return undefined;
    if (dimensions.width * dimensions.height > limits.maxPixels) {
      throw tooManyPixels(dimensions.width, dimensions.height, limits.maxPixels);
    }
    return { contentType: type, ...dimensions };
  };
  const buffered = () => (overflow ? [prefix.subarray(0, filled), overflow] : [prefix.subarray(0, filled)]);

  // Each attempt parses the whole prefix, so attempts come at doubling sizes, not on every (maybe 1-byte)
  // chunk; the first waits for file-type's sample size so a short prefix is not mistaken for another type.
  let nextAttempt = typeSampleBytes;
  for (;;) {
    const next = await received.next();
    if (next.done) break;
    const taken = Math.min(next.value.length, prefix.length - filled);
    prefix.set(next.value.subarray(0, taken), filled);
    filled += taken;
    if (taken < next.value.length) overflow = next.value.subarray(taken);
    if (filled === prefix.length) break;
    if (filled >= nextAttempt) {
      const header = await identify();
      if (header) return { header, buffered: buffered() };
      nextAttempt = filled * 2;
    }
  }
  if (filled === 0) throw emptyUpload();
  // The stream ended or the window is full: no more bytes will help.
  const header = await identify();
  if (header === undefined) throw unsupportedMediaType("unreadable image header");
  return { header, buffered: buffered() };
}

/** The buffered chunks, released as they go, then the rest of `rest`. */
async function* replay(buffered: Uint8Array[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  for (let chunk = buffered.shift(); chunk !== undefined; chunk = buffered.shift()) yield chunk;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Writes `stored` to a new file at `path` with backpressure and fsyncs it; the size and hash of what was written. */
async function writeSpool(path: string, stored: AsyncIterable<Uint8Array>): Promise<{ sizeBytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  // Opened here rather than by the stream so the file exists before any write and is closed (close() waits
  // for the stream to let go of it) before the caller's cleanup removes it.
  const file = await open(path, "wx", 0o600);
  try {
    await pipeline(
      stored,
      async function* (source: AsyncIterable<Uint8Array>) {
        for await (const chunk of source) {
          hash.update(chunk);
          sizeBytes += chunk.length;
          yield chunk;
        }
      },
      // flush: fsync before the stream closes the file; pipeline settles only once it is closed.
      file.createWriteStream({ flush: true }),
    );
  } finally {
    await file.close();
  }
  return { sizeBytes, sha256: hash.digest("hex") };
}
