// A real Express app over HTTP (port 0) with the gateway's routers, stand-ins for the middleware
// another module owns (auth from a test header, CSRF, JSON body, problem rendering), and the gRPC
// services faked in memory. Every response is checked against gateway/openapi.yaml.
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import express, { type ErrorRequestHandler, type RequestHandler } from "express";
import { ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf, httpStatusFor, reasonOf } from "../../../internal/errors/errors.js";
import { createOpenApiValidator, type OpenApiValidator } from "../../../test/support/openapi-validator.js";
import { HttpProblem, type ProblemFieldError } from "../../http-problem.js";
import { setAuth } from "../../request-context.js";
import { createAccountRouter } from "../../routes/account-routes.js";
import { createAuthRouter } from "../../routes/auth-routes.js";
import { createDocsRouter } from "../../routes/docs-routes.js";
import { createPhotoRouter } from "../../routes/photo-routes.js";
import type { RouteDeps } from "../../routes/route-deps.js";
import { createSessionRouter } from "../../routes/session-routes.js";
import { createFakeMesh, type FakeMesh, type StoredSession } from "./fake-services.js";

export const openapiPath = fileURLToPath(new URL("../../openapi.yaml", import.meta.url));
export const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";

export interface HarnessOptions {
  readonly secureCookie?: boolean;
  readonly uploadMaxBytes?: number;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  /** The body parsed as JSON. */
  json<T = Record<string, unknown>>(): T;
}

export interface CallInit {
  readonly headers?: Record<string, string>;
  /** Sent as application/json. */
  readonly json?: unknown;
  readonly body?: NonNullable<Parameters<typeof fetch>[1]>["body"];
  /** Authenticates as this session (through the stub auth middleware). */
  readonly as?: StoredSession;
  /** Skip the OpenAPI check (routes the document does not list, e.g. Swagger UI assets). */
  readonly validate?: boolean;
}

export interface Harness {
  readonly mesh: FakeMesh;
  readonly port: number;
  readonly baseUrl: string;
  readonly validator: OpenApiValidator;
  /** Bytes each closed connection had read from its client, in closing order. */
  readonly bytesReadByClosedConnections: number[];
  /** fetch() against the app; the response is validated against the OpenAPI document. */
  call(method: string, path: string, init?: CallInit): Promise<HttpResult>;
  /** Headers that authenticate as `session` (bearer unless via = "cookie"). */
  authHeaders(session: StoredSession, via?: "bearer" | "cookie"): Record<string, string>;
  close(): Promise<void>;
}

/** Reads the caller from x-test-session (a fake session id), standing in for the real auth middleware. */
function stubAuth(mesh: FakeMesh): RequestHandler {
  return (req, res, next) => {
    const session = mesh.state.sessions.get(req.get("x-test-session") ?? "");
    if (!session) throw new HttpProblem(401, "Unauthorized", "no valid session");
    setAuth(res, { userId: session.userId, sessionId: session.sessionId, token: session.token, via: req.get("x-test-via") === "cookie" ? "cookie" : "bearer" });
    next();
  };
}

/** Refuses requests marked cross-site, so tests can see which routes carry the CSRF check. */
const stubCsrf: RequestHandler = (req, _res, next) => {
  if (req.get("sec-fetch-site") === "cross-site") throw new HttpProblem(403, "Forbidden", "cross-site request refused");
  next();
};

const parseJson = express.json({ limit: "16kb" });
const stubJsonBody: RequestHandler = (req, res, next) => {
  if (!req.is("application/json")) throw new HttpProblem(415, "Unsupported Media Type", "send application/json");
  parseJson(req, res, next);
};

const uploadStatusByReason: Record<string, number> = { PHOTO_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415, TOO_MANY_PIXELS: 422 };

/** A minimal problem renderer (the real one lives in gateway/middleware). */
const renderProblem: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  let status = 500;
  let detail = "internal error";
  let errors: readonly ProblemFieldError[] = [];
  let headers: Readonly<Record<string, string>> = {};
  if (error instanceof HttpProblem) {
    ({ status, detail, errors, headers } = error);
  } else if (error instanceof ConnectError) {
    const reason = reasonOf(error);
    status = (reason && uploadStatusByReason[reason]) || httpStatusFor(error.code);
    detail = error.rawMessage;
    errors = fieldViolationsOf(error).map((v) => ({ field: v.field, message: v.description }));
  } else if (typeof (error as { status?: unknown }).status === "number") {
    status = (error as { status: number }).status;
    detail = "malformed request body";
  }
  res.status(status).set(headers).type("application/problem+json");
  res.send(JSON.stringify({ type: "about:blank", title: String(status), status, detail, traceId, ...(errors.length ? { errors } : {}) }));
};

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const mesh = createFakeMesh();
  const deps: RouteDeps = {
    users: mesh.users,
    sessions: mesh.sessions,
    photos: mesh.photos,
    requireAuth: stubAuth(mesh),
    csrf: stubCsrf,
    jsonBody: stubJsonBody,
    cookie: { name: "session", secure: options.secureCookie ?? false },
    upload: { maxBytes: options.uploadMaxBytes ?? 1024 * 1024 },
  };
  const app = express();
  app.use((_req, res, next) => {
    res.set("x-request-id", traceId);
    next();
  });
  app.use(createAuthRouter(deps), createAccountRouter(deps), createSessionRouter(deps), createPhotoRouter(deps), createDocsRouter());
  app.use(renderProblem);

  // A promise nobody awaits that rejects (a leaked upload or stream reader) fails the suite at close().
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);

  const server: Server = createServer(app);
  const bytesReadByClosedConnections: number[] = [];
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      bytesReadByClosedConnections.push(socket.bytesRead);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const validator = createOpenApiValidator(openapiPath);

  const authHeaders = (session: StoredSession, via: "bearer" | "cookie" = "bearer") => ({ "x-test-session": session.sessionId, "x-test-via": via });

  async function call(method: string, path: string, init: CallInit = {}): Promise<HttpResult> {
    const headers: Record<string, string> = { ...(init.as ? authHeaders(init.as) : {}), ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.json);
    }
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const bytes = Buffer.from(await response.arrayBuffer());
    if (init.validate !== false) {
      validator.validateResponse(method, path, response.status, response.headers.get("content-type"), bytes);
    }
    return {
      status: response.status,
      headers: response.headers,
      body: bytes,
      json: <T>() => JSON.parse(bytes.toString("utf8")) as T,
    };
  }

  return {
    mesh,
    port,
    baseUrl,
    validator,
    bytesReadByClosedConnections,
    call,
    authHeaders,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Let rejections of the last request's leftovers surface before checking.
      await new Promise((resolve) => setTimeout(resolve, 20));
      process.off("unhandledRejection", onUnhandled);
      if (unhandled.length) throw new Error(`unhandled rejections during the test: ${unhandled.map(String).join("; ")}`);
    },
  };
}
