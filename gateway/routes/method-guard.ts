// 405 for a known path asked with a method it does not serve, using the OpenAPI document as the one
// list of routes (so the Allow header can never drift from the contract).
import { readFileSync } from "node:fs";
import type { RequestHandler } from "express";
import { parse } from "yaml";
import { methodNotAllowed } from "../middleware/problem.js";
import { defaultDocsPaths } from "./docs-routes.js";

const httpMethods = ["get", "put", "post", "delete", "patch", "head", "options"];

interface KnownPath {
  readonly pattern: RegExp;
  readonly guard: RequestHandler;
}

/** Mounted after every router and before the 404 handler. */
export function createMethodGuard(openapiPath = defaultDocsPaths.openapiPath): RequestHandler {
  const document = parse(readFileSync(openapiPath, "utf8")) as { paths?: Record<string, Record<string, unknown>> };
  const known: KnownPath[] = Object.entries(document.paths ?? {}).map(([template, item]) => ({
    // "/users/{id}/photos" → ^/users/[^/]+/photos/?$
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}/?$`),
    guard: methodNotAllowed(Object.keys(item).filter((key) => httpMethods.includes(key))),
  }));
  return (req, res, next) => {
    const match = known.find((k) => k.pattern.test(req.path));
    if (!match) return next();
    match.guard(req, res, next);
  };
}
