// Boots the mesh for the benchmark from the compiled build (node dist/...), with the env conventions of
// test/support/mesh.ts: its own databases, Redis key prefix, exchanges and queues, storage and temp
// directories, every listener on 127.0.0.1 and ephemeral ports. Production defaults otherwise (bcrypt
// cost, logs to RabbitMQ), except the gateway's rate limits, raised so the load is never throttled.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import * as amqp from "amqplib";
import { Redis } from "ioredis";
import { dropTestDatabase, testDatabaseUrl } from "../../test/support/pg.js";
import { freePort, repoRoot, startChild, type BenchChild } from "./child.js";

export type MeshName = "session" | "user" | "photo" | "gateway";
export const meshNames: readonly MeshName[] = ["session", "user", "photo", "gateway"];

export interface BenchMesh {
  readonly procs: Record<MeshName, BenchChild>;
  readonly baseUrl: string;
  readonly run: string;
  readonly keyPrefix: string;
  readonly logExchange: string;
  /** Starts one more session process on the same Redis data (e.g. with other log settings). */
  startExtraSession(name: string, env: Record<string, string>): Promise<BenchChild>;
  /** Stops every process (gateway first) and removes everything the run created. Never rejects. */
  stop(): Promise<Record<string, number | string>>;
}

export interface BenchMeshOptions {
  /** Where the processes' logs go (one file per process). */
  readonly workDir: string;
  /** Processes started with --cpu-prof, writing into profileDir. */
  readonly profile?: readonly string[];
  readonly profileDir?: string;
  readonly gatewayEnv?: Record<string, string>;
  /** Node flags for every mesh process (e.g. V8 heap settings to compare). */
  readonly nodeArgs?: readonly string[];
}

const entries: Record<MeshName, string> = {
  session: "dist/services/session/main.js",
  user: "dist/services/user/main.js",
  photo: "dist/services/photo/main.js",
  gateway: "dist/gateway/main.js",
};

/** A huge limit for every gateway rate limiter: the bench measures throughput, not throttling. */
export const unthrottled: Record<string, string> = {
  USERMESH_RATE_LIMIT__PER_IP__POINTS: "1000000000",
  USERMESH_RATE_LIMIT__AUTH_PER_IP__POINTS: "1000000000",
  USERMESH_RATE_LIMIT__PER_USER__POINTS: "1000000000",
};

