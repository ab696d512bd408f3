// Tiny real images built byte by byte for the upload tests, and sources that feed them in chosen chunks.
import { randomBytes } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";

const ascii = (text: string) => Buffer.from(text, "latin1");

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG header alone: signature and an IHDR (8-bit RGB) declaring any size, e.g. a pixel bomb's. */
export function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk("IHDR", ihdr)]);
}

/** A complete, decodable PNG: IHDR, the zlib-compressed scanlines (filter 0, a colour gradient), IEND. */
export function png(width: number, height: number): Buffer {
  const row = 1 + width * 3;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set([x & 0xff, y & 0xff, (x + y) & 0xff], y * row + 1 + x * 3);
  }
  return Buffer.concat([pngHeader(width, height), pngChunk("IDAT", deflateSync(raw)), pngChunk("IEND", Buffer.alloc(0))]);
}

/**
 * A PNG whose IHDR declares `width`x`height` but whose IDAT is a few bytes of zlib: what a decompression
 * bomb looks like before anyone inflates it.
 */
export function pixelBombPng(width = 100_000, height = 100_000): Buffer {
  return Buffer.concat([pngHeader(width, height), pngChunk("IDAT", deflateSync(Buffer.alloc(1024))), pngChunk("IEND", Buffer.alloc(0))]);
}

/**
 * A complete GIF89a: a two-colour palette and one full-size frame of colour 0, LZW-coded with 3-bit codes
 * (a clear code before every pixel keeps the code size from growing).
 */
export function gif(width: number, height: number): Buffer {
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  screen[4] = 0x80; // global colour table of 2 entries
  const palette = Buffer.from([0, 0, 0, 255, 255, 255]);
  const descriptor = Buffer.alloc(10);
  descriptor[0] = 0x2c;
  descriptor.writeUInt16LE(width, 5);
  descriptor.writeUInt16LE(height, 7);
  const codes: number[] = [];
  for (let i = 0; i < width * height; i++) codes.push(4, 0); // clear, colour 0
  codes.push(5); // end of information
  const packed: number[] = [];
  let bits = 0;
  let count = 0;
  for (const code of codes) {
    bits |= code << count;
    count += 3;
    while (count >= 8) {
      packed.push(bits & 0xff);
      bits >>= 8;
      count -= 8;
    }
  }
  if (count > 0) packed.push(bits & 0xff);
  const blocks: number[] = [];
  for (let i = 0; i < packed.length; i += 255) {
    const block = packed.slice(i, i + 255);
    blocks.push(block.length, ...block);
  }
  return Buffer.concat([ascii("GIF89a"), screen, palette, descriptor, Buffer.from([2, ...blocks, 0, 0x3b])]);
}

/** A 1x1 lossless WebP (VP8L), the one browsers' feature tests decode. */
export const webp1x1 = Buffer.from("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==", "base64");

/** An extended WebP: RIFF, a VP8X chunk with the canvas size, and a VP8L chunk with the same size. */
export function webp(width: number, height: number): Buffer {
  const vp8x = Buffer.alloc(10);
  vp8x.writeUIntLE(width - 1, 4, 3);
  vp8x.writeUIntLE(height - 1, 7, 3);
  const vp8l = Buffer.alloc(13);
  vp8l[0] = 0x2f;
  vp8l.writeUInt32LE((width - 1) | ((height - 1) << 14), 1);
  const riffChunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, "latin1");
    head.writeUInt32LE(data.length, 4);
    return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const body = Buffer.concat([ascii("WEBP"), riffChunk("VP8X", vp8x), riffChunk("VP8L", vp8l)]);
  const head = Buffer.alloc(8);
  head.write("RIFF", 0, "latin1");
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

function segment(marker: number, payload: Uint8Array): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/** An Exif APP1 payload: "Exif\0\0", a big-endian TIFF header with an empty IFD, then GPS text and filler. */
function exifPayload(size: number): Buffer {
  const tiff = Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0]);
  const gps = ascii("GPSLatitude 48.858370 N GPSLongitude 2.294481 E");
  const head = Buffer.concat([ascii("Exif\0\0"), tiff, gps]);
  return Buffer.concat([head, Buffer.alloc(Math.max(0, size - head.length), 0x20)]);
}

export interface TestJpeg {
  /** The JPEG as a camera would send it, metadata included. */
  readonly bytes: Buffer;
  /** The same JPEG with exactly the metadata segments (APP1, APP13, COM) left out. */
  readonly stripped: Buffer;
  /** Everything from SOS to EOI, which must come through byte for byte. */
  readonly scan: Buffer;
}

