// Removes EXIF/GPS, XMP, IPTC and comments from a JPEG as it streams by, losslessly: whole metadata
// segments are dropped and every other byte is passed through untouched.
//
// Why a hand-written segment filter rather than a library: sharp (libvips) would decode and re-encode the
// photo (quality loss, CPU, and the full decoded bitmap in memory, which is what the pixel limit guards),
// and no well-kept library strips JPEG segments as a stream. The format makes it small: before the first
// scan a JPEG is a sequence of segments, `FF xx` followed by a 2-byte big-endian length that counts itself,
// except the standalone markers (SOI, EOI, RSTn, TEM) that have no length.
import { unsupportedMediaType } from "./upload-errors.js";

const startOfImage = 0xd8;
const startOfScan = 0xda;
const comment = 0xfe;

/**
 * APPn segments that are kept: APP0 (JFIF), APP2 (ICC profile; also MPF) and APP14 (Adobe colour transform)
 * can change how the image is decoded. Every other APPn is dropped (APP1 Exif and XMP, APP13 IPTC/Photoshop
 * and the vendor ones), an allow-list so an unfamiliar segment cannot carry a location through.
 */
const keptApplicationSegments: ReadonlySet<number> = new Set([0xe0, 0xe2, 0xee]);

function isStandalone(code: number): boolean {
  return code === 0x01 || (code >= 0xd0 && code <= 0xd9);
}

function keeps(code: number): boolean {
  if (code === comment) return false;
  if (code >= 0xe0 && code <= 0xef) return keptApplicationSegments.has(code);
  return true;
}

function malformed(): Error {
  return unsupportedMediaType("malformed JPEG");
}

type State = "soi" | "marker" | "code" | "lengthHigh" | "lengthLow" | "body" | "scan";

/** The synchronous filter behind stripJpegMetadata: push chunks in, get the kept bytes out. */
function createSegmentFilter() {
  let state: State = "soi";
  let soiSeen = 0;
  let code = 0;
  let lengthHigh = 0;
  let remaining = 0;
  let keep = true;

  function afterSegment(): State {
    // From the first scan on, everything (entropy-coded data, later scans and tables, EOI) passes through.
    return code === startOfScan ? "scan" : "marker";
  }

  return {
    push(chunk: Uint8Array): Uint8Array | undefined {
      const out: Uint8Array[] = [];
      let i = 0;
      while (i < chunk.length) {
        switch (state) {
          case "scan":
            out.push(i === 0 ? chunk : chunk.subarray(i));
            i = chunk.length;
            break;
          case "body": {
            const n = Math.min(remaining, chunk.length - i);
            if (keep) out.push(chunk.subarray(i, i + n));
            i += n;
            remaining -= n;
            if (remaining === 0) state = afterSegment();
            break;
          }
          case "soi":
            if (chunk[i++] !== (soiSeen === 0 ? 0xff : startOfImage)) throw malformed();
            if (++soiSeen === 2) {
              out.push(Uint8Array.of(0xff, startOfImage));
              state = "marker";
            }
            break;
          case "marker": {
            // Bytes that are not a marker where one is due are dropped, as decoders skip them.
            const at = chunk.indexOf(0xff, i);
            i = at < 0 ? chunk.length : at + 1;
            if (at >= 0) state = "code";
            break;
          }
          case "code":
            code = chunk[i++];
            if (code === 0xff) break; // a fill byte before the marker code
            if (code === 0x00) state = "marker";
            else if (isStandalone(code)) {
              out.push(Uint8Array.of(0xff, code));
              state = "marker";
            } else state = "lengthHigh";
            break;
          case "lengthHigh":
            lengthHigh = chunk[i++];
            state = "lengthLow";
            break;
          case "lengthLow": {
            const lengthLow = chunk[i++];
            const length = (lengthHigh << 8) | lengthLow;
            if (length < 2) throw malformed();
            keep = keeps(code);
            if (keep) out.push(Uint8Array.of(0xff, code, lengthHigh, lengthLow));
            remaining = length - 2;
            state = remaining === 0 ? afterSegment() : "body";
            break;
          }
        }
      }
      if (out.length === 0) return undefined;
      return out.length === 1 ? out[0] : Buffer.concat(out);
    },
    /** A JPEG that ends before its first scan holds no image. */
    end(): void {
      if (state !== "scan") throw malformed();
    },
  };
}

/**
 * The JPEG read from `source` without its metadata segments (see keptApplicationSegments and COM), every
 * other byte identical, chunk by chunk: it holds no more than one chunk. Stopping the iteration stops
 * `source`. Throws UNSUPPORTED_MEDIA_TYPE when the bytes do not start with SOI, a segment length is
 * below 2, or the stream ends before the first scan (SOS).
 */
export async function* stripJpegMetadata(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const filter = createSegmentFilter();
  for await (const chunk of source) {
    const kept = filter.push(chunk);
    if (kept) yield kept;
  }
  filter.end();
}
