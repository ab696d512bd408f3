// POST /me/photos: streams the request's photo into LoadPhoto (header first, then chunks) without ever
// holding the file, and cuts the upload off the moment it exceeds the configured size.
import type { Readable } from "node:stream";
import busboy from "busboy";
import type { Request, Response } from "express";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { LoadPhotoRequestSchema, Photo, PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import type { HttpProblem } from "../http-problem.js";
import { httpProblem } from "../middleware/problem-response.js";
import { present } from "./response-shapes.js";

/** Most bytes in one LoadPhoto chunk message. */
export const maxChunkBytes = 64 * 1024;

/**
 * What a multipart body may carry besides the photo's bytes (boundaries, part headers, a few small
 * text fields), so a photo of exactly the maximum size still fits.
 */
export const multipartEnvelopeBytes = 64 * 1024;

export interface PhotoUpload {
  readonly photos: Client<typeof PhotoService>;
  /** The uploading user: the photo's owner. */
  readonly userId: string;
  readonly maxBytes: number;
}

/** The photo inside a request: its display name and its bytes as they arrive. */
interface UploadBody {
  readonly filename: string;
  readonly bytes: AsyncIterable<Uint8Array>;
}

type LoadPhotoMessage = MessageInitShape<typeof LoadPhotoRequestSchema>;

/** One upload's stop switch: the first failure wins, stops reading the request and cancels the call. */
interface UploadControl {
  /** Records `reason` unless a failure is already recorded, stops the upload; returns the recorded failure. */
  fail(reason: Error): Error;
  /** Registers what stopping means for this body (unpipe, pause...). */
  onStop(stop: () => void): void;
  /** Rejects with the failure once the upload stops, so no reader waits on a paused request. */
  readonly stopped: Promise<never>;
  /** Aborted on the first failure: the LoadPhoto call's signal. */
  readonly signal: AbortSignal;
  /** The first failure, if any. */
  readonly failure: Error | undefined;
  /** Stops reading without recording a failure (the call ended while the body was still arriving). */
  halt(reason: Error): void;
}

function createUploadControl(): UploadControl {
  const abort = new AbortController();
  const stops: (() => void)[] = [];
  let failure: Error | undefined;
  let rejectStopped: (reason: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (rejectStopped = reject));
  stopped.catch(() => undefined);
  const halt = (reason: Error) => {
    for (const undo of stops.splice(0)) undo();
    rejectStopped(reason);
  };
  return {
    fail(reason) {
      failure ??= reason;
      halt(failure);
      abort.abort(failure);
      return failure;
    },
    onStop: (undo) => stops.push(undo),
    stopped,
    signal: abort.signal,
    get failure() {
      return failure;
    },
    halt,
  };
}

/**
 * Forwards the photo in `req` (multipart/form-data field `photo`, or a raw image/* body) to LoadPhoto
 * and returns the stored photo. Throws HttpProblem 415 for any other content type; 413 when the
 * Content-Length or the bytes received exceed `maxBytes` (the gRPC call is cancelled and the rest of the
 * request is never read); 400 for a malformed multipart body, a missing `photo` part or a second file
 * part; otherwise what LoadPhoto throws. A request left partly unread is answered with
 * `Connection: close`, so Node does not drain it after the response.
 */
export async function uploadPhoto(req: Request, res: Response, upload: PhotoUpload): Promise<Photo> {
  const control = createUploadControl();
  const onClose = () => {
    if (!res.writableFinished) control.fail(new ConnectError("the client closed the request", Code.Canceled));
  };
  res.once("close", onClose);
  try {
    const kind = uploadKind(req);
    const limit = kind === "multipart" ? upload.maxBytes + multipartEnvelopeBytes : upload.maxBytes;
    const declared = Number(req.get("content-length"));
    if (declared > limit) throw tooLarge(upload.maxBytes);
    const body = kind === "multipart" ? await multipartBody(req, limit, upload.maxBytes, control) : rawBody(req, control);
    const messages = loadPhotoMessages(upload.userId, body, upload.maxBytes, control);
    const loaded = await upload.photos.loadPhoto(messages, { signal: control.signal });
    return present(loaded.photo, "photo");
  } catch (error) {
    // Once the gateway stopped the upload, LoadPhoto's own error is just the cancellation.
    throw control.failure ?? error;
  } finally {
    res.off("close", onClose);
    if (!req.complete) {
      control.halt(control.failure ?? new Error("the upload ended before its body"));
      res.set("Connection", "close");
    }
  }
}

function uploadKind(req: Request): "multipart" | "raw" {
  const mediaType = (req.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (mediaType === "multipart/form-data") return "multipart";
  if (/^image\/[a-z0-9.+-]+$/.test(mediaType)) return "raw";
  throw httpProblem(415, "send the photo as multipart/form-data (field photo) or as a raw image/* body");
}

function tooLarge(maxBytes: number): HttpProblem {
  return httpProblem(413, `the photo is larger than ${maxBytes} bytes`);
}

/** Header first, then the bytes in chunks of at most maxChunkBytes, counted against maxBytes. */
async function* loadPhotoMessages(
  userId: string,
  body: UploadBody,
  maxBytes: number,
  control: UploadControl,
): AsyncGenerator<LoadPhotoMessage> {
  yield { part: { case: "header", value: { userId, filename: body.filename } } };
  let received = 0;
  const source = body.bytes[Symbol.asyncIterator]();
  for (;;) {
    // Racing `stopped` wakes this reader when the upload stops while the request is paused.
    const next = await Promise.race([source.next(), control.stopped]);
    if (next.done) return;
    const bytes = next.value;
    received += bytes.byteLength;
    if (received > maxBytes) throw control.fail(tooLarge(maxBytes));
    for (let offset = 0; offset < bytes.byteLength; offset += maxChunkBytes) {
      yield { part: { case: "chunk", value: bytes.subarray(offset, offset + maxChunkBytes) } };
    }
  }
}

/** A raw image/* body: the request itself, read only as LoadPhoto takes messages. */
function rawBody(req: Request, control: UploadControl): UploadBody {
  control.onStop(() => req.pause());
  // Leaving the loop early must not destroy the request: that would close the socket before the answer.
  const bytes = { [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) as AsyncIterator<Uint8Array> };
  return { filename: filenameFromDisposition(req.get("content-disposition")), bytes };
}

/** The filename (or RFC 5987 filename*) parameter of a Content-Disposition header; "" when absent. */
export function filenameFromDisposition(header: string | undefined): string {
  if (!header) return "";
  const extended = /filename\*\s*=\s*utf-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // Malformed percent-encoding: fall back to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
  if (!plain) return "";
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2];
}

/**
 * Parses a multipart body with busboy and resolves once the `photo` file part begins. Its bytes end
 * only when the whole body has been parsed, so a later second file part or a malformed tail still
 * fails the upload. The whole body is held to `limit` bytes.
 */
function multipartBody(req: Request, limit: number, maxBytes: number, control: UploadControl): Promise<UploadBody> {
  return new Promise<UploadBody>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: "utf8",
        limits: { fields: 16, fieldSize: 1024, parts: 32, headerPairs: 16 },
      });
    } catch (error) {
      reject(malformed(error));
      return;
    }
    let received = 0;
    const countEnvelope = (chunk: Buffer) => {
      received += chunk.byteLength;
      if (received > limit) control.fail(tooLarge(maxBytes));
    };
    control.onStop(() => {
      req.off("data", countEnvelope);
      req.unpipe(parser);
      req.pause();
    });
    // Resolves when the whole body has been parsed; a failure surfaces through control.stopped.
    const parsed = new Promise<void>((resolveParsed) => parser.on("close", resolveParsed));
    parser.on("error", (error) => control.fail(malformed(error)));
    control.stopped.catch(reject);

    let photo: Readable | undefined;
    parser.on("file", (name, stream, info) => {
      if (name !== "photo" || photo) {
        stream.resume();
        control.fail(
          httpProblem(400, "send exactly one file, in the field photo", {
            errors: [{ field: name, message: "only one file part, named photo, is accepted" }],
          }),
        );
        return;
      }
      photo = stream;
      const bodyParsed = Promise.race([parsed, control.stopped]);
      // Awaited only if the photo's bytes are read to their end; a stop before that is reported elsewhere.
      bodyParsed.catch(() => undefined);
      resolve({ filename: info.filename ?? "", bytes: fileBytes(stream, bodyParsed) });
    });
    parser.on("close", () => {
      if (!photo) reject(httpProblem(400, "the form has no photo", { errors: [{ field: "photo", message: "is required" }] }));
    });
    req.on("data", countEnvelope);
    req.pipe(parser);
  });
}

async function* fileBytes(stream: Readable, parsed: Promise<void>): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) yield chunk as Uint8Array;
  await parsed;
}

function malformed(error: unknown): HttpProblem {
  const reason = error instanceof Error ? error.message : "unreadable body";
  return httpProblem(400, `malformed multipart body: ${reason}`);
}
