// `make run`: starts the mesh's compiled processes under the supervisor, in dependency order, each
// after the previous one is ready (gRPC health SERVING, or the gateway's /readyz). Ctrl-C stops all.
import { existsSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createGrpcTransport } from "../internal/rpc/grpc-transport.js";
import { createSupervisor, type ChildSpec } from "./supervisor.js";

interface MeshProcess {
  readonly name: string;
  readonly entry: string;
  readonly adminPort: number;
  readonly grpcPort?: number;
  readonly httpPort?: number;
}

const processes: MeshProcess[] = [
  { name: "logs", entry: "dist/services/logs/main.js", grpcPort: 50054, adminPort: 9094 },
  { name: "session", entry: "dist/services/session/main.js", grpcPort: 50052, adminPort: 9092 },
  { name: "user", entry: "dist/services/user/main.js", grpcPort: 50051, adminPort: 9091 },
  { name: "photo", entry: "dist/services/photo/main.js", grpcPort: 50053, adminPort: 9093 },
  { name: "gateway", entry: "dist/gateway/main.js", httpPort: 8080, adminPort: 9080 },
].filter((p) => existsSync(p.entry));

function grpcReady(port: number): () => Promise<boolean> {
  return async () => {
    const transport = createGrpcTransport({ address: `127.0.0.1:${port}`, retry: { maxAttempts: 1, initialBackoffMs: 0, maxBackoffMs: 0, multiplier: 1 } });
    try {
      const res = await createClient(Health, transport).check({ service: "" }, { timeoutMs: 1000 });
      return res.status === HealthCheckResponse_ServingStatus.SERVING;
    } finally {
      transport.close();
    }
  };
}

function httpReady(port: number): () => Promise<boolean> {
  return async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
}

const children: ChildSpec[] = processes.map((p) => ({
  name: p.name,
  command: process.execPath,
  args: [p.entry],
  ready: p.grpcPort ? grpcReady(p.grpcPort) : httpReady(p.httpPort!),
}));

const supervisor = createSupervisor({ children, out: (line) => process.stdout.write(`${line}\n`), color: process.stdout.isTTY });

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\nrun-mesh: ${signal}: stopping ${[...processes].reverse().map((p) => p.name).join(", ")}\n`);
  const clean = await supervisor.stop();
  process.exit(clean ? 0 : 1);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

try {
  await supervisor.start();
  const lines = processes.map((p) =>
    p.httpPort
      ? `  ${p.name.padEnd(8)} REST http://127.0.0.1:${p.httpPort}  docs http://127.0.0.1:${p.httpPort}/docs  metrics http://127.0.0.1:${p.adminPort}/metrics`
      : `  ${p.name.padEnd(8)} gRPC 127.0.0.1:${p.grpcPort}  metrics http://127.0.0.1:${p.adminPort}/metrics`,
  );
  process.stdout.write(["", "run-mesh: the mesh is up", ...lines, "  Ctrl-C stops everything.", ""].join("\n"));
} catch (error) {
  process.stderr.write(`run-mesh: ${(error as Error).message}\n`);
  await supervisor.stop();
  process.exit(1);
}
