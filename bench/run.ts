// `make bench`: measures the machine's baselines and the mesh's scenarios in one run, with the same load
// settings, and reports every mesh figure as a ratio to its baseline (see docs/performance.md).
//
// Environment (all optional):
//   BENCH_SECONDS   measured seconds per run (default 6)      BENCH_WARMUP  warm-up seconds (default 2)
//   BENCH_CONCURRENCY  requests / calls in flight (default 50)
//   BENCH_ONLY      comma list of steps to run: E,U,G,G'srv,G',G'prod,connect,C,R,mesh (default: all)
//   BENCH_PROFILE   comma list of processes to run with --cpu-prof: mesh ones (session,user,photo,gateway)
//                   or baseline servers by mode (express,upload-sink,grpc-bare,grpc-adapter,grpc-kit,connect-node);
//                   profiles land in bench/results/profiles/ (read them with bench/cpuprofile-top.ts)
//   BENCH_SCENARIOS comma list of mesh scenarios (me,login,validate,upload; default: all)
//   BENCH_MESH_NODE_ARGS  node flags for the mesh processes, space-separated (e.g. "--max-semi-space-size=2")
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as amqp from "amqplib";
import bcrypt from "bcrypt";
import { toBinary, create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import YAML from "yaml";
import { ValidateSessionRequestSchema } from "../gen/usermesh/session/v1/session_pb.js";
import { createGrpcTransport } from "../internal/rpc/grpc-transport.js";
import { largePng, png } from "../services/photo/upload/test/test-images.js";
import { repoRoot, startChild, type BenchChild } from "./lib/child.js";
import { autocannonRun, autocannonWindowed, httpLoad, retryAfterLoop, rpcLoad, type LoadResult, type LoadSettings } from "./lib/load.js";
import { rawUnaryClient } from "./lib/grpc-raw.js";
import { startBenchMesh, meshNames, type BenchMesh } from "./lib/mesh.js";
import { MiB, memoryOfAll, rssOfAll, sampleRss } from "./lib/rss.js";
import { renderMarkdown, type BenchReport, type Figure, type Goal } from "./lib/report.js";
import { BenchService, benchEmptyPath } from "./servers/bench-service.js";

const startedAt = new Date();
const t0 = performance.now();
const num = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const list = (name: string) => (process.env[name] ?? "").split(",").map((s) => s.trim()).filter(Boolean);

const settings: LoadSettings = {
  concurrency: num("BENCH_CONCURRENCY", 50),
  warmupSeconds: num("BENCH_WARMUP", 2),
  seconds: num("BENCH_SECONDS", 6),
};
const only = list("BENCH_ONLY");
const wants = (step: string) => only.length === 0 || only.includes(step);
const scenarios = list("BENCH_SCENARIOS");
const wantsScenario = (name: string) => scenarios.length === 0 || scenarios.includes(name);
const profile = list("BENCH_PROFILE");
const cores = availableParallelism();

const resultsDir = join(repoRoot, "bench/results");
const profileDir = join(resultsDir, "profiles");
mkdirSync(resultsDir, { recursive: true });
if (profile.length) mkdirSync(profileDir, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), "usermesh-bench-"));
const run = randomBytes(4).toString("hex");
const baselineLogExchange = `bench.logs.baseline.${run}`;

const report: BenchReport = {
  startedAt: startedAt.toISOString(),
  machine: { cores, cpu: cpus()[0]?.model ?? "?", memoryMiB: Math.round(totalmem() / MiB), node: process.version },
  settings: { ...settings, pipelining: 1, generator: "autocannon (HTTP), bench/lib/load.ts callLoop over one grpc-js channel (gRPC)" },
  baselines: {},
  scenarios: {},
  rss: {},
  memory: {},
  goals: [],
  notes: [],
  durationSeconds: 0,
};
const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
const note = (line: string) => {
  report.notes.push(line);
  log(`note: ${line}`);
};

