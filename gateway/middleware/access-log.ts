// One log line per HTTP request, written when the response is over.
import type { RequestHandler, Response } from "express";
import type { Logger } from "../../internal/logging/logger.js";
import { currentScope } from "../../internal/trace/call-scope.js";
import { maybeAuthOf, routeOf } from "../request-context.js";
import { onResponseEnd } from "./response-end.js";

/**
 * Logs `http request` once per request when the response finishes or the client aborts, with
 * method, route (the template from routeOf, "unmatched" when no route claimed the request), status
 * (499 when the client left before the headers went out), durationMs, bytes (response body bytes
 * written, after any compression mounted later), traceId, userId when authenticated, and
 * aborted: true when the connection closed early. Level info below 500, error from 500 on: client
 * errors are not errors. Never logs the raw path or query (they can carry tokens), bodies, cookies
 * or headers. Mount it right after the trace middleware.
 */
export function createAccessLogMiddleware(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    // Read now: the finish event fires outside the request's scope.
    const traceId = currentScope()?.traceId;
    const bytesWritten = countBodyBytes(res);
    onResponseEnd(res, ({ status, aborted }) => {
      const fields: Record<string, unknown> = {
        method: req.method,
        route: routeOf(res) ?? "unmatched",
        status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        bytes: bytesWritten(),
        traceId,
      };
      const userId = maybeAuthOf(res)?.userId;
      if (userId !== undefined) fields.userId = userId;
      if (aborted) fields.aborted = true;
      if (status >= 500) logger.error("http request", fields);
      else logger.info("http request", fields);
    });
    next();
  };
}

type Write = (...args: unknown[]) => boolean;
type End = (...args: unknown[]) => Response;

// Counts what passes through res.write/res.end, so streamed responses without Content-Length are
// measured too. Node's own end() does not call this.write, so nothing is counted twice.
function countBodyBytes(res: Response): () => number {
  let bytes = 0;
  const write = res.write.bind(res) as Write;
  const end = res.end.bind(res) as End;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    bytes += sizeOf(chunk, rest[0]);
    return write(chunk, ...rest);
  }) as Response["write"];
  res.end = ((...args: unknown[]) => {
    if (typeof args[0] !== "function") bytes += sizeOf(args[0], args[1]);
    return end(...args);
  }) as Response["end"];
  return () => bytes;
}

function sizeOf(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === "string") {
    return Buffer.byteLength(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  }
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}
