// The upload pipeline's refusals: INVALID_ARGUMENT with a google.rpc.ErrorInfo reason, so the gateway
// can answer 415/413/422/400 without reading messages.
import { Code, reasonedError, type ConnectError } from "../../../internal/errors/errors.js";

/** ErrorInfo reasons callers may branch on. */
export const uploadReasons = {
  unsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  photoTooLarge: "PHOTO_TOO_LARGE",
  tooManyPixels: "TOO_MANY_PIXELS",
  emptyUpload: "EMPTY_UPLOAD",
} as const;

/** The bytes are not a JPEG, PNG, WebP or GIF, or their header cannot be read. */
export function unsupportedMediaType(message = "unsupported image type: send JPEG, PNG, WebP or GIF"): ConnectError {
  return reasonedError(Code.InvalidArgument, message, uploadReasons.unsupportedMediaType);
}

/** More bytes arrived than the configured maximum allows. */
export function photoTooLarge(maxBytes: number): ConnectError {
  return reasonedError(Code.InvalidArgument, `photo larger than ${maxBytes} bytes`, uploadReasons.photoTooLarge, {
    maxBytes: String(maxBytes),
  });
}

/** The header declares more pixels than the configured maximum (a decompression bomb, or just too big). */
export function tooManyPixels(width: number, height: number, maxPixels: number): ConnectError {
  return reasonedError(
    Code.InvalidArgument,
    `image of ${width}x${height} pixels exceeds the limit of ${maxPixels} pixels`,
    uploadReasons.tooManyPixels,
    { width: String(width), height: String(height), maxPixels: String(maxPixels) },
  );
}

/** The upload ended before its first byte. */
export function emptyUpload(): ConnectError {
  return reasonedError(Code.InvalidArgument, "empty upload", uploadReasons.emptyUpload);
}