// ---------------------------------------------------------------------------------------------------
// CPU time of a child process (user + system), from /proc, to give each figure its server CPU per request.
const clockTicks = 100;
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}
/** The local Redis and RabbitMQ, whose CPU is part of what a mesh request costs (read-only: /proc). */
const infra: Record<string, { pid: number }> = {};
for (const [name, command] of [["redis", "redis-server"], ["rabbitmq", "beam.smp"]] as const) {
  const found = spawnSync("pgrep", ["-x", command], { encoding: "utf8" }).stdout?.trim().split("\n")[0];
  if (found) infra[name] = { pid: Number(found) };
}

/** Busy CPU seconds of the whole machine (all cores) and wall time, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: (total - fields[3] - fields[4]) / clockTicks, total: total / clockTicks };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/**
 * This machine is shared: before a measured run, waits (at most maxMs) until at least 90 % of its CPU
 * has been idle over half a second, and says so in the notes when it never was.
 */
async function waitForQuiet(label: string, maxMs = 15_000): Promise<void> {
  const end = Date.now() + maxMs;
  let idleShare = 0;
  while (Date.now() < end) {
    const a = machineCpu();
    await sleep(500);
    const b = machineCpu();
    idleShare = 1 - (b.busy - a.busy) / Math.max(0.001, b.total - a.total);
    if (idleShare >= 0.9) return;
  }
  note(`${label}: the machine was still ${Math.round((1 - idleShare) * 100)} % busy with other work when the run started`);
}

/** Measures the CPU each process spends; `other` is what the rest of the machine used meanwhile. */
function cpuMeter(procs: Record<string, { pid: number }>) {
  const before = Object.fromEntries(Object.entries(procs).map(([n, p]) => [n, cpuSecondsOf(p.pid)]));
  const self0 = process.cpuUsage();
  const machine0 = machineCpu();
  return (completed: number) => {
    const perRequestMs: Record<string, number> = {};
    let ours = 0;
    for (const [name, p] of Object.entries(procs)) {
      const used = cpuSecondsOf(p.pid) - before[name];
      ours += used;
      perRequestMs[name] = round3((used * 1000) / Math.max(1, completed));
    }
    const self = process.cpuUsage(self0);
    const selfSeconds = (self.user + self.system) / 1e6;
    ours += selfSeconds;
    perRequestMs["load generator"] = round3((selfSeconds * 1000) / Math.max(1, completed));
    const machine = machineCpu();
    // CPU used by processes outside the bench (other tenants, the kernel's own threads) during the run.
    perRequestMs.other = round3((Math.max(0, machine.busy - machine0.busy - ours) * 1000) / Math.max(1, completed));
    return perRequestMs;
  };
}
const round3 = (n: number) => Math.round(n * 1000) / 1000;
const round1 = (n: number) => Math.round(n * 10) / 10;

