// POST /auth/register and /auth/login: open a session, return its token once and set the session cookie.
import { Router, type Request, type Response } from "express";
import type { IssuedSession, User } from "../../gen/usermesh/user/v1/user_pb.js";
import { jsonFields } from "./request-input.js";
import { issuedSessionJson, present, userJson } from "./response-shapes.js";
import type { RouteDeps } from "./route-deps.js";
import { routeTemplate } from "./route-template.js";
import { setSessionCookie } from "./session-cookie.js";

export type AuthRoutesDeps = Pick<RouteDeps, "users" | "jsonBody" | "cookie">;

/**
 * Unauthenticated routes. Errors are thrown for the problem handler: 400 for missing or non-string
 * fields (and the user service's field violations), 409 for a taken email, 401 for bad credentials
 * (identical for an unknown email), 429 when logins are throttled.
 */
export function createAuthRouter(deps: AuthRoutesDeps): Router {
  const { users, jsonBody, cookie } = deps;
  const router = Router();

  /** Where the session was opened from, shown later in GET /me/sessions. */
  const client = (req: Request) => ({ ip: req.ip ?? "", userAgent: req.get("user-agent") ?? "" });

  const issued = (res: Response, status: number, response: { user?: User; session?: IssuedSession }) => {
    const user = present(response.user, "user");
    const session = present(response.session, "session");
    setSessionCookie(res, cookie, session.token, session.expiresAt);
    // The body carries a live token: no cache may keep it.
    res.set("Cache-Control", "no-store");
    res.status(status).json({ user: userJson(user), session: issuedSessionJson(session) });
  };

  router.post("/auth/register", routeTemplate, jsonBody, async (req, res) => {
    const fields = jsonFields(req);
    const email = fields.required("email");
    const password = fields.required("password");
    const name = fields.required("name");
    fields.errors.throwIfAny();
    issued(res, 201, await users.register({ email, password, name, ...client(req) }));
  });

  router.post("/auth/login", routeTemplate, jsonBody, async (req, res) => {
    const fields = jsonFields(req);
    const email = fields.required("email");
    const password = fields.required("password");
    fields.errors.throwIfAny();
    issued(res, 200, await users.login({ email, password, ...client(req) }));
  });

  return router;
}
