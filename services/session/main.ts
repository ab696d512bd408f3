// Session service process: wiring only.
import { fileURLToPath } from "node:url";
import { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { loadConfig } from "../../internal/config/load-config.js";
import { createDomainCounter } from "../../internal/metrics/registry.js";
import { createProcessKit, serveGrpc } from "../../internal/process/process-kit.js";
import { serviceEntry } from "../../internal/rpc/rpc-server.js";
import { createRedisClient, redisDependency, redisReady } from "../../internal/stores/redis-client.js";
import { sessionConfigSchema, sessionSettingsFrom } from "./config.js";
import { createSessionHandlers } from "./handlers.js";
import { createRedisSessionStore } from "./redis-session-store.js";
import { createSessions } from "./sessions.js";

const config = loadConfig(sessionConfigSchema, {
  file: process.env.USERMESH_CONFIG ?? fileURLToPath(new URL("./config.yml", import.meta.url)),
});
const kit = createProcessKit({ service: "session", log: config.log, shutdown: config.shutdown, config });

const redis = createRedisClient(config.redis.url, kit.logger, "session");
kit.shutdown.onShutdown("redis", async () => void (await redis.quit()));
await redisReady(redis).catch(kit.fail);

const sessions = createSessions({
  store: createRedisSessionStore(redis, { keyPrefix: config.redis.keyPrefix }),
  settings: sessionSettingsFrom(config.session),
});
const handlers = createSessionHandlers({
  sessions,
  sessionsCreated: createDomainCounter(kit.registry, "sessions_created_total", "Sessions created."),
});

await serveGrpc(kit, {
  grpc: config.grpc,
  admin: config.admin,
  services: [serviceEntry(SessionService, handlers)],
  dependencies: [redisDependency(redis)],
}).catch(kit.fail);
