// JSON request bodies: size-limited, strictly typed, and every failure answered as a problem.
import express from "express";
import type { RequestHandler } from "express";
import { httpProblem } from "./problem-response.js";

export interface JsonBodyOptions {
  /** Largest accepted body in bytes (after decompression); the REST contract says 16 KiB. */
  readonly limitBytes: number;
}

const jsonType = "application/json";

/**
 * For routes that take JSON. A request without a body passes with req.body left undefined; a body
 * that is not `application/json` is 415; one over limitBytes is 413 (the rest is drained, never
 * buffered); malformed JSON, or JSON that is not an object, is 400; an unsupported charset or content
 * encoding is 415. The parsed object is on req.body. body-parser's errors are told apart by their
 * `type`, never by message.
 */
export function createJsonBody(options: JsonBodyOptions): RequestHandler {
  const parse = express.json({ limit: options.limitBytes, strict: true, type: jsonType });
  return (req, res, next) => {
    // An empty body (Content-Length: 0, as fetch sends for a bodiless POST) counts as none.
    if (req.get("content-length") === "0" && !req.get("content-type")) return next();
    const type = req.is(jsonType);
    if (type === null) return next();
    if (type === false) return next(httpProblem(415, `the request body must be ${jsonType}`));
    // raw-body binds its callback to the caller's async context, so the call scope survives the read
    // (the scope test guards this).
    parse(req, res, (error?: unknown) => {
      if (error) return next(bodyProblem(error, options.limitBytes));
      if (typeof req.body !== "object" || req.body === null || Array.isArray(req.body)) {
        return next(httpProblem(400, "the request body must be a JSON object"));
      }
      next();
    });
  };
}

function bodyProblem(error: unknown, limitBytes: number): unknown {
  const type = typeof error === "object" && error !== null ? (error as { type?: unknown }).type : undefined;
  switch (type) {
    case "entity.parse.failed":
      return httpProblem(400, "the request body is not valid JSON", { cause: error });
    case "entity.too.large":
      return httpProblem(413, `the request body is larger than ${limitBytes} bytes`, { cause: error });
    case "charset.unsupported":
      return httpProblem(415, "unsupported charset", { cause: error });
    case "encoding.unsupported":
      return httpProblem(415, "unsupported content encoding", { cause: error });
    case "request.aborted":
    case "request.size.invalid":
      return httpProblem(400, "the request body was incomplete", { cause: error });
    default:
      return error;
  }
}
