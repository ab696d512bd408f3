// The caller's account (logout, delete, update, GET /me) and other users' public profiles.
import { Router, type Response } from "express";
import type { CallOptions } from "@connectrpc/connect";
import { authOf } from "../request-context.js";
import { jsonFields, uuidParams } from "./request-input.js";
import { photoJson, present, publicUserJson, userJson } from "./response-shapes.js";
import type { RouteDeps } from "./route-deps.js";
import { routeTemplate } from "./route-template.js";
import { clearSessionCookie } from "./session-cookie.js";

export type AccountRoutesDeps = Pick<RouteDeps, "users" | "photos" | "requireAuth" | "csrf" | "jsonBody" | "cookie">;

/**
 * Authenticated routes. Errors are thrown for the problem handler: 400 for malformed ids and fields,
 * 404 for an unknown user, 409 for a taken email, 422 when a change needs the current password.
 */
export function createAccountRouter(deps: AccountRoutesDeps): Router {
  const { users, photos, requireAuth, csrf, jsonBody, cookie } = deps;
  const router = Router();

  /** A profile and the first page of its photos, fetched in parallel; a failure cancels the other call. */
  async function profileWithPhotos(userId: string) {
    const abort = new AbortController();
    const options: CallOptions = { signal: abort.signal };
    try {
      const [profile, page] = await Promise.all([
        users.getProfile({ userId }, options),
        photos.getPhotos({ userId }, options),
      ]);
      return { user: present(profile.user, "user"), photos: page.photos.map(photoJson) };
    } catch (error) {
      abort.abort();
      throw error;
    }
  }

  const ended = (res: Response) => {
    clearSessionCookie(res, cookie);
    res.status(204).end();
  };

  router.delete("/users/logout", routeTemplate, requireAuth, csrf, async (_req, res) => {
    await users.logout({ token: authOf(res).token });
    ended(res);
  });

  router.delete("/users/delete", routeTemplate, requireAuth, csrf, jsonBody, async (req, res) => {
    const auth = authOf(res);
    const fields = jsonFields(req);
    const password = fields.required("password");
    fields.errors.throwIfAny();
    await users.deleteAccount({ userId: auth.userId, password, sessionToken: auth.token });
    ended(res);
  });

  router.patch("/me/update", routeTemplate, requireAuth, csrf, jsonBody, async (req, res) => {
    const auth = authOf(res);
    const fields = jsonFields(req);
    const name = fields.optional("name");
    const email = fields.optional("email");
    const newPassword = fields.optional("password");
    const currentPassword = fields.optional("currentPassword");
    fields.errors.throwIfAny();
    const updated = await users.updateProfile({
      userId: auth.userId,
      name,
      email,
      newPassword,
      currentPassword,
      // Kept alive when a new password ends the user's other sessions.
      sessionId: auth.sessionId,
    });
    res.json({ user: userJson(present(updated.user, "user")) });
  });

  router.get("/me", routeTemplate, requireAuth, async (_req, res) => {
    const { user, photos } = await profileWithPhotos(authOf(res).userId);
    res.json({ user: userJson(user), photos });
  });

  router.get("/users/:id", routeTemplate, requireAuth, async (req, res) => {
    const { id } = uuidParams(req, "id");
    const { user, photos } = await profileWithPhotos(id);
    res.json({ user: publicUserJson(user), photos });
  });

  return router;
}