async function baselineServer(mode: string, env: Record<string, string> = {}): Promise<BenchChild> {
  return startChild({
    name: mode,
    entry: "bench/servers/baseline.ts",
    nodeArgs: ["--import", "tsx", ...(profile.includes(mode) ? ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, `${mode}.${run}`)}`] : [])],
    env: { BENCH_MODE: mode, USERMESH_LOG__EXCHANGE: baselineLogExchange, ...env },
    logFile: join(workDir, `baseline-${mode}.log`),
  });
}

async function measured(label: string, procs: Record<string, { pid: number }>, warmup: () => Promise<unknown>, run: () => Promise<LoadResult>): Promise<Figure> {
  await waitForQuiet(label);
  await warmup();
  const meter = cpuMeter(procs);
  const result = await run();
  return { ...result, cpuMsPerRequest: meter(result.ok) };
}

/**
 * Like measured, for bodies that take long to send (1 MiB uploads): one continuous run whose first
 * warmupSeconds are not counted, the CPU meter started when counting starts. A separate warm-up run
 * would abandon its 50 uploads in flight, and the servers' work on them would be charged to the
 * measured run.
 */
async function measuredWindowed(label: string, procs: Record<string, { pid: number }>, target: Parameters<typeof autocannonWindowed>[0]): Promise<Figure> {
  await waitForQuiet(label);
  const run = autocannonWindowed(target, settings.concurrency, settings.warmupSeconds, settings.seconds);
  await sleep(settings.warmupSeconds * 1000);
  const meter = cpuMeter(procs);
  const result = await run;
  return { ...result, cpuMsPerRequest: meter(result.ok) };
}

function summary(name: string, r: Figure, unit = "req/s"): void {
  const cpu = r.cpuMsPerRequest ? ` cpu ms/req ${Object.entries(r.cpuMsPerRequest).map(([n, v]) => `${n} ${v}`).join(", ")}` : "";
  const failed = r.failed ? ` failed ${r.failed} ${JSON.stringify(r.failures)}` : "";
  log(`${name}: ${Math.round(r.okPerSecond)} ${unit}, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms${failed}${cpu}`);
}

// ---------------------------------------------------------------------------------------------------
// Baselines
const noWarmup = { ...settings, warmupSeconds: 0 };
const upload = largePng(1024, 1024, MiB - 57); // exactly 1 MiB: a valid PNG header, random IDAT
if (upload.length !== MiB) throw new Error(`upload body is ${upload.length} bytes`);

async function httpBaseline(key: string, mode: string, target: (port: number) => Parameters<typeof httpLoad>[0], windowed = false): Promise<void> {
  const server = await baselineServer(mode);
  try {
    const t = target(server.httpPort);
    const procs = { server, ...infra };
    const r = windowed ? await measuredWindowed(key, procs, t) : await measured(key, procs, () => autocannonRun(t, settings.concurrency, settings.warmupSeconds), () => httpLoad(t, noWarmup));
    report.baselines[key] = r;
    summary(key, r);
  } finally {
    await server.stop(5000);
  }
}

async function rpcBaseline(key: string, mode: string, client: "raw" | "adapter", env?: Record<string, string>): Promise<void> {
  const server = await baselineServer(mode, env);
  const address = `127.0.0.1:${server.grpcPort}`;
  let call: () => Promise<unknown>;
  let close: () => void;
  if (client === "raw") {
    const raw = rawUnaryClient(address, benchEmptyPath, new Uint8Array(0));
    call = raw.call;
    close = raw.close;
  } else {
    const transport = createGrpcTransport({ address });
    const typed = createClient(BenchService, transport) as unknown as { empty(req: object): Promise<unknown> };
    call = () => typed.empty({});
    close = () => transport.close();
  }
  try {
    const r = await measured(key, { server, ...infra }, () => rpcLoad(call, { ...settings, seconds: settings.warmupSeconds, warmupSeconds: 0 }), () => rpcLoad(call, noWarmup));
    report.baselines[key] = r;
    summary(key, r, "calls/s");
  } finally {
    close();
    await server.stop(5000);
  }
}

function configuredBcrypt(): { cost: number; maxConcurrent: number } {
  const file = YAML.parse(readFileSync(join(repoRoot, "services/user/config.yml"), "utf8")) as { hashing?: { bcryptCost?: number; maxConcurrentHashes?: number } };
  const cost = Number(process.env.USERMESH_HASHING__BCRYPT_COST ?? file.hashing?.bcryptCost ?? 12);
  const maxConcurrent = Number(process.env.USERMESH_HASHING__MAX_CONCURRENT_HASHES ?? file.hashing?.maxConcurrentHashes ?? 2);
  return { cost, maxConcurrent };
}

async function bcryptBaseline(): Promise<void> {
  const { cost } = configuredBcrypt();
  const hash = await bcrypt.hash("correct horse battery", cost);
  const loop = async (seconds: number) => {
    let done = 0;
    const end = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: cores }, async () => {
        while (performance.now() < end) {
          await bcrypt.compare("correct horse battery", hash);
          done++;
        }
      }),
    );
    return { done, seconds: (performance.now() - started) / 1000 };
  };
  await loop(1);
  const { done, seconds } = await loop(settings.seconds);
  const r: LoadResult = { ok: done, okPerSecond: done / seconds, failed: 0, p50Ms: NaN, p99Ms: NaN, maxMs: NaN, seconds, failures: {} };
  report.baselines.C = { ...r, cost, inFlight: cores };
  log(`C: ${round1(r.okPerSecond)} bcrypt compares/s at cost ${cost}, ${cores} in flight`);
}

async function redisBaseline(): Promise<void> {
  if (spawnSync("sh", ["-c", "command -v redis-benchmark"]).status !== 0) {
    note("R skipped: redis-benchmark is not installed (apt-get install redis-tools)");
    return;
  }
  const requests = 200_000;
  const child = spawn("redis-benchmark", ["-h", "127.0.0.1", "-p", "6379", "-t", "get", "-c", String(settings.concurrency), "-n", String(requests), "-P", "1", "--csv"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(killer);
  const row = out.split("\n").find((line) => line.startsWith('"GET"'));
  if (!row) {
    note(`R skipped: redis-benchmark printed no GET row (${out.trim().slice(0, 200)})`);
    return;
  }
  const cols = row.split(",").map((c) => c.replace(/"/g, ""));
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const r: LoadResult = { ok: requests, okPerSecond: Number(cols[1]), failed: 0, p50Ms: Number(cols[4]), p99Ms: Number(cols[6]), maxMs: Number(cols[7]), seconds: requests / Number(cols[1]), failures: {} };
  report.baselines.R = r;
  summary("R", r, "GET/s");
}

// ---------------------------------------------------------------------------------------------------
// Mesh
async function json(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function register(baseUrl: string, email: string, password: string): Promise<string> {
  const body = await json(
    await fetch(`${baseUrl}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password, name: "Bench" }),
      signal: AbortSignal.timeout(10_000),
    }),
  );
  return (body.session as { token: string }).token;
}

