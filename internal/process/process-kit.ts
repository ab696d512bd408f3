// What every process of the mesh starts the same way: logger (stdout + RabbitMQ), metrics registry,
// graceful shutdown, and, for gRPC services, the RPC server beside the admin HTTP port.
import type { Interceptor } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import type { AdminConfig, GrpcServerConfig, LogConfig, ShutdownConfig } from "../config/common-schema.js";
import { redactConfig } from "../config/load-config.js";
import { createShutdown, type Shutdown } from "../lifecycle/shutdown.js";
import { createAmqpLogTransport } from "../logging/amqp-log-transport.js";
import { createLogger, type RootLogger } from "../logging/logger.js";
import { startAdminServer, type AdminServer, type DependencyCheck } from "../metrics/admin-server.js";
import { createClientMetricsInterceptor, createServerMetricsInterceptor } from "../metrics/grpc-metrics.js";
import { createMetricsRegistry } from "../metrics/registry.js";
import { startRpcServer, type RpcServer, type ServiceEntry } from "../rpc/rpc-server.js";

export interface ProcessKit {
  readonly service: string;
  readonly logger: RootLogger;
  readonly registry: Registry;
  readonly shutdown: Shutdown;
  /** How long in-flight calls may take to finish on shutdown (most of the grace period). */
  readonly drainMs: number;
  /** Client interceptors for outgoing calls (grpc_client_* metrics). */
  readonly clientInterceptors: readonly Interceptor[];
  /** Logs why startup failed, stops what was started, and exits with status 1. */
  readonly fail: (error: unknown) => Promise<never>;
}

/**
 * Builds the logger, registry and shutdown of a process and logs its effective config (secrets
 * redacted). The logger is closed last on shutdown, so every other step can still log.
 */
export function createProcessKit(options: {
  service: string;
  log: LogConfig;
  shutdown: ShutdownConfig;
  config: unknown;
}): ProcessKit {
  const registry = createMetricsRegistry({ service: options.service });
  const transports = options.log.toBroker
    ? [createAmqpLogTransport({ url: options.log.amqpUrl, exchange: options.log.exchange, service: options.service, maxBuffered: options.log.maxBuffered, registry })]
    : [];
  const logger = createLogger({ service: options.service, level: options.log.level, transports });
  const shutdown = createShutdown({ logger, graceMs: options.shutdown.graceMs });
  shutdown.onShutdown("logger", () => logger.close());
  shutdown.listen();
  process.on("unhandledRejection", (reason) => logger.error("unhandled rejection", { err: reason }));
  logger.info("starting", { config: redactConfig(options.config) });
  // Leave a fifth of the grace period for the steps after the drain (stores, logger flush).
  const drainMs = Math.floor(options.shutdown.graceMs * 0.8);
  const fail = async (error: unknown): Promise<never> => {
    logger.error("startup failed", { err: error });
    await shutdown.run("startup failed");
    process.exit(1);
  };
  return { service: options.service, logger, registry, shutdown, drainMs, clientInterceptors: [createClientMetricsInterceptor(registry)], fail };
}

/** Starts the admin port (/metrics, /healthz, /readyz) and registers its shutdown. */
export async function serveAdmin(kit: ProcessKit, config: AdminConfig, dependencies: readonly DependencyCheck[]): Promise<AdminServer> {
  const admin = await startAdminServer({ host: config.host, port: config.port, registry: kit.registry, dependencies });
  kit.shutdown.onShutdown("admin server", () => admin.close());
  return admin;
}

/**
 * Starts the gRPC server (health follows `dependencies`) and the admin port, and registers their
 * shutdown: gRPC drains first (health NOT_SERVING, in-flight calls finish), then admin closes.
 * Steps registered before this call (stores, connections) run after both.
 */
export async function serveGrpc(
  kit: ProcessKit,
  options: { grpc: GrpcServerConfig; admin: AdminConfig; services: readonly ServiceEntry[]; dependencies: readonly DependencyCheck[] },
): Promise<{ rpc: RpcServer; adminPort: number }> {
  const admin = await serveAdmin(kit, options.admin, options.dependencies);
  const rpc = await startRpcServer({
    host: options.grpc.host,
    port: options.grpc.port,
    services: options.services,
    logger: kit.logger,
    interceptors: [createServerMetricsInterceptor(kit.registry)],
    dependencies: options.dependencies,
  });
  kit.shutdown.onShutdown("grpc server", () => rpc.shutdown(kit.drainMs));
  kit.logger.info("serving", { grpcPort: rpc.port, adminPort: admin.port, services: options.services.map((s) => s.service.typeName) });
  return { rpc, adminPort: admin.port };
}
