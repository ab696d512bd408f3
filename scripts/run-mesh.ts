// `make run`: starts the mesh's compiled processes under the supervisor, in dependency order,
// after checking that PostgreSQL, Redis and RabbitMQ are reachable. Ctrl-C stops everything.
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createGrpcTransport } from "../internal/rpc/grpc-transport.js";
import { createSupervisor, type ChildSpec } from "./supervisor.js";

const processes = [
  { name: "session", grpcPort: 50052, adminPort: 9092 },
  { name: "user", grpcPort: 50051, adminPort: 9091 },
  { name: "photo", grpcPort: 50053, adminPort: 9093 },
] as const;

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

const children: ChildSpec[] = processes.map((p) => ({
  name: p.name,
  command: process.execPath,
  args: [`dist/services/${p.name}/main.js`],
  ready: grpcReady(p.grpcPort),
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
  process.stdout.write(
    [
      "",
      "run-mesh: the mesh is up",
      ...processes.map((p) => `  ${p.name.padEnd(8)} gRPC 127.0.0.1:${p.grpcPort}   metrics http://127.0.0.1:${p.adminPort}/metrics`),
      "  Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
} catch (error) {
  process.stderr.write(`run-mesh: ${(error as Error).message}\n`);
  await supervisor.stop();
  process.exit(1);
}
