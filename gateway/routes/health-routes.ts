// Liveness and readiness of the gateway: /healthz while the process runs; /readyz with the state of
// Redis and of every downstream service's gRPC health, 503 when one is not serving.
import { Router } from "express";
import { checkAll, type DependencyCheck } from "../../internal/health/dependency-check.js";
import { setRoute } from "../request-context.js";

export interface HealthRoutesDeps {
  readonly dependencies: readonly DependencyCheck[];
  /** A check slower than this counts as down. */
  readonly checkTimeoutMs: number;
}

export function createHealthRouter(deps: HealthRoutesDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    setRoute(res, "/healthz");
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    setRoute(res, "/readyz");
    const states = await checkAll(deps.dependencies, deps.checkTimeoutMs);
    const dependencies = Object.fromEntries(Object.entries(states).map(([name, up]) => [name, up ? "up" : "down"]));
    const ready = Object.values(states).every(Boolean);
    res.status(ready ? 200 : 503).set("Cache-Control", "no-store").json({ status: ready ? "ready" : "not_ready", dependencies });
  });
  return router;
}
