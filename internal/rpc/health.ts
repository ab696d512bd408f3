// grpc.health.v1.Health for a grpc-js server, with statuses that follow the process's
// dependencies: SERVING while every dependency check passes, NOT_SERVING otherwise and on shutdown.
import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { checkAll, type DependencyCheck } from "../health/dependency-check.js";

export type { DependencyCheck };

export interface HealthReporter {
  /** Runs every check once and publishes the result; returns each dependency's state. */
  refresh(): Promise<Record<string, boolean>>;
  /** Marks everything NOT_SERVING for good and stops polling (first step of shutdown). */
  markShuttingDown(): void;
}

/**
 * Registers Health on the server for "" (the whole process) and each named service, polling the
 * checks every intervalMs (default 5 s). A check slower than timeoutMs counts as down.
 */
export function addHealthService(
  server: grpc.Server,
  options: { services: readonly string[]; dependencies?: readonly DependencyCheck[]; intervalMs?: number; timeoutMs?: number },
): HealthReporter {
  const names = ["", ...options.services];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "NOT_SERVING" as const])));
  health.addToServer(server);
  const dependencies = options.dependencies ?? [];
  const timeoutMs = options.timeoutMs ?? 1000;
  let shuttingDown = false;

  const publish = (serving: boolean) => {
    for (const name of names) health.setStatus(name, serving && !shuttingDown ? "SERVING" : "NOT_SERVING");
  };

  const refresh = async () => {
    const states = await checkAll(dependencies, timeoutMs);
    publish(Object.values(states).every(Boolean));
    return states;
  };

  const timer = setInterval(() => void refresh(), options.intervalMs ?? 5000);
  timer.unref();
  void refresh();

  return {
    refresh,
    markShuttingDown() {
      shuttingDown = true;
      clearInterval(timer);
      publish(false);
    },
  };
}
