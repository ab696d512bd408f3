// GET .../photos/:photoId/content: a photo's bytes streamed from GetPhotoContent with validators
// (ETag = the sha256) and headers that keep the browser from ever reading it as anything but an image.
import { pipeline } from "node:stream/promises";
import type { Request, Response } from "express";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { GetPhotoContentResponse, Photo, PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import { present } from "./response-shapes.js";

/** The only types served as themselves; anything else goes out as application/octet-stream. */
const imageTypes: ReadonlySet<string> = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);

export function etagOf(photo: Photo): string {
  return `"${photo.sha256}"`;
}

/** If-None-Match (RFC 9110 §13.1.2): "*" or any listed tag equal to `etag` under weak comparison. */
export function noneMatchHits(ifNoneMatch: string, etag: string): boolean {
  const tags = ifNoneMatch.split(",").map((tag) => tag.trim());
  return tags.includes("*") || tags.some((tag) => tag.replace(/^W\//, "") === etag);
}

function setValidators(res: Response, photo: Photo): void {
  res.setHeader("ETag", etagOf(photo));
  res.setHeader("Cache-Control", "private, max-age=3600");
}

function setContentHeaders(res: Response, photo: Photo): void {
  setValidators(res, photo);
  res.setHeader("Content-Type", imageTypes.has(photo.contentType) ? photo.contentType : "application/octet-stream");
  res.setHeader("Content-Length", photo.sizeBytes.toString());
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Content-Disposition", "inline");
}

/**
 * Answers with the photo `photoId` of `userId`: 304 when If-None-Match names its ETag (GetPhoto only),
 * the headers alone for HEAD, else 200 streaming GetPhotoContent with backpressure. The gRPC stream is
 * cancelled when the client goes away. Throws what the photo service throws (NOT_FOUND...) while the
 * headers are unsent; a failure mid-body destroys the response (its Content-Length is then unmet) and is
 * thrown too, for the error handler to log with headers already sent.
 */
export async function sendPhotoContent(
  req: Request,
  res: Response,
  photos: Client<typeof PhotoService>,
  target: { readonly userId: string; readonly photoId: string },
): Promise<void> {
  const abort = new AbortController();
  let clientGone = false;
  const onClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    abort.abort(new ConnectError("the client closed the request", Code.Canceled));
  };
  res.once("close", onClose);
  const options = { signal: abort.signal };
  try {
    const ifNoneMatch = req.get("if-none-match");
    if (ifNoneMatch !== undefined || req.method === "HEAD") {
      const photo = present((await photos.getPhoto(target, options)).photo, "photo");
      if (ifNoneMatch !== undefined && noneMatchHits(ifNoneMatch, etagOf(photo))) {
        setValidators(res, photo);
        res.status(304).end();
        return;
      }
      if (req.method === "HEAD") {
        setContentHeaders(res, photo);
        res.status(200).end();
        return;
      }
    }
    const parts = photos.getPhotoContent(target, options)[Symbol.asyncIterator]();
    const first = await parts.next();
    if (first.done || first.value.part.case !== "photo") {
      throw new ConnectError("photo content stream did not start with its metadata", Code.Internal);
    }
    setContentHeaders(res, first.value.part.value);
    res.status(200);
    await pipeline(chunksOf(parts), res);
  } catch (error) {
    // The client left: the cancellation (or premature close) that followed is not an error. A downstream
    // failure that destroyed the response itself also closes it, so it is told apart by its code.
    const downstream = error instanceof ConnectError && error.code !== Code.Canceled;
    if (clientGone && !downstream) return;
    throw error;
  } finally {
    res.off("close", onClose);
    abort.abort();
  }
}

async function* chunksOf(parts: AsyncIterator<GetPhotoContentResponse>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await parts.next();
    if (next.done) return;
    if (next.value.part.case === "chunk") yield next.value.part.value;
  }
}
