// The session cookie: set on register/login, cleared on logout and account deletion.
import type { CookieOptions, Response } from "express";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { SessionCookieConfig } from "./route-deps.js";

function attributes(config: SessionCookieConfig): CookieOptions {
  // HttpOnly keeps the token from scripts; Lax sends it on top-level navigation only, which with the
  // CSRF middleware's same-origin check covers cross-site writes.
  return { httpOnly: true, sameSite: "lax", path: "/", secure: config.secure };
}

/** Sets `<name>=<token>` expiring with the session (a browser-session cookie when no expiry is known). */
export function setSessionCookie(res: Response, config: SessionCookieConfig, token: string, expiresAt: Timestamp | undefined): void {
  res.cookie(config.name, token, { ...attributes(config), ...(expiresAt ? { expires: timestampDate(expiresAt) } : {}) });
}

/** Expires the cookie with the same attributes it was set with (browsers match on name, path, domain). */
export function clearSessionCookie(res: Response, config: SessionCookieConfig): void {
  res.clearCookie(config.name, attributes(config));
}
