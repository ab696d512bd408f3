// The caller's sessions: list them, end one, or end every other one.
import { Router } from "express";
import { authOf } from "../request-context.js";
import { uuidParams } from "./request-input.js";
import { sessionJson } from "./response-shapes.js";
import type { RouteDeps } from "./route-deps.js";
import { routeTemplate } from "./route-template.js";
import { clearSessionCookie } from "./session-cookie.js";

export type SessionRoutesDeps = Pick<RouteDeps, "sessions" | "requireAuth" | "csrf" | "cookie">;

/**
 * Authenticated routes over SessionService. Another user's session id answers 404 (the service never
 * tells whether it exists), so ids cannot be probed.
 */
export function createSessionRouter(deps: SessionRoutesDeps): Router {
  const { sessions, requireAuth, csrf, cookie } = deps;
  const router = Router();

  router.get("/me/sessions", routeTemplate, requireAuth, async (_req, res) => {
    const auth = authOf(res);
    const listed = await sessions.listSessions({ userId: auth.userId });
    res.json({ sessions: listed.sessions.map((s) => sessionJson(s, auth.sessionId)) });
  });

  router.delete("/me/sessions/:id", routeTemplate, requireAuth, csrf, async (req, res) => {
    const auth = authOf(res);
    const { id } = uuidParams(req, "id");
    await sessions.deleteSession({ target: { case: "session", value: { userId: auth.userId, sessionId: id } } });
    // Ending the current session is a logout: the cookie is dead too.
    if (id === auth.sessionId) clearSessionCookie(res, cookie);
    res.status(204).end();
  });

  router.delete("/me/sessions", routeTemplate, requireAuth, csrf, async (_req, res) => {
    const auth = authOf(res);
    const result = await sessions.deleteUserSessions({ userId: auth.userId, exceptSessionId: auth.sessionId });
    res.json({ ended: result.deletedCount });
  });

  return router;
}