/**
 * A baseline greyscale JPEG's structure: SOI, APP0 JFIF, APP1 Exif (with GPS text; `exifBytes` of them,
 * split over as many APP1 segments as needed, as large metadata is), APP1 XMP, APP2 ICC, APP13 IPTC, COM,
 * APP14 Adobe, DQT, SOF0 with the dimensions, DHT, SOS, entropy-coded bytes (with a stuffed FF00 and an RST
 * marker), EOI. Only the metadata segments are dropped by the stripper; everything else must survive.
 */
export function jpeg(width: number, height: number, exifBytes = 200): TestJpeg {
  const kept = (bytes: Buffer) => ({ bytes, kept: true });
  const dropped = (bytes: Buffer) => ({ bytes, kept: false });
  const exif: Buffer[] = [];
  for (let left = exifBytes; left > 0; left -= 65_000) exif.push(segment(0xe1, exifPayload(Math.min(left, 65_000))));
  const sof = Buffer.from([8, 0, 0, 0, 0, 1, 1, 0x11, 0]);
  sof.writeUInt16BE(height, 1);
  sof.writeUInt16BE(width, 3);
  const quantisation = Buffer.alloc(65, 1);
  quantisation[0] = 0;
  const huffman = Buffer.concat([Buffer.from([0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0])]);
  const scan = Buffer.concat([
    segment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
    Buffer.from([0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd0, 0x78, 0x9a, 0xbc]),
    Buffer.from([0xff, 0xd9]),
  ]);
  const parts = [
    kept(Buffer.from([0xff, 0xd8])),
    kept(segment(0xe0, Buffer.concat([ascii("JFIF\0"), Buffer.from([1, 1, 0, 0, 1, 0, 1, 0, 0])]))),
    ...exif.map(dropped),
    dropped(segment(0xe1, ascii('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>48,51.5N</exif:GPSLatitude></x:xmpmeta>'))),
    kept(segment(0xe2, Buffer.concat([ascii("ICC_PROFILE\0"), Buffer.from([1, 1]), Buffer.alloc(128, 7)]))),
    dropped(segment(0xed, Buffer.concat([ascii("Photoshop 3.0\0"), ascii("8BIM"), Buffer.alloc(20, 3)]))),
    dropped(segment(0xfe, ascii("taken at home, GPS on"))),
    kept(segment(0xee, Buffer.concat([ascii("Adobe"), Buffer.from([0, 100, 0, 0, 0, 0, 1])]))),
    kept(segment(0xdb, quantisation)),
    kept(segment(0xc0, sof)),
    kept(segment(0xc4, huffman)),
    kept(scan),
  ];
  return {
    bytes: Buffer.concat(parts.map((p) => p.bytes)),
    stripped: Buffer.concat(parts.filter((p) => p.kept).map((p) => p.bytes)),
    scan,
  };
}

/** Feeds `bytes` in chunks of `size` bytes (the last one shorter). */
export async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** A source that records how much it yielded and whether it was stopped before its end. */
export interface ObservedSource extends AsyncIterable<Uint8Array> {
  readonly yieldedBytes: number;
  readonly finished: boolean;
  readonly stopped: boolean;
}

/** `head`, then `totalBytes - head.length` zero bytes in `chunkSize` chunks, watched. */
export function observedSource(head: Uint8Array, totalBytes: number, chunkSize = 64 * 1024): ObservedSource {
  const state = { yieldedBytes: 0, finished: false, stopped: false };
  const filler = new Uint8Array(chunkSize);
  async function* generate(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      for (let i = 0; i < head.length; i += chunkSize) {
        const chunk = head.subarray(i, i + chunkSize);
        state.yieldedBytes += chunk.length;
        yield chunk;
      }
      while (state.yieldedBytes < totalBytes) {
        const chunk = filler.subarray(0, Math.min(chunkSize, totalBytes - state.yieldedBytes));
        state.yieldedBytes += chunk.length;
        yield chunk;
      }
      state.finished = true;
    } finally {
      state.stopped = !state.finished;
    }
  }
  return {
    [Symbol.asyncIterator]: generate,
    get yieldedBytes() {
      return state.yieldedBytes;
    },
    get finished() {
      return state.finished;
    },
    get stopped() {
      return state.stopped;
    },
  };
}

/** A structurally valid PNG (IHDR, one IDAT of `dataBytes` random bytes, IEND), large without being slow to make. */
export function largePng(width: number, height: number, dataBytes: number): Buffer {
  return Buffer.concat([pngHeader(width, height), pngChunk("IDAT", randomBytes(dataBytes)), pngChunk("IEND", Buffer.alloc(0))]);
}