async function meshScenarios(mesh: BenchMesh): Promise<void> {
  const { procs, baseUrl } = mesh;
  const pids = { ...Object.fromEntries(meshNames.map((n) => [n, procs[n]])), ...infra };
  const adminPorts = Object.fromEntries(meshNames.map((n) => [n, procs[n].adminPort]));

  // 5a. Idle RSS after start (2 s after the last process reported serving).
  await sleep(2000);
  report.memory.afterStart = await memoryOfAll(adminPorts);
  report.rss.afterStart = rssFrom(report.memory.afterStart);
  log(`idle RSS after start (MiB): ${fmtRss(report.rss.afterStart)}; V8 heap used/total ${fmtHeap(report.memory.afterStart)}`);

  // Accounts: A for /me and uploads, B for the login storm (its sessions must not evict A's).
  const password = "correct horse battery staple";
  const emailA = `bench-a-${mesh.run}@example.com`;
  const emailB = `bench-b-${mesh.run}@example.com`;
  const tokenA = await register(baseUrl, emailA, password);
  await register(baseUrl, emailB, password);
  const auth = { authorization: `Bearer ${tokenA}` };
  // One photo, so /me carries a non-empty (cached) list.
  await json(await fetch(`${baseUrl}/me/photos`, { method: "POST", headers: { ...auth, "content-type": "image/png" }, body: png(64, 64), signal: AbortSignal.timeout(10_000) }));
  const me = await json(await fetch(`${baseUrl}/me`, { headers: auth, signal: AbortSignal.timeout(5000) }));
  if (!Array.isArray(me.photos) || me.photos.length !== 1) throw new Error(`GET /me: unexpected body ${JSON.stringify(me).slice(0, 300)}`);

  const meTarget = { url: `${baseUrl}/me`, headers: auth };

  // 1. GET /me.
  if (wantsScenario("me")) {
    const r = await measured("S1", pids, () => autocannonRun(meTarget, settings.concurrency, settings.warmupSeconds), () => httpLoad(meTarget, noWarmup));
    report.scenarios.me = r;
    summary("S1 GET /me", r);
    // 5b. Idle RSS after scenario 1.
    await sleep(2000);
    report.memory.afterMe = await memoryOfAll(adminPorts);
    report.rss.afterMe = rssFrom(report.memory.afterMe);
    log(`idle RSS after GET /me (MiB): ${fmtRss(report.rss.afterMe)}; V8 heap used/total ${fmtHeap(report.memory.afterMe)}`);
  }

  // 2. POST /auth/login. First at twice the hashing slots in flight (the login path's capacity, never
  //    queueing past the deadline), then the storm at the usual concurrency, with GET /me at a low rate
  //    alongside; then how long the user service keeps hashing once the storm has stopped.
  if (wantsScenario("login")) {
    const loginTarget = {
      url: `${baseUrl}/auth/login`,
      method: "POST" as const,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: emailB, password }),
    };
    const { maxConcurrent } = configuredBcrypt();
    const modest = maxConcurrent * 2;
    report.scenarios.loginModest = {
      ...(await measured("S2 modest", pids, () => autocannonRun(loginTarget, modest, settings.warmupSeconds), () => autocannonRun(loginTarget, modest, settings.seconds))),
      inFlight: modest,
    };
    summary(`S2 POST /auth/login, ${modest} in flight`, report.scenarios.loginModest, "logins/s");

    // One continuous storm (a separate warm-up run would leave its requests queued, orphaned, in the
    // user service); only its last `seconds` count, and GET /me runs alongside during those. The storm's
    // clients honour 429 + Retry-After (the user service sheds logins it could not hash in time).
    const meRate = 20;
    await waitForQuiet("S2 storm");
    const storm = retryAfterLoop(loginTarget, settings.concurrency, settings.warmupSeconds, settings.seconds);
    await sleep(settings.warmupSeconds * 1000);
    const meter = cpuMeter(pids);
    const [logins, meDuring] = await Promise.all([storm, autocannonRun({ ...meTarget, overallRate: meRate }, 5, settings.seconds)]);
    report.scenarios.login = { ...logins, cpuMsPerRequest: meter(logins.ok), inFlight: settings.concurrency };
    report.scenarios.meDuringLogins = { ...meDuring, rate: meRate };
    summary(`S2 POST /auth/login, ${settings.concurrency} in flight`, report.scenarios.login, "logins/s");
    summary(`S2 GET /me at ${meRate}/s during the storm`, meDuring);
    // Work the user service still does for requests whose callers are gone.
    const drained = await waitForIdle(procs.user.pid, 90_000);
    report.scenarios.login.drainSeconds = drained;
    log(`S2 the user service kept working ${drained} s after the storm ended`);

    // The same storm from clients that ignore Retry-After and resend at once (autocannon): what the
    // refusals cost when nothing in front (the gateway's per-IP auth limit, here raised) stops them.
    const rude = await measuredWindowed("S2 storm, Retry-After ignored", pids, loginTarget);
    report.scenarios.loginIgnoringRetryAfter = { ...rude, inFlight: settings.concurrency };
    summary(`S2 POST /auth/login, ${settings.concurrency} in flight, Retry-After ignored`, report.scenarios.loginIgnoringRetryAfter, "logins/s");
    await waitForIdle(procs.user.pid, 90_000);
  }

  // 3. ValidateSession directly, over one channel; then the same on a session process that does not
  //    log to RabbitMQ, and on one that logs nothing per call, to price the per-call logging.
  if (wantsScenario("validate")) {
    const request = toBinary(ValidateSessionRequestSchema, create(ValidateSessionRequestSchema, { token: tokenA }));
    const path = "/usermesh.session.v1.SessionService/ValidateSession";
    const validate = async (key: string, proc: BenchChild) => {
      const client = rawUnaryClient(`127.0.0.1:${proc.grpcPort}`, path, request);
      try {
        const r = await measured(key, { [proc.name]: proc, ...infra }, () => rpcLoad(client.call, { ...settings, seconds: settings.warmupSeconds, warmupSeconds: 0 }), () => rpcLoad(client.call, noWarmup));
        report.scenarios[key] = r;
        summary(`S3 ValidateSession (${key})`, r, "calls/s");
      } finally {
        client.close();
      }
    };
    await validate("validate", procs.session);
    for (const [key, env] of [
      ["validateNoBroker", { USERMESH_LOG__TO_BROKER: "false" }],
      ["validateNoCallLog", { USERMESH_LOG__TO_BROKER: "false", USERMESH_LOG__LEVEL: "warn" }],
    ] as const) {
      const extra = await mesh.startExtraSession(`session-${key}`, env);
      try {
        await validate(key, extra);
      } finally {
        await extra.stop();
      }
    }
  }

  // 4. 1 MiB uploads through the gateway, with the RSS of gateway and photo sampled throughout.
  if (wantsScenario("upload")) {
    const uploadTarget = { url: `${baseUrl}/me/photos`, method: "POST" as const, headers: { ...auth, "content-type": "image/png" }, body: upload, timeoutSeconds: 30 };
    const rssPorts = { gateway: procs.gateway.adminPort, photo: procs.photo.adminPort };
    const before = await rssOfAll(rssPorts);
    const sampler = sampleRss(rssPorts, 500);
    // Measured like U (continuous, windowed), so the ratio compares like with like.
    const r = await measuredWindowed("S4", pids, uploadTarget);
    const peaks = await sampler.stop();
    report.scenarios.upload = { ...r, mbPerSecond: round1((r.okPerSecond * upload.length) / 1e6) };
    report.rss.upload = Object.fromEntries(
      Object.entries(rssPorts).map(([name]) => {
        const peak = peaks[name]?.peak ?? NaN;
        const growth = peak - before[name];
        return [name, { before: before[name], peak, growthPerUploadInFlight: growth / settings.concurrency }];
      }),
    );
    summary("S4 upload 1 MiB", r, "uploads/s");
    log(`S4 RSS: ${Object.entries(report.rss.upload).map(([n, v]) => `${n} ${round1(v.before / MiB)} -> ${round1(v.peak / MiB)} MiB (${round1(v.growthPerUploadInFlight / MiB)} MiB per upload in flight)`).join(", ")}`);
  }
}

