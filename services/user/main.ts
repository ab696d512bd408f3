// User service process: wiring only.
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { UserService } from "../../gen/usermesh/user/v1/user_pb.js";
import { loadConfig } from "../../internal/config/load-config.js";
import { createAmqpPublisher } from "../../internal/events/amqp-publisher.js";
import { createDomainCounter } from "../../internal/metrics/registry.js";
import { createProcessKit, serveGrpc } from "../../internal/process/process-kit.js";
import { createGrpcTransport } from "../../internal/rpc/grpc-transport.js";
import { serviceEntry } from "../../internal/rpc/rpc-server.js";
import { runMigrations } from "../../internal/stores/migrations.js";
import { createPgPool, ensureDatabase, pgDependency } from "../../internal/stores/postgres.js";
import { createRedisClient } from "../../internal/stores/redis-client.js";
import { createBcryptWorkerPool } from "./bcrypt-worker-pool.js";
import { userConfigSchema } from "./config.js";
import { createUserHandlers } from "./handlers.js";
import { createRedisLoginThrottle } from "./login-throttle.js";
import { createOutboxRelay } from "./outbox-relay.js";
import { createBcryptPasswordHasher } from "./password-hasher.js";
import { createPgUserStore } from "./pg-user-store.js";
import { createRedisProfileCache } from "./profile-cache.js";
import { createUsers } from "./users.js";

const config = loadConfig(userConfigSchema, {
  file: process.env.USERMESH_CONFIG ?? fileURLToPath(new URL("./config.yml", import.meta.url)),
});
const kit = createProcessKit({ service: "user", log: config.log, shutdown: config.shutdown, config });
const { logger, registry, shutdown } = kit;

await ensureDatabase(config.postgres.url).catch(kit.fail);
const pool = createPgPool(config.postgres.url, { max: config.postgres.poolMax, applicationName: "user", logger });
shutdown.onShutdown("postgres", () => pool.end());
await runMigrations(pool, { dir: fileURLToPath(new URL("./migrations", import.meta.url)), logger }).catch(kit.fail);

// Redis only caches and throttles here: the service keeps serving when it is down.
const redis = createRedisClient(config.redis.url, logger, "user");
shutdown.onShutdown("redis", () => void redis.disconnect());

const sessionTransport = createGrpcTransport({ address: config.session.address, interceptors: kit.clientInterceptors });
shutdown.onShutdown("session client", () => sessionTransport.close());

const publisher = createAmqpPublisher({ url: config.amqp.url, exchanges: [{ name: config.events.exchange, type: "topic" }], logger });
shutdown.onShutdown("event publisher", () => publisher.close());
const relay = createOutboxRelay({
  pool,
  publisher,
  exchange: config.events.exchange,
  source: "//usermesh/user",
  logger,
  counters: {
    published: createDomainCounter(registry, "events_published_total", "Lifecycle events published and confirmed by the broker."),
    failures: createDomainCounter(registry, "outbox_relay_failures_total", "Outbox relay passes that failed and will be retried."),
  },
});
relay.start();
shutdown.onShutdown("outbox relay", () => relay.stop());

// One hashing thread per slot, at a higher nice value than the request path; at niceness 0, bcrypt's
// async API on libuv's threadpool does the same without the threads' memory (~10 MiB each).
const hashingThreads =
  config.hashing.niceness > 0
    ? await createBcryptWorkerPool({
        threads: config.hashing.maxConcurrentHashes,
        niceness: config.hashing.niceness,
        onError: (err) => logger.error("hashing thread failed", { err }),
      }).catch(kit.fail)
    : undefined;
if (hashingThreads) shutdown.onShutdown("hashing threads", () => hashingThreads.close());

const users = createUsers({
  store: createPgUserStore(pool),
  hasher: createBcryptPasswordHasher({
    cost: config.hashing.bcryptCost,
    maxConcurrent: config.hashing.maxConcurrentHashes,
    bcrypt: hashingThreads,
    refused: createDomainCounter(
      registry,
      "password_hashes_refused_total",
      "Password hashes and checks refused without hashing: busy (would outlast the deadline), deadline, cancelled.",
      ["reason"],
    ),
  }),
  sessions: createClient(SessionService, sessionTransport),
  cache: createRedisProfileCache(redis, { keyPrefix: config.redis.keyPrefix, ttlSeconds: config.cache.profileTtlSeconds, logger }),
  throttle: createRedisLoginThrottle(redis, {
    keyPrefix: config.redis.keyPrefix,
    maxFailuresPerAccount: config.loginThrottle.maxFailuresPerAccount,
    maxFailuresPerIp: config.loginThrottle.maxFailuresPerIp,
    windowMs: config.loginThrottle.windowSeconds * 1000,
    logger,
  }),
  logger,
});

await serveGrpc(kit, {
  grpc: config.grpc,
  admin: config.admin,
  services: [serviceEntry(UserService, createUserHandlers({ users }))],
  // Redis and RabbitMQ outages degrade (cache miss, events wait in the outbox); PostgreSQL is required.
  dependencies: [pgDependency(pool)],
}).catch(kit.fail);
