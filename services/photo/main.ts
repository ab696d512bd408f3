// Photo service process: wiring only.
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import { loadConfig } from "../../internal/config/load-config.js";
import { createAmqpConsumer } from "../../internal/events/amqp-consumer.js";
import { getOrCreateCounter } from "../../internal/metrics/registry.js";
import { createProcessKit, serveGrpc } from "../../internal/process/process-kit.js";
import { serviceEntry } from "../../internal/rpc/rpc-server.js";
import { runMigrations } from "../../internal/stores/migrations.js";
import { createPgPool, ensureDatabase, pgDependency } from "../../internal/stores/postgres.js";
import { createRedisClient } from "../../internal/stores/redis-client.js";
import { createBlobJanitor } from "./blob-janitor.js";
import { photoConfigSchema } from "./config.js";
import { createPhotoHandlers } from "./handlers.js";
import { createPgPhotoStore } from "./pg-photo-store.js";
import { createRedisPhotoListCache } from "./photo-cache.js";
import { createPhotos, type BlobStore } from "./photos.js";
import { createLocalBlobStore } from "./storage/local-blob-store.js";
import { createMegaBlobStore } from "./storage/mega-blob-store.js";
import { spoolUpload } from "./upload/spool-upload.js";
import { createUserEventHandler } from "./user-events.js";

const config = loadConfig(photoConfigSchema, {
  file: process.env.USERMESH_CONFIG ?? fileURLToPath(new URL("./config.yml", import.meta.url)),
});
const kit = createProcessKit({ service: "photo", log: config.log, shutdown: config.shutdown, config });
const { logger, registry, shutdown } = kit;

await ensureDatabase(config.postgres.url).catch(kit.fail);
const pool = createPgPool(config.postgres.url, { max: config.postgres.poolMax, applicationName: "photo", logger });
shutdown.onShutdown("postgres", () => pool.end());
await runMigrations(pool, { dir: fileURLToPath(new URL("./migrations", import.meta.url)), logger }).catch(kit.fail);
await mkdir(config.upload.tempDir, { recursive: true, mode: 0o700 }).catch(kit.fail);

// Redis only caches lists here: the service keeps serving when it is down.
const redis = createRedisClient(config.redis.url, logger, "photo");
shutdown.onShutdown("redis", () => void redis.disconnect());

function createBlobStore(): BlobStore {
  if (config.storage.backend === "local") return createLocalBlobStore({ dir: config.storage.local.dir });
  const { email, password, gateway } = config.storage.mega;
  // The schema requires both when the backend is mega.
  const mega = createMegaBlobStore({ email: email!, password: password!, gateway, logger });
  shutdown.onShutdown("mega", () => mega.close());
  return mega;
}
const blobs = createBlobStore();
const store = createPgPhotoStore(pool);
const cache = createRedisPhotoListCache(redis, { keyPrefix: config.redis.keyPrefix, ttlSeconds: config.cache.listTtlSeconds, logger });

const janitor = createBlobJanitor({
  deletions: store,
  blobs,
  logger,
  intervalMs: config.janitor.intervalSeconds * 1000,
  batchSize: config.janitor.batchSize,
  backoffMs: { min: config.janitor.minBackoffSeconds * 1000, max: config.janitor.maxBackoffSeconds * 1000 },
  counters: {
    deleted: getOrCreateCounter(registry, { name: "photo_blobs_deleted_total", help: "Blobs the janitor deleted after an earlier failure.", labelNames: [] }),
    failed: getOrCreateCounter(registry, { name: "photo_blob_delete_failures_total", help: "Blob deletions that failed and were rescheduled.", labelNames: [] }),
  },
});
janitor.start();
shutdown.onShutdown("blob janitor", () => janitor.stop());

const consumer = createAmqpConsumer({
  url: config.amqp.url,
  queue: config.events.queue,
  bindings: [
    { exchange: config.events.exchange, exchangeType: "topic", routingKey: "user.registration" },
    { exchange: config.events.exchange, exchangeType: "topic", routingKey: "user.delete" },
  ],
  prefetch: config.events.prefetch,
  deadLetter: { exchange: config.events.deadLetterExchange, queue: config.events.deadLetterQueue },
  logger,
});
shutdown.onShutdown("event consumer", () => consumer.close(kit.drainMs));
// Not awaited: the service serves uploads and reads while RabbitMQ is away; events wait in the queue.
consumer
  .start(
    createUserEventHandler({
      users: store,
      deletions: store,
      blobs,
      cache,
      logger,
      counters: {
        consumed: getOrCreateCounter(registry, { name: "events_consumed_total", help: "User lifecycle events applied.", labelNames: ["type"] }),
        deadLettered: getOrCreateCounter(registry, { name: "photo_events_dead_lettered_total", help: "User events rejected to the dead-letter queue.", labelNames: ["reason"] }),
      },
    }),
  )
  .catch((error: unknown) => logger.error("event consumer stopped", { err: error }));

const photos = createPhotos({ store, users: store, deletions: store, blobs, cache, pagination: config.pagination, logger });
const handlers = createPhotoHandlers({
  photos,
  spool: (chunks) => spoolUpload(chunks, { dir: config.upload.tempDir, limits: { maxBytes: config.upload.maxBytes, maxPixels: config.upload.maxPixels } }),
  logger,
});

await serveGrpc(kit, {
  grpc: config.grpc,
  admin: config.admin,
  services: [serviceEntry(PhotoService, handlers)],
  dependencies: [pgDependency(pool)],
}).catch(kit.fail);