/** Waits until a process has used (almost) no CPU for a second, at most maxMs; resolves with the seconds it took. */
async function waitForIdle(pid: number, maxMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < maxMs) {
    const before = cpuSecondsOf(pid);
    await sleep(1000);
    if (cpuSecondsOf(pid) - before < 0.1) break;
  }
  return Math.round((Date.now() - started) / 1000);
}

type Memory = Record<string, { rss: number; heapUsed: number; heapTotal: number }>;
const rssFrom = (memory: Memory) => Object.fromEntries(Object.entries(memory).map(([n, m]) => [n, m.rss]));
const fmtHeap = (memory: Memory) => Object.entries(memory).map(([n, m]) => `${n} ${round1(m.heapUsed / MiB)}/${round1(m.heapTotal / MiB)}`).join(", ");
const fmtRss = (rss: Record<string, number>) => Object.entries(rss).map(([n, v]) => `${n} ${round1(v / MiB)}`).join(", ");

// ---------------------------------------------------------------------------------------------------
function evaluateGoals(): Goal[] {
  const b = report.baselines;
  const s = report.scenarios;
  const goals: Goal[] = [];
  const ratio = (x: LoadResult | undefined, base: LoadResult | undefined) => (x && base ? x.okPerSecond / base.okPerSecond : undefined);
  const add = (goal: string, value: number | undefined, target: number, cmp: "≥" | "<" | "≤", shown?: string) =>
    goals.push({ goal, value, target, met: value === undefined ? undefined : cmp === "≥" ? value >= target : cmp === "<" ? value < target : value <= target, shown });
  add("GET /me ≥ 0.35·E", ratio(s.me, b.E), 0.35, "≥");
  add("login ≥ 0.85·C", ratio(s.login, b.C), 0.85, "≥");
  add("GET /me p99 < 50 ms during the login storm", s.meDuringLogins?.p99Ms, 50, "<", s.meDuringLogins ? `${s.meDuringLogins.p99Ms} ms` : undefined);
  add("ValidateSession ≥ 0.65·G", ratio(s.validate, b.G), 0.65, "≥");
  add("upload ≥ 0.5·U", ratio(s.upload, b.U), 0.5, "≥");
  for (const [name, v] of Object.entries(report.rss.upload ?? {})) {
    add(`upload RSS growth ≤ 3× payload per upload in flight (${name})`, v.growthPerUploadInFlight / upload.length, 3, "≤", `${round1(v.growthPerUploadInFlight / MiB)} MiB`);
  }
  for (const [when, rss] of [["after start", report.rss.afterStart], ["after GET /me", report.rss.afterMe]] as const) {
    if (!rss) continue;
    const worst = Object.entries(rss).sort((a, b2) => b2[1] - a[1])[0];
    add(`idle RSS ≤ 80 MiB per process (${when}; largest: ${worst[0]})`, worst[1] / MiB, 80, "≤", `${round1(worst[1] / MiB)} MiB`);
  }
  return goals;
}

