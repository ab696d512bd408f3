// PhotoService's RPC handlers: decode the request (and the upload stream's framing), call the domain,
// shape the response.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { LoadPhotoRequest, PhotoSchema, PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import { invalidArgument, type ConnectError } from "../../internal/errors/errors.js";
import { validateUploadHeader, type Photo, type Photos, type SpooledPhoto } from "./photos.js";

/** Most bytes in one GetPhotoContent chunk message. */
export const maxContentChunkBytes = 64 * 1024;

/** An upload spooled to a temporary file, which the caller must discard. */
export interface SpooledUpload extends SpooledPhoto {
  /** Removes the temporary file; safe to call once the blob store has taken a copy. */
  discard(): Promise<void>;
}

/**
 * Checks and spools an upload's bytes (the upload pipeline, bound to its limits and directory). Throws
 * INVALID_ARGUMENT (ErrorInfo UNSUPPORTED_MEDIA_TYPE, PHOTO_TOO_LARGE, TOO_MANY_PIXELS, EMPTY_UPLOAD) for
 * content it refuses, and rethrows what the chunk iterable throws; leaves no file behind when it throws.
 */
export type SpoolUpload = (chunks: AsyncIterable<Uint8Array>) => Promise<SpooledUpload>;

export interface PhotoHandlersLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface PhotoHandlersDeps {
  readonly photos: Photos;
  readonly spool: SpoolUpload;
  /** Reports a temporary file that could not be removed. */
  readonly logger: PhotoHandlersLogger;
}

/** The PhotoService implementation. Errors are the domain's ConnectErrors, passed through. */
export function createPhotoHandlers(deps: PhotoHandlersDeps) {
  const { photos, spool, logger } = deps;
  return {
    async loadPhoto(requests) {
      const messages = requests[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || first.value.part.case !== "header") throw headerNotFirst();
      const { userId, filename } = first.value.part.value;
      // Refuse a bad header before reading any bytes.
      validateUploadHeader(userId, filename);

      const framing: { error?: ConnectError } = {};
      let spooled: SpooledUpload;
      try {
        spooled = await spool(chunksOf(messages, framing));
      } catch (error) {
        // The pipeline may wrap what the iterable threw; the framing error is the one to answer.
        throw framing.error ?? error;
      }
      try {
        return { photo: photoMessage(await photos.addPhoto(userId, filename, spooled)) };
      } finally {
        await spooled.discard().catch((error: unknown) => {
          logger.warn("could not remove a spooled upload", { path: spooled.path, err: error });
        });
      }
    },

    async getPhoto(req) {
      return { photo: photoMessage(await photos.getPhoto(req.userId, req.photoId)) };
    },

    async *getPhotoContent(req) {
      const { photo, bytes } = await photos.openContent(req.userId, req.photoId);
      yield { part: { case: "photo", value: photoMessage(photo) } };
      for await (const chunk of bytes) {
        for (let offset = 0; offset < chunk.byteLength; offset += maxContentChunkBytes) {
          yield { part: { case: "chunk", value: chunk.subarray(offset, offset + maxContentChunkBytes) } };
        }
      }
    },

    async getPhotos(req) {
      const page = await photos.listPhotos(req.userId, req.pageSize, req.pageToken);
      return { photos: page.photos.map(photoMessage), nextPageToken: page.nextPageToken };
    },

    async deletePhoto(req) {
      await photos.deletePhoto(req.userId, req.photoId);
      return {};
    },
  } satisfies ServiceImpl<typeof PhotoService>;
}

/**
 * The chunk bytes of the messages after the header, empty ones skipped. A second header fails the upload
 * with INVALID_ARGUMENT, kept in `framing` too so the handler answers it whatever the spool does with it.
 */
async function* chunksOf(
  messages: AsyncIterator<LoadPhotoRequest>,
  framing: { error?: ConnectError },
): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const next = await messages.next();
      if (next.done) return;
      const { part } = next.value;
      if (part.case === "chunk") {
        if (part.value.byteLength > 0) yield part.value;
      } else if (part.case === "header") {
        framing.error = invalidArgument("invalid upload stream", [
          { field: "header", description: "must be sent once, as the first message", reason: "UNEXPECTED_HEADER" },
        ]);
        throw framing.error;
      }
    }
  } finally {
    // The spool stopped early (a limit, a bad type): let the request stream go.
    await messages.return?.();
  }
}

function headerNotFirst(): ConnectError {
  return invalidArgument("invalid upload stream", [
    { field: "header", description: "must be the first message of the upload", reason: "REQUIRED" },
  ]);
}

function photoMessage(photo: Photo): MessageInitShape<typeof PhotoSchema> {
  return {
    id: photo.id,
    userId: photo.userId,
    contentType: photo.contentType,
    sizeBytes: BigInt(photo.sizeBytes),
    width: photo.width,
    height: photo.height,
    sha256: photo.sha256,
    createdAt: timestampFromDate(photo.createdAt),
  };
}
