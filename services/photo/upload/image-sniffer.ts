// Tells an upload's image type and dimensions from its first bytes: the type from magic bytes (file-type),
// the dimensions from the header (image-size). Nothing is decoded, so a decompression bomb costs nothing.
import { fileTypeFromBuffer } from "file-type";
import { imageSize } from "image-size";

/** The image types the photo service stores. */
export const imageTypes = ["image/jpeg", "image/png", "image/webp", "image/gif"] as const;
export type ImageType = (typeof imageTypes)[number];

/** file-type's own sample size for streams: enough for every signature it knows. */
export const typeSampleBytes = 4100;

/** The most of an upload buffered to find its dimensions (a JPEG's SOF may follow a large EXIF segment). */
export const headerLimitBytes = 256 * 1024;

export interface Dimensions {
  readonly width: number;
  readonly height: number;
}

/**
 * The type the magic bytes say, or undefined when they are not JPEG, PNG, WebP or GIF (an animated PNG,
 * which file-type reports as image/apng, included). Give it at least `typeSampleBytes` unless the upload
 * is shorter.
 */
export async function detectImageType(prefix: Uint8Array): Promise<ImageType | undefined> {
  const found = await fileTypeFromBuffer(prefix);
  return imageTypes.find((type) => type === found?.mime);
}

/** image-size's name for each type, to check it read the header of the format file-type detected. */
const imageSizeNames: Record<ImageType, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "image/gif": "gif",
};

/**
 * image-size reads through DataViews that reach to the end of the underlying ArrayBuffer and through plain
 * indexing that yields undefined past the end, so on a short prefix it can return numbers made of bytes
 * that never arrived. Hence each prefix is measured twice, followed once by zeros and once by 0xFF: a result
 * that depends on a missing byte differs between the two (or throws). 64 bytes cover its furthest reads past
 * what it bounds-checks (byte 40 of a PNG, GIF or WebP; 9 bytes past a JPEG marker).
 */
const paddingBytes = 64;

/**
 * Width and height from the header of an image of the given type, or undefined when these bytes do not hold
 * a complete, readable header (too short yet, truncated or corrupt). Reads only the given bytes.
 */
export function readDimensions(prefix: Uint8Array, type: ImageType): Dimensions | undefined {
  const padded = new Uint8Array(prefix.length + paddingBytes);
  padded.set(prefix);
  const withZeros = measure(padded, type);
  padded.fill(0xff, prefix.length);
  const withOnes = measure(padded, type);
  if (!withZeros || !withOnes) return undefined;
  if (withZeros.width !== withOnes.width || withZeros.height !== withOnes.height) return undefined;
  return withZeros;
}

function measure(bytes: Uint8Array, type: ImageType): Dimensions | undefined {
  let size: ReturnType<typeof imageSize>;
  try {
    size = imageSize(bytes);
  } catch {
    // image-size throws on anything it cannot parse; to the caller that is simply "not readable".
    return undefined;
  }
  const { width, height } = size;
  if (size.type !== imageSizeNames[type] || !isPositiveInteger(width) || !isPositiveInteger(height)) return undefined;
  return { width, height };
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}