let mesh: BenchMesh | undefined;
let interrupted = false;
const onSignal = (signal: string) => {
  if (interrupted) process.exit(130);
  interrupted = true;
  log(`${signal}: stopping the mesh and cleaning up`);
  void (mesh?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.on("SIGINT", () => onSignal("SIGINT"));
process.on("SIGTERM", () => onSignal("SIGTERM"));

let exitCode = 0;
try {
  log(`${cores} cores, node ${process.version}; concurrency ${settings.concurrency}, warm-up ${settings.warmupSeconds} s, ${settings.seconds} s per run`);
  if (wants("E")) await httpBaseline("E", "express", (port) => ({ url: `http://127.0.0.1:${port}/hello` }));
  if (wants("U")) await httpBaseline("U", "upload-sink", (port) => ({ url: `http://127.0.0.1:${port}/upload`, method: "POST", headers: { "content-type": "image/png" }, body: upload, timeoutSeconds: 30 }), true);
  if (report.baselines.U) (report.baselines.U as LoadResult & { mbPerSecond?: number }).mbPerSecond = round1((report.baselines.U.okPerSecond * upload.length) / 1e6);
  if (wants("G")) await rpcBaseline("G", "grpc-bare", "raw");
  if (wants("G'srv")) await rpcBaseline("G'srv", "grpc-adapter", "raw");
  if (wants("G'")) await rpcBaseline("G'", "grpc-adapter", "adapter");
  if (wants("G'prod")) await rpcBaseline("G'prod", "grpc-kit", "raw");
  if (wants("connect")) await rpcBaseline("connect-node", "connect-node", "raw");
  if (wants("C")) await bcryptBaseline();
  if (wants("R")) await redisBaseline();
  if (wants("mesh")) {
    log("starting the mesh (node dist/...)");
    const nodeArgs = (process.env.BENCH_MESH_NODE_ARGS ?? "").split(" ").filter(Boolean);
    if (nodeArgs.length) note(`mesh processes run with ${nodeArgs.join(" ")}`);
    mesh = await startBenchMesh({ workDir, profile, profileDir, nodeArgs });
    try {
      await meshScenarios(mesh);
    } finally {
      const codes = await mesh.stop();
      if (Object.values(codes).some((c) => c !== 0)) note(`mesh exit codes: ${JSON.stringify(codes)}`);
      if (profile.length) log(`CPU profiles in ${profileDir}`);
    }
  }
} catch (error) {
  exitCode = 1;
  process.stderr.write(`bench: failed: ${(error as Error).stack ?? String(error)}\n`);
  process.stderr.write(`bench: process logs kept in ${workDir}\n`);
} finally {
  await deleteExchange(baselineLogExchange);
}

report.goals = evaluateGoals();
report.durationSeconds = Math.round((performance.now() - t0) / 1000);
const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
const jsonFile = join(resultsDir, `${stamp}.json`);
writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
const markdown = renderMarkdown(report);
writeFileSync(join(resultsDir, "latest.md"), markdown);
process.stdout.write(`\n${markdown}\n`);
log(`wrote ${jsonFile} and bench/results/latest.md in ${report.durationSeconds} s`);
if (exitCode === 0) rmSync(workDir, { recursive: true, force: true });
process.exit(exitCode);

async function deleteExchange(name: string): Promise<void> {
  try {
    const broker = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    try {
      const channel = await broker.createChannel();
      await channel.deleteExchange(name).catch(() => {});
    } finally {
      await broker.close().catch(() => {});
    }
  } catch {
    // the broker is away: nothing was created there either
  }
}
