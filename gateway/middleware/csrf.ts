// Refuses cross-site unsafe requests that ride on the session cookie (CSRF); bearer tokens are not
// sent by browsers on their own, so bearer requests pass.
import type { Request, RequestHandler } from "express";
import { maybeAuthOf } from "../request-context.js";
import { httpProblem } from "./problem-response.js";

export interface CsrfOptions {
  /** The gateway's own public origins (scheme://host[:port]), as configured. */
  readonly allowedOrigins: readonly string[];
}

const unsafeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Mounted after the auth middleware. For a cookie-authenticated POST, PUT, PATCH or DELETE, requires
 * `Sec-Fetch-Site: same-origin`; when the browser sent no Sec-Fetch-Site, requires an `Origin` that is
 * one of allowedOrigins or the request's own `${protocol}://${host}`. Otherwise 403 problem. Safe
 * methods, bearer-authenticated and unauthenticated requests pass untouched.
 */
export function createCsrfMiddleware(options: CsrfOptions): RequestHandler {
  const allowed = new Set(options.allowedOrigins.map(normalizeOrigin));
  return (req, res, next) => {
    if (!unsafeMethods.has(req.method) || maybeAuthOf(res)?.via !== "cookie") return next();
    if (isSameOrigin(req, allowed)) return next();
    next(httpProblem(403, "cross-site request refused: use a same-origin request or a bearer token"));
  };
}

function isSameOrigin(req: Request, allowed: ReadonlySet<string>): boolean {
  const fetchSite = req.get("sec-fetch-site");
  if (fetchSite !== undefined) return fetchSite.trim().toLowerCase() === "same-origin";
  const origin = req.get("origin");
  // "null" is what sandboxed frames and some redirects send: never trusted.
  if (origin === undefined || origin === "null") return false;
  const normalized = normalizeOrigin(origin);
  const host = req.get("host");
  return allowed.has(normalized) || (host !== undefined && normalized === normalizeOrigin(`${req.protocol}://${host}`));
}

function normalizeOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return origin.trim().toLowerCase();
  }
}
