// Starts the whole mesh as real processes (session, user, photo, gateway), isolated from other runs by
// fresh database names, a Redis key prefix, exchange and queue names and a storage directory.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import * as amqp from "amqplib";
import { dropTestDatabase, testDatabaseUrl, uniqueDatabaseName } from "./pg.js";
import { startServiceProcess, type ServiceProcess } from "./service-process.js";

export interface Mesh {
  /** Present when started with withLogs. */
  readonly logs?: ServiceProcess;
  readonly session: ServiceProcess;
  readonly user: ServiceProcess;
  readonly photo: ServiceProcess;
  readonly gateway: ServiceProcess;
  /** http://127.0.0.1:<port> of the gateway. */
  readonly baseUrl: string;
  readonly storageDir: string;
  readonly keyPrefix: string;
  /** The env each process was started with, to restart one the same way. */
  readonly envOf: Record<"session" | "user" | "photo" | "gateway", Record<string, string>>;
  /** Restarts a stopped process with its env on the same gRPC port. */
  restart(name: "session" | "user" | "photo"): Promise<ServiceProcess>;
  /** Stops every process (gateway first), drops what the run created; resolves with the exit codes. */
  stop(): Promise<Record<string, number | string>>;
}

export interface MeshOptions {
  readonly gatewayEnv?: Record<string, string>;
  readonly userEnv?: Record<string, string>;
  readonly photoEnv?: Record<string, string>;
  /** Given to every process. */
  readonly commonEnv?: Record<string, string>;
  /** Starts the logs service first and has every other process publish its lines to it. */
  readonly withLogs?: boolean;
}

export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const run = randomUUID();
  const keyPrefix = `test:mesh:${run}:`;
  const exchange = `test.user.${run}`;
  const queues = { queue: `test.photo.${run}`, dlq: `test.photo.dlq.${run}`, dlx: `test.photo.dlx.${run}` };
  const databases = { user: uniqueDatabaseName("mesh_user"), photo: uniqueDatabaseName("mesh_photo") };
  const storageDir = await mkdtemp(join(tmpdir(), "mesh-photos-"));
  const logsExchange = `test.logs.${run}`;
  const logsQueue = `test.logs.ingest.${run}`;
  const logsDir = await mkdtemp(join(tmpdir(), "mesh-logs-"));
  const logging: Record<string, string> = options.withLogs
    ? { USERMESH_LOG__TO_BROKER: "true", USERMESH_LOG__EXCHANGE: logsExchange }
    : { USERMESH_LOG__TO_BROKER: "false" };
  const common: Record<string, string> = { USERMESH_REDIS__KEY_PREFIX: keyPrefix, ...logging, ...options.commonEnv };

  const envOf: Mesh["envOf"] = { session: { ...common }, user: {}, photo: {}, gateway: {} };
  const procs: Partial<Record<"logs" | "session" | "user" | "photo" | "gateway", ServiceProcess>> = {};
  const stopAll = async () => {
    const codes: Record<string, number | string> = {};
    for (const name of ["gateway", "photo", "user", "session", "logs"] as const) {
      const proc = procs[name];
      if (proc) codes[name] = await proc.stop();
    }
    return codes;
  };
  try {
    if (options.withLogs) {
      // First, so its queue is bound before anyone logs (the exchange drops lines nobody queues).
      procs.logs = await startServiceProcess("services/logs/main.ts", {
        USERMESH_INGEST__EXCHANGE: logsExchange,
        USERMESH_INGEST__QUEUE: logsQueue,
        USERMESH_STORAGE__DIR: logsDir,
      });
    }
    procs.session = await startServiceProcess("services/session/main.ts", envOf.session);
    envOf.session = { ...envOf.session, USERMESH_GRPC__PORT: String(procs.session.grpcPort) };
    envOf.user = {
      ...common,
      USERMESH_POSTGRES__URL: testDatabaseUrl(databases.user),
      USERMESH_SESSION__ADDRESS: `127.0.0.1:${procs.session.grpcPort}`,
      USERMESH_EVENTS__EXCHANGE: exchange,
      USERMESH_HASHING__BCRYPT_COST: "4",
      ...options.userEnv,
    };
    procs.user = await startServiceProcess("services/user/main.ts", envOf.user);
    envOf.user = { ...envOf.user, USERMESH_GRPC__PORT: String(procs.user.grpcPort) };
    envOf.photo = {
      ...common,
      USERMESH_POSTGRES__URL: testDatabaseUrl(databases.photo),
      USERMESH_STORAGE__LOCAL__DIR: storageDir,
      USERMESH_EVENTS__EXCHANGE: exchange,
      USERMESH_EVENTS__QUEUE: queues.queue,
      USERMESH_EVENTS__DEAD_LETTER_QUEUE: queues.dlq,
      USERMESH_EVENTS__DEAD_LETTER_EXCHANGE: queues.dlx,
      ...options.photoEnv,
    };
    procs.photo = await startServiceProcess("services/photo/main.ts", envOf.photo);
    envOf.photo = { ...envOf.photo, USERMESH_GRPC__PORT: String(procs.photo.grpcPort) };
    envOf.gateway = {
      ...common,
      USERMESH_UPSTREAMS__USER: `127.0.0.1:${procs.user.grpcPort}`,
      USERMESH_UPSTREAMS__SESSION: `127.0.0.1:${procs.session.grpcPort}`,
      USERMESH_UPSTREAMS__PHOTO: `127.0.0.1:${procs.photo.grpcPort}`,
      ...options.gatewayEnv,
    };
    procs.gateway = await startServiceProcess("gateway/main.ts", envOf.gateway);
  } catch (error) {
    await stopAll();
    throw error;
  }

  const mesh: Mesh = {
    get logs() { return procs.logs; },
    get session() { return procs.session!; },
    get user() { return procs.user!; },
    get photo() { return procs.photo!; },
    get gateway() { return procs.gateway!; },
    baseUrl: `http://127.0.0.1:${procs.gateway.httpPort}`,
    storageDir,
    keyPrefix,
    envOf,
    async restart(name) {
      procs[name] = await startServiceProcess(`services/${name}/main.ts`, envOf[name]);
      return procs[name];
    },
    async stop() {
      const codes = await stopAll();
      await Promise.all(Object.values(databases).map((name) => dropTestDatabase(name)));
      await rm(storageDir, { recursive: true, force: true });
      await rm(logsDir, { recursive: true, force: true });
      const redis = new Redis("redis://127.0.0.1:6379");
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      const broker = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
      const channel = await broker.createChannel();
      for (const queue of [queues.queue, queues.dlq, logsQueue]) await channel.deleteQueue(queue).catch(() => {});
      for (const name of [exchange, queues.dlx, logsExchange]) await channel.deleteExchange(name).catch(() => {});
      await broker.close().catch(() => {});
      return codes;
    },
  };
  return mesh;
}
