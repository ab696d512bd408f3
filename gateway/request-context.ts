// What middleware learns about a request and later handlers read, kept on res.locals.
import type { Response } from "express";

/** The caller, once the auth middleware has validated the session. */
export interface Authenticated {
  readonly userId: string;
  readonly sessionId: string;
  readonly token: string;
  /** How the token came: cookie-authenticated unsafe requests need a same-origin check. */
  readonly via: "bearer" | "cookie";
}

interface GatewayLocals {
  auth?: Authenticated;
  /** The route template (e.g. "/users/:id"), for metrics and logs; never the raw path. */
  route?: string;
}

function locals(res: Response): GatewayLocals {
  return res.locals as GatewayLocals;
}

/** The authenticated caller; throws if the route was not behind the auth middleware (a wiring bug). */
export function authOf(res: Response): Authenticated {
  const auth = locals(res).auth;
  if (!auth) throw new Error("authOf: route is not behind the auth middleware");
  return auth;
}

export function maybeAuthOf(res: Response): Authenticated | undefined {
  return locals(res).auth;
}

export function setAuth(res: Response, auth: Authenticated): void {
  locals(res).auth = auth;
}

export function routeOf(res: Response): string | undefined {
  return locals(res).route;
}

export function setRoute(res: Response, route: string): void {
  locals(res).route = route;
}
