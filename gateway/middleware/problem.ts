// The gateway's one error handler: every error becomes an application/problem+json response, and
// unknown ones an opaque 500.
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { Logger, LogLevel } from "../../internal/logging/logger.js";
import {
  Code,
  ConnectError,
  fieldViolationsOf,
  httpStatusFor,
  logLevelFor,
  reasonOf,
  retryDelayMsOf,
} from "../../internal/errors/errors.js";
import { HttpProblem } from "../http-problem.js";
import { hasTimedOut } from "./deadline.js";
import { httpProblem, sendProblem } from "./problem-response.js";

/** ErrorInfo reasons from the photo service that name a more precise HTTP status than their code. */
const statusByReason: Readonly<Record<string, number>> = {
  PHOTO_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_PIXELS: 422,
};

/** What a 5xx tells the client: never the message, which may carry internals. */
function genericDetail(status: number): string {
  if (status === 503) return "a service is unavailable";
  if (status === 504) return "the request took too long";
  if (status === 501) return "not implemented";
  return "internal error";
}

interface Classified {
  readonly problem: HttpProblem;
  readonly level: LogLevel;
  /** What the log line shows as err: the cause, kept from the client. */
  readonly cause?: unknown;
  readonly grpcCode?: string;
}

/** The HTTP problem an error renders as, and how loudly to log it. */
function classifyError(error: unknown): Classified {
  if (error instanceof HttpProblem) {
    return { problem: error, level: error.status >= 500 ? "error" : "info", cause: error.cause };
  }
  if (error instanceof ConnectError) return classifyConnectError(error);
  const exposed = exposedHttpError(error);
  if (exposed) return { problem: httpProblem(exposed.status, exposed.message), level: "info" };
  return { problem: httpProblem(500, "internal error"), level: "error", cause: error };
}

function classifyConnectError(error: ConnectError): Classified {
  const reason = reasonOf(error);
  const status = (reason !== undefined ? statusByReason[reason] : undefined) ?? httpStatusFor(error.code);
  const headers: Record<string, string> = {};
  if (error.code === Code.ResourceExhausted) {
    const delayMs = retryDelayMsOf(error);
    if (delayMs !== undefined) headers["Retry-After"] = String(Math.max(1, Math.ceil(delayMs / 1000)));
  }
  if (status === 401) headers["WWW-Authenticate"] = "Bearer";
  const problem = httpProblem(status, status < 500 ? error.rawMessage : genericDetail(status), {
    errors: fieldViolationsOf(error).map((v) => ({ field: v.field, message: v.description })),
    headers,
  });
  const level = status < 500 ? "info" : logLevelFor(error.code);
  return { problem, level, cause: error.cause ?? error, grpcCode: Code[error.code] };
}

// Errors from http-errors (body-parser, express.raw/json mounted by a route) that declare a 4xx
// status and a message safe to show.
function exposedHttpError(error: unknown): { status: number; message: string } | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { status, expose, message } = error as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof status !== "number" || status < 400 || status > 499 || expose !== true) return undefined;
  return { status, message: typeof message === "string" ? message : "bad request" };
}

/**
 * The last error handler of the app. Renders every error as RFC 9457 problem+json: an HttpProblem
 * with its own status, title, detail, errors and headers; a ConnectError with the REST contract's
 * status for its code (ErrorInfo reasons PHOTO_TOO_LARGE 413, UNSUPPORTED_MEDIA_TYPE 415,
 * TOO_MANY_PIXELS 422 override it), its field violations as errors[], Retry-After from its RetryInfo on
 * 429, and its message only for client errors (5xx say "internal error" / "a service is
 * unavailable"); an http-errors 4xx with exposed message as itself; anything else an opaque 500.
 * Logs client errors at info, server errors at warn/error with their cause. When the response has
 * already started it cannot be replaced: the connection is destroyed (so a truncated body is not
 * mistaken for a whole one), and errors after a deadline 504 are dropped quietly.
 */
export function createProblemHandler(deps: { logger: Logger }): ErrorRequestHandler {
  const { logger } = deps;
  return (error: unknown, req, res, _next) => {
    const { problem, level, cause, grpcCode } = classifyError(error);
    if (res.headersSent) {
      if (hasTimedOut(res)) {
        logger.debug("error after the request timed out", { method: req.method, err: cause ?? error });
      } else {
        logger[level]("error after the response started", {
          method: req.method,
          status: problem.status,
          err: cause ?? error,
        });
      }
      if (!res.writableEnded) res.destroy();
      return;
    }
    const fields: Record<string, unknown> = { method: req.method, status: problem.status };
    if (grpcCode !== undefined) fields.grpcCode = grpcCode;
    if (level === "info") fields.detail = problem.detail;
    else if (cause !== undefined) fields.err = cause;
    logger[level]("request failed", fields);
    sendProblem(res, problem);
  };
}

/** Mounted after every route: 404 problem for any request no route answered. */
export function createNotFoundHandler(): RequestHandler {
  return (_req, _res, next) => next(httpProblem(404, "no such resource"));
}

/**
 * For a route's other methods (`router.route(path).get(h).all(methodNotAllowed(["GET"]))`): 405 with
 * an `Allow` header listing `allowed` (HEAD added when GET is there, since Express answers it).
 */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const methods = allowed.map((m) => m.toUpperCase());
  if (methods.includes("GET") && !methods.includes("HEAD")) methods.push("HEAD");
  const allow = methods.join(", ");
  return (req, _res, next) =>
    next(httpProblem(405, `${req.method} is not allowed here; use ${allow}`, { headers: { Allow: allow } }));
}
