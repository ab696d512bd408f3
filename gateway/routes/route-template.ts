// Records the matched route's template (e.g. "/users/:id") before any per-route middleware runs, so
// metrics and access logs name the route even when auth or body parsing rejects the request.
import type { RequestHandler } from "express";
import { setRoute } from "../request-context.js";

/** First handler of every route: setRoute(res, <mount path><route path>). */
export const routeTemplate: RequestHandler = (req, res, next) => {
  const route = req.route as { path?: unknown } | undefined;
  if (typeof route?.path === "string") setRoute(res, `${req.baseUrl}${route.path}`);
  next();
};
