// The REST gateway's Express app: every middleware and router, in the order requests meet them.
import compression from "compression";
import cookieParser from "cookie-parser";
import cors from "cors";
import express, { Router, type Express, type Request } from "express";
import helmet from "helmet";
import type { Redis } from "ioredis";
import type { Registry } from "prom-client";
import type { Client } from "@connectrpc/connect";
import type { PhotoService } from "../gen/usermesh/photo/v1/photo_pb.js";
import type { SessionService } from "../gen/usermesh/session/v1/session_pb.js";
import type { UserService } from "../gen/usermesh/user/v1/user_pb.js";
import type { DependencyCheck } from "../internal/health/dependency-check.js";
import type { Logger } from "../internal/logging/logger.js";
import type { GatewayConfig } from "./config.js";
import { createAccessLogMiddleware } from "./middleware/access-log.js";
import { createAuthMiddleware } from "./middleware/auth.js";
import { createJsonBody } from "./middleware/body.js";
import { createCsrfMiddleware } from "./middleware/csrf.js";
import { createDeadlineMiddleware } from "./middleware/deadline.js";
import { createDisconnectMiddleware } from "./middleware/disconnect.js";
import { createHttpMetricsMiddleware } from "./middleware/http-metrics.js";
import { createNotFoundHandler, createProblemHandler } from "./middleware/problem.js";
import { byClientIp, byUserId, createRateLimiter } from "./middleware/rate-limit.js";
import { createTraceMiddleware } from "./middleware/trace.js";
import { createAccountRouter } from "./routes/account-routes.js";
import { createAuthRouter } from "./routes/auth-routes.js";
import { createDocsRouter } from "./routes/docs-routes.js";
import { createHealthRouter } from "./routes/health-routes.js";
import { createMethodGuard } from "./routes/method-guard.js";
import { createPhotoRouter } from "./routes/photo-routes.js";
import type { RouteDeps } from "./routes/route-deps.js";
import { createSessionRouter } from "./routes/session-routes.js";

export interface GatewayAppDeps {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly redis: Redis;
  readonly users: Client<typeof UserService>;
  readonly sessions: Client<typeof SessionService>;
  readonly photos: Client<typeof PhotoService>;
  /** What /readyz reports: Redis and each downstream's gRPC health. */
  readonly readiness: readonly DependencyCheck[];
}

/** Photo uploads and downloads move megabytes: they get the long deadline. */
const movesPhotoBytes = (req: Request) => (req.method === "POST" && req.path === "/me/photos") || req.path.endsWith("/content");

export function createGatewayApp(deps: GatewayAppDeps): Express {
  const { config, logger, registry, redis } = deps;
  const limiter = (name: string, limit: { points: number; durationSeconds: number }, key: typeof byClientIp | typeof byUserId) =>
    createRateLimiter({ redis, keyPrefix: `${config.redis.keyPrefix}ratelimit`, points: limit.points, durationSeconds: limit.durationSeconds, key, name, registry, logger });

  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.http.trustProxy);

  // 1. trace id, 2. access log (+ metrics), 3. deadline, 4. cancellation when the client goes away,
  // 5. rate limits; auth and CSRF sit on the routes that need them; body limits on the routes that
  // read a body.
  app.use(createTraceMiddleware());
  app.use(createAccessLogMiddleware(logger));
  app.use(createHttpMetricsMiddleware(registry));
  app.use(createDeadlineMiddleware({ defaultMs: config.deadlines.defaultMs, overrides: (req) => (movesPhotoBytes(req) ? config.deadlines.uploadMs : undefined) }));
  app.use(createDisconnectMiddleware());
  app.use(limiter("ip", config.rateLimit.perIp, byClientIp));
  app.use("/auth", limiter("auth-ip", config.rateLimit.authPerIp, byClientIp));
  app.use(helmet());
  app.use(cors({ origin: config.http.corsOrigins, credentials: true }));
  // Compresses JSON and text; image bytes are left alone (not compressible by the default filter).
  app.use(compression());
  app.use(cookieParser());

  const requireAuth = Router().use(
    createAuthMiddleware({ sessions: deps.sessions, cookieName: config.cookie.name }),
    limiter("user", config.rateLimit.perUser, byUserId),
  );
  const routeDeps: RouteDeps = {
    users: deps.users,
    sessions: deps.sessions,
    photos: deps.photos,
    requireAuth,
    csrf: createCsrfMiddleware({ allowedOrigins: config.http.publicOrigins }),
    jsonBody: createJsonBody({ limitBytes: config.body.jsonLimitBytes }),
    cookie: config.cookie,
    upload: config.upload,
  };

  app.use(createHealthRouter({ dependencies: deps.readiness, checkTimeoutMs: 1000 }));
  app.use(createDocsRouter());
  app.use(createAuthRouter(routeDeps));
  app.use(createAccountRouter(routeDeps));
  app.use(createSessionRouter(routeDeps));
  app.use(createPhotoRouter(routeDeps));

  app.use(createMethodGuard());
  app.use(createNotFoundHandler());
  app.use(createProblemHandler({ logger }));
  return app;
}
