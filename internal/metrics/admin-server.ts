// The admin HTTP port every process exposes: Prometheus /metrics, liveness /healthz, readiness /readyz.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { isUp, type DependencyCheck } from "../health/dependency-check.js";

export { createDomainCounter } from "./registry.js";

export type { DependencyCheck };

export interface AdminServer {
  /** The port actually bound (the ephemeral one when started with port 0). */
  readonly port: number;
  /** Stops listening and drops every open connection, idle keep-alive ones included. Safe to call twice. */
  close(): Promise<void>;
}

export interface AdminServerOptions {
  /** Interface to bind; all interfaces when omitted, so Prometheus can scrape from outside the host. */
  readonly host?: string;
  /** 0 picks an ephemeral port (tests). */
  readonly port: number;
  readonly registry: Registry;
  readonly dependencies?: readonly DependencyCheck[];
  /** How long one dependency check may take before it counts as down; 1000 ms by default. */
  readonly checkTimeoutMs?: number;
}

type DependencyState = "up" | "down";

/**
 * Starts the admin server. GET (or HEAD) /metrics answers the registry's exposition, /healthz
 * `{"status":"ok"}`, /readyz runs every dependency check in parallel and answers 200
 * `{"status":"ready","dependencies":{…}}` or 503 `{"status":"not_ready",…}` with each one's "up"/"down".
 * Other paths answer 404, other methods 405. A failing check or a failing metric collector never crashes
 * the process: the check counts as down, the scrape answers 500.
 *
 * Rejects if the port cannot be bound (EADDRINUSE, EACCES); throws if two dependencies share a name or
 * checkTimeoutMs is not a positive number.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const dependencies = options.dependencies ?? [];
  const timeoutMs = options.checkTimeoutMs ?? 1000;
  if (!(timeoutMs > 0)) throw new Error(`startAdminServer: checkTimeoutMs must be positive, got ${timeoutMs}`);
  const names = new Set(dependencies.map((d) => d.name));
  if (names.size !== dependencies.length) throw new Error("startAdminServer: dependency names must be unique");

  const server = createServer((req, res) => {
    handle(req, res, options.registry, dependencies, timeoutMs).catch(() => {
      // Only reachable if writing the response itself failed; the socket is of no further use.
      res.destroy();
    });
  });
  await listen(server, options.port, options.host);
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // close() alone waits for keep-alive sockets and in-flight scrapes; an admin port need not.
        server.closeAllConnections();
      })),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  dependencies: readonly DependencyCheck[],
  timeoutMs: number,
): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") {
    return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
  }
  if (path === "/healthz") return sendJson(res, 200, { status: "ok" });
  if (path === "/readyz") {
    const states = await Promise.all(dependencies.map(async (d) => ((await isUp(d, timeoutMs)) ? "up" : "down")));
    const report: Record<string, DependencyState> = {};
    dependencies.forEach((d, i) => (report[d.name] = states[i]));
    const ready = states.every((s) => s === "up");
    return sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not_ready", dependencies: report });
  }
  let body: string;
  try {
    body = await registry.metrics();
  } catch {
    // A collector threw; the error text may carry internals, so it stays out of the response.
    return send(res, 500, "text/plain; charset=utf-8", "metrics collection failed\n");
  }
  return send(res, 200, registry.contentType, body);
}


function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json", JSON.stringify(value));
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  res.end(body);
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
