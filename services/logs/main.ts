// Logs service process: wiring only.
import { fileURLToPath } from "node:url";
import { LogService } from "../../gen/usermesh/logs/v1/logs_pb.js";
import { loadConfig } from "../../internal/config/load-config.js";
import { createAmqpConsumer } from "../../internal/events/amqp-consumer.js";
import { getOrCreateCounter, getOrCreateHistogram } from "../../internal/metrics/registry.js";
import { createProcessKit, serveGrpc } from "../../internal/process/process-kit.js";
import { serviceEntry } from "../../internal/rpc/rpc-server.js";
import { logsConfigSchema, writePolicyFrom } from "./config.js";
import { openFileLogStore } from "./file-log-store.js";
import { createLogHandlers } from "./handlers.js";
import { createIngest } from "./ingest.js";
import { createLiveTail } from "./live-tail.js";
import { createLogs } from "./logs.js";

const config = loadConfig(logsConfigSchema, {
  file: process.env.USERMESH_CONFIG ?? fileURLToPath(new URL("./config.yml", import.meta.url)),
});
// toBroker is forced off whatever the config says: this process consumes the exchange its logger would
// publish to, so each line it logs about a line it stored would come back as another line to store.
const kit = createProcessKit({ service: "logs", log: { ...config.log, toBroker: false }, shutdown: config.shutdown, config });
const { logger, registry, shutdown } = kit;
const policy = writePolicyFrom(config);

const store = await openFileLogStore({
  dir: config.storage.dir,
  maxFileBytes: config.storage.maxFileBytes,
  retentionDays: config.storage.retentionDays,
  fsync: policy.fsync,
  sweepIntervalMs: config.storage.sweepIntervalSeconds * 1000,
  logger,
}).catch(kit.fail);
shutdown.onShutdown("log store", () => store.close());

const tail = createLiveTail({
  bufferLines: config.tail.bufferLines,
  dropped: getOrCreateCounter(registry, { name: "logs_tail_dropped_total", help: "Lines a slow Tail subscriber lost.", labelNames: [] }),
});
const ingest = createIngest({
  writer: store,
  batch: policy.batch,
  onStored: (record) => tail.publish(record),
  logger,
  // Twice the lines one connection can hold unacked, and at least the default.
  redeliveryWindow: Math.max(20_000, 2 * config.ingest.prefetch),
  metrics: {
    // `service` here is the line's producer: a metric's own label wins over the registry's default one.
    ingested: getOrCreateCounter(registry, { name: "logs_ingested_total", help: "Log lines stored.", labelNames: ["service", "level"] }),
    malformed: getOrCreateCounter(registry, { name: "logs_malformed_total", help: "Messages that were not log lines, acked and dropped.", labelNames: ["reason"] }),
    duplicates: getOrCreateCounter(registry, { name: "logs_duplicates_total", help: "Redelivered copies of stored lines, not written again.", labelNames: [] }),
    writeSeconds: getOrCreateHistogram(registry, {
      name: "logs_write_seconds",
      help: "Time to write (and sync) one batch of lines.",
      labelNames: [],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    queueLagSeconds: getOrCreateHistogram(registry, {
      name: "logs_queue_lag_seconds",
      help: "From a line's ts to its storage.",
      labelNames: [],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    }),
  },
});
ingest.seed(await store.lastLines(2 * config.ingest.prefetch).catch(kit.fail));
shutdown.onShutdown("ingest", () => ingest.close());

const consumer = createAmqpConsumer({
  url: config.amqp.url,
  queue: config.ingest.queue,
  bindings: [{ exchange: config.ingest.exchange, exchangeType: "topic", routingKey: config.ingest.bindingKey }],
  prefetch: config.ingest.prefetch,
  logger,
});
// Closes before ingest and the store: cancels, lets batched lines be written and acked, then disconnects.
shutdown.onShutdown("log consumer", () => consumer.close(kit.drainMs));
// Not awaited: Search serves what is stored while RabbitMQ is away; lines wait in the durable queue.
consumer.start(ingest.handler).catch((error: unknown) => logger.error("log consumer stopped", { err: error }));

const handlers = createLogHandlers({ logs: createLogs({ store }), tail });

await serveGrpc(kit, {
  grpc: config.grpc,
  admin: config.admin,
  services: [serviceEntry(LogService, handlers)],
  dependencies: [{ name: "log storage", check: () => store.writable() }],
}).catch(kit.fail);
// Registered last, so it runs first: Tail streams never end by themselves and would hold the drain.
shutdown.onShutdown("tail streams", () => tail.close());