export async function startBenchMesh(options: BenchMeshOptions): Promise<BenchMesh> {
  for (const entry of Object.values(entries)) {
    if (!existsSync(join(repoRoot, entry))) throw new Error(`${entry} is missing: run make build first`);
  }
  const run = randomBytes(6).toString("hex");
  const keyPrefix = `bench:${run}:`;
  const logExchange = `bench.logs.${run}`;
  const exchange = `bench.user.${run}`;
  const queues = { queue: `bench.photo.${run}`, dlq: `bench.photo.dlq.${run}`, dlx: `bench.photo.dlx.${run}` };
  const databases = { user: `bench_user_${run}`, photo: `bench_photo_${run}` };
  const storageDir = join(options.workDir, "photos");
  const uploadTmp = join(options.workDir, "upload-tmp");

  const common: Record<string, string> = {
    USERMESH_REDIS__KEY_PREFIX: keyPrefix,
    USERMESH_LOG__EXCHANGE: logExchange,
    USERMESH_GRPC__HOST: "127.0.0.1",
    USERMESH_GRPC__PORT: "0",
    USERMESH_ADMIN__HOST: "127.0.0.1",
    USERMESH_ADMIN__PORT: "0",
    USERMESH_HTTP__HOST: "127.0.0.1",
    USERMESH_HTTP__PORT: "0",
  };
  const nodeArgsFor = (name: string): string[] => [
    ...(options.nodeArgs ?? []),
    ...(options.profile?.includes(name) && options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${name}.${run}.cpuprofile`] : []),
  ];
  const start = (name: string, entry: string, env: Record<string, string>, knownPorts?: { grpcPort: number; adminPort: number }) =>
    startChild({ name, entry, env: { ...common, ...env }, nodeArgs: nodeArgsFor(name), logFile: join(options.workDir, `${name}.log`), timeoutMs: 60_000, knownPorts });

  const procs: Partial<Record<string, BenchChild>> = {};
  const stopProcs = async () => {
    const codes: Record<string, number | string> = {};
    for (const name of ["gateway", "photo", "user", ...Object.keys(procs).filter((n) => !meshNames.includes(n as MeshName)), "session"]) {
      const proc = procs[name];
      if (proc) codes[name] = await proc.stop().catch((error: unknown) => String(error));
      delete procs[name];
    }
    return codes;
  };
  const cleanup = async () => {
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (error) {
        problems.push(`${what}: ${(error as Error).message}`);
      }
    };
    await attempt("databases", () => Promise.all(Object.values(databases).map((name) => dropTestDatabase(name))));
    await attempt("storage", () => Promise.all([rm(storageDir, { recursive: true, force: true }), rm(uploadTmp, { recursive: true, force: true })]));
    await attempt("redis", async () => {
      const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      try {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== "0");
      } finally {
        await redis.quit();
      }
    });
    await attempt("rabbitmq", async () => {
      const broker = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
      try {
        const channel = await broker.createChannel();
        for (const queue of [queues.queue, queues.dlq]) await channel.deleteQueue(queue).catch(() => {});
        for (const name of [exchange, queues.dlx, logExchange]) await channel.deleteExchange(name).catch(() => {});
      } finally {
        await broker.close().catch(() => {});
      }
    });
    if (problems.length) process.stderr.write(`bench: cleanup: ${problems.join("; ")}\n`);
  };

  try {
    procs.session = await start("session", entries.session, {});
    const sessionAddress = `127.0.0.1:${procs.session.grpcPort}`;
    procs.user = await start("user", entries.user, {
      USERMESH_POSTGRES__URL: testDatabaseUrl(databases.user),
      USERMESH_SESSION__ADDRESS: sessionAddress,
      USERMESH_EVENTS__EXCHANGE: exchange,
    });
    procs.photo = await start("photo", entries.photo, {
      USERMESH_POSTGRES__URL: testDatabaseUrl(databases.photo),
      USERMESH_STORAGE__BACKEND: "local",
      USERMESH_STORAGE__LOCAL__DIR: storageDir,
      USERMESH_UPLOAD__TEMP_DIR: uploadTmp,
      USERMESH_EVENTS__EXCHANGE: exchange,
      USERMESH_EVENTS__QUEUE: queues.queue,
      USERMESH_EVENTS__DEAD_LETTER_QUEUE: queues.dlq,
      USERMESH_EVENTS__DEAD_LETTER_EXCHANGE: queues.dlx,
    });
    procs.gateway = await start("gateway", entries.gateway, {
      USERMESH_UPSTREAMS__USER: `127.0.0.1:${procs.user.grpcPort}`,
      USERMESH_UPSTREAMS__SESSION: sessionAddress,
      USERMESH_UPSTREAMS__PHOTO: `127.0.0.1:${procs.photo.grpcPort}`,
      ...unthrottled,
      ...options.gatewayEnv,
    });
  } catch (error) {
    await stopProcs();
    await cleanup();
    throw error;
  }

  let stopped: Promise<Record<string, number | string>> | undefined;
  return {
    procs: procs as Record<MeshName, BenchChild>,
    baseUrl: `http://127.0.0.1:${procs.gateway.httpPort}`,
    run,
    keyPrefix,
    logExchange,
    async startExtraSession(name, env) {
      // Chosen ports and /healthz for readiness: with a log level above info there is no "serving" line.
      const ports = { grpcPort: await freePort(), adminPort: await freePort() };
      const proc = await start(name, entries.session, { ...env, USERMESH_GRPC__PORT: String(ports.grpcPort), USERMESH_ADMIN__PORT: String(ports.adminPort) }, ports);
      procs[name] = proc;
      return proc;
    },
    stop: () =>
      (stopped ??= (async () => {
        const codes = await stopProcs();
        await cleanup();
        return codes;
      })()),
  };
}
