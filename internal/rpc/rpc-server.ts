// Bootstraps a process's gRPC server: its services on grpc-js with the standard interceptors,
// grpc.health.v1.Health, server reflection, and a graceful stop.
import * as grpc from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor, ServiceImpl } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { addConnectService } from "./grpc-host.js";
import { addHealthService, type DependencyCheck, type HealthReporter } from "./health.js";
import { addReflectionService } from "./reflection.js";
import { createErrorInterceptor, createLoggingInterceptor, createScopeInterceptor, type RpcLogger } from "./server-interceptors.js";

/** A service and its implementation, checked together by the compiler. */
export interface ServiceEntry {
  readonly service: DescService;
  readonly impl: object;
}

export function serviceEntry<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceEntry {
  return { service, impl };
}

export interface RpcServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly services: readonly ServiceEntry[];
  readonly logger: RpcLogger;
  /** Placed between logging and error normalisation (e.g. metrics). */
  readonly interceptors?: readonly Interceptor[];
  readonly dependencies?: readonly DependencyCheck[];
  readonly healthIntervalMs?: number;
  readonly grpcOptions?: grpc.ServerOptions;
}

export interface RpcServer {
  readonly port: number;
  readonly health: HealthReporter;
  /**
   * Health goes NOT_SERVING, new calls are refused, calls in flight finish; after graceMs the
   * rest are cancelled. Resolves once the server is closed.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** The interceptors every host applies, outermost first. */
export function standardInterceptors(logger: RpcLogger, extra: readonly Interceptor[] = []): Interceptor[] {
  return [createScopeInterceptor(), createLoggingInterceptor(logger), ...extra, createErrorInterceptor()];
}

/** Starts serving. Rejects when the port cannot be bound. */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024, ...options.grpcOptions });
  const interceptors = standardInterceptors(options.logger, options.interceptors);
  for (const { service, impl } of options.services) {
    addConnectService(server, service, impl as ServiceImpl<DescService>, interceptors);
  }
  const health = addHealthService(server, {
    services: options.services.map((s) => s.service.typeName),
    dependencies: options.dependencies,
    intervalMs: options.healthIntervalMs,
  });
  addReflectionService(server, [...options.services.map((s) => s.service), Health]);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  await health.refresh();
  return {
    port,
    health,
    shutdown: (graceMs) => shutdownServer(server, health, graceMs),
  };
}

function shutdownServer(server: grpc.Server, health: HealthReporter, graceMs: number): Promise<void> {
  health.markShuttingDown();
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
