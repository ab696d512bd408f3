// REST gateway process: wiring only.
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { PhotoService } from "../gen/usermesh/photo/v1/photo_pb.js";
import { SessionService } from "../gen/usermesh/session/v1/session_pb.js";
import { UserService } from "../gen/usermesh/user/v1/user_pb.js";
import { loadConfig } from "../internal/config/load-config.js";
import type { DependencyCheck } from "../internal/health/dependency-check.js";
import { createProcessKit, serveAdmin } from "../internal/process/process-kit.js";
import { createGrpcTransport, type GrpcTransport } from "../internal/rpc/grpc-transport.js";
import { createRedisClient, redisDependency } from "../internal/stores/redis-client.js";
import { createGatewayApp } from "./app.js";
import { gatewayConfigSchema } from "./config.js";

const config = loadConfig(gatewayConfigSchema, {
  file: process.env.USERMESH_CONFIG ?? fileURLToPath(new URL("./config.yml", import.meta.url)),
});
const kit = createProcessKit({ service: "gateway", log: config.log, shutdown: config.shutdown, config });
const { logger, shutdown } = kit;

// The rate limiter fails open and sessions are checked by the session service, so Redis here is
// needed only for limits: the gateway starts and serves without it.
const redis = createRedisClient(config.redis.url, logger, "gateway");
shutdown.onShutdown("redis", () => void redis.disconnect());

function upstream(name: string, address: string): { transport: GrpcTransport; ready: DependencyCheck } {
  const transport = createGrpcTransport({ address, interceptors: kit.clientInterceptors });
  shutdown.onShutdown(`${name} client`, () => transport.close());
  const health = createClient(Health, transport);
  const ready: DependencyCheck = {
    name,
    check: async () => (await health.check({ service: "" }, { timeoutMs: 1000 })).status === HealthCheckResponse_ServingStatus.SERVING,
  };
  return { transport, ready };
}
const user = upstream("user", config.upstreams.user);
const session = upstream("session", config.upstreams.session);
const photo = upstream("photo", config.upstreams.photo);
const readiness = [redisDependency(redis), user.ready, session.ready, photo.ready];

const app = createGatewayApp({
  config,
  logger,
  registry: kit.registry,
  redis,
  users: createClient(UserService, user.transport),
  sessions: createClient(SessionService, session.transport),
  photos: createClient(PhotoService, photo.transport),
  readiness,
});

const adminServer = await serveAdmin(kit, config.admin, readiness).catch(kit.fail);
const server = createServer(app);
// Slow clients must not hold sockets forever; uploads have their own deadline.
server.headersTimeout = 15_000;
server.requestTimeout = config.deadlines.uploadMs + 5000;
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(config.http.port, config.http.host, resolve);
}).catch(kit.fail);
shutdown.onShutdown("http server", () => closeHttpServer(server, kit.drainMs));

const address = server.address();
const httpPort = typeof address === "object" && address ? address.port : config.http.port;
logger.info("serving", { httpPort, adminPort: adminServer.port, grpcPort: 0 });

/** Stops accepting, lets requests in flight finish (idle keep-alive sockets close at once), then forces. */
function closeHttpServer(httpServer: ReturnType<typeof createServer>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      httpServer.closeAllConnections();
      resolve();
    }, graceMs);
    httpServer.close(() => {
      clearTimeout(force);
      resolve();
    });
    httpServer.closeIdleConnections();
  });
}
