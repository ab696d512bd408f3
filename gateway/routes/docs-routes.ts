// GET /openapi.json (the contract, parsed once at startup) and GET /docs (Swagger UI, served from the
// local swagger-ui-dist package: no CDN).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import express, { Router } from "express";
import { parse } from "yaml";
import { setRoute } from "../request-context.js";
import { routeTemplate } from "./route-template.js";

export interface DocsRoutesDeps {
  /** The OpenAPI document (YAML). */
  readonly openapiPath: string;
  /** The folder holding the Swagger UI page (index.html, swagger-initializer.js). */
  readonly docsDir: string;
}

/** Where the document and the page live beside this module (copy both with the build output). */
export const defaultDocsPaths: DocsRoutesDeps = {
  openapiPath: fileURLToPath(new URL("../openapi.yaml", import.meta.url)),
  docsDir: fileURLToPath(new URL("../docs/", import.meta.url)),
};

/** Reads and parses the document now; throws (stopping the start) if it is missing or not YAML. */
export function createDocsRouter(deps: DocsRoutesDeps = defaultDocsPaths): Router {
  const document: unknown = parse(readFileSync(deps.openapiPath, "utf8"));
  const swaggerUiDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const router = Router();

  router.get("/openapi.json", routeTemplate, (_req, res) => {
    res.json(document);
  });

  // Non-strict routing: this also answers /docs/.
  router.get("/docs", routeTemplate, (_req, res) => {
    res.sendFile("index.html", { root: deps.docsDir });
  });

  // Our page and initializer first, so the package's own index.html and petstore initializer never show.
  router.use(
    "/docs",
    (_req, res, next) => {
      setRoute(res, "/docs/*asset");
      next();
    },
    express.static(deps.docsDir, { index: false, fallthrough: true }),
    express.static(swaggerUiDir, { index: false }),
  );

  return router;
}
