// The bench's JSON shape and its Markdown rendering (printed at the end, written to bench/results/latest.md).
import type { LoadResult } from "./load.js";

export type Figure = LoadResult & {
  cpuMsPerRequest?: Record<string, number>;
  mbPerSecond?: number;
  rate?: number;
  cost?: number;
  inFlight?: number;
  /** Seconds the user service kept hashing after the login storm stopped. */
  drainSeconds?: number;
};

export interface Goal {
  readonly goal: string;
  /** The measured ratio or value; undefined when the figure was not measured. */
  readonly value: number | undefined;
  readonly target: number;
  readonly met: boolean | undefined;
  /** How to show the value when it is not a ratio. */
  readonly shown?: string;
}

export interface BenchReport {
  startedAt: string;
  machine: { cores: number; cpu: string; memoryMiB: number; node: string };
  settings: { concurrency: number; warmupSeconds: number; seconds: number; pipelining: number; generator: string };
  baselines: Record<string, Figure>;
  scenarios: Record<string, Figure>;
  rss: {
    afterStart?: Record<string, number>;
    afterMe?: Record<string, number>;
    upload?: Record<string, { before: number; peak: number; growthPerUploadInFlight: number }>;
  };
  /** RSS and V8 heap of each process at the idle snapshots, bytes. */
  memory: Record<string, Record<string, { rss: number; heapUsed: number; heapTotal: number }>>;
  goals: Goal[];
  notes: string[];
  durationSeconds: number;
}

const MiB = 1024 * 1024;
const n0 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : Math.round(v).toLocaleString("en-US"));
const n1 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : (Math.round(v * 10) / 10).toString());
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : `${Math.round(v * 100) / 100}`);
const ratio = (a: Figure | undefined, b: Figure | undefined) => (a && b ? (a.okPerSecond / b.okPerSecond).toFixed(2) : "–");
const mark = (met: boolean | undefined) => (met === undefined ? "not measured" : met ? "✅ met" : "❌ missed");

function cpu(f: Figure | undefined): string {
  if (!f?.cpuMsPerRequest) return "–";
  return Object.entries(f.cpuMsPerRequest)
    .map(([name, v]) => `${name} ${ms(v)}`)
    .join(", ");
}

function failures(f: Figure | undefined): string {
  if (!f || !f.failed) return "";
  return ` (${f.failed} failed: ${Object.entries(f.failures).map(([k, v]) => `${k}×${v}`).join(" ")})`;
}

export function renderMarkdown(r: BenchReport): string {
  const b = r.baselines;
  const s = r.scenarios;
  const out: string[] = [];
  out.push(`### usermesh bench, ${r.startedAt}`);
  out.push("");
  out.push(
    `${r.machine.cores} cores (${r.machine.cpu}), node ${r.machine.node}; ${r.settings.concurrency} in flight, no pipelining, ` +
      `${r.settings.warmupSeconds} s warm-up then ${r.settings.seconds} s per figure; whole run ${r.durationSeconds} s.`,
  );
  out.push("");
  out.push("| baseline | throughput | p50 ms | p99 ms | CPU ms per request |");
  out.push("|---|---:|---:|---:|---|");
  const base = (label: string, f: Figure | undefined, unit: string, extra = "") => {
    if (!f) return;
    out.push(`| ${label} | ${n0(f.okPerSecond)} ${unit}${extra}${failures(f)} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ${cpu(f)} |`);
  };
  base("E: Express 5 hello", b.E, "req/s");
  base("U: node:http draining 1 MiB", b.U, "req/s", b.U?.mbPerSecond ? `, ${n0(b.U.mbPerSecond)} MB/s` : "");
  base("G: bare grpc-js unary, empty", b.G, "calls/s");
  base("G'srv: startRpcServer + raw client", b["G'srv"], "calls/s", b.G && b["G'srv"] ? ` (${ratio(b["G'srv"], b.G)}·G)` : "");
  base("G': startRpcServer + createGrpcTransport/createClient", b["G'"], "calls/s", b.G && b["G'"] ? ` (${ratio(b["G'"], b.G)}·G)` : "");
  base("G'prod: process kit (logs to stdout + RabbitMQ, metrics)", b["G'prod"], "calls/s", b.G && b["G'prod"] ? ` (${ratio(b["G'prod"], b.G)}·G)` : "");
  base("connect-node host, same handler", b["connect-node"], "calls/s", b.G && b["connect-node"] ? ` (${ratio(b["connect-node"], b.G)}·G)` : "");
  if (b.C) out.push(`| C: bcrypt compare, cost ${b.C.cost ?? "?"}, ${b.C.inFlight ?? "?"} in flight | ${n1(b.C.okPerSecond)} compares/s | – | – | – |`);
  base("R: redis-benchmark -t get", b.R, "GET/s");
  out.push("");

  out.push("| mesh scenario | throughput | p50 ms | p99 ms | ratio | goal | CPU ms per request |");
  out.push("|---|---:|---:|---:|---:|---|---|");
  const goal = (prefix: string) => r.goals.find((g) => g.goal.startsWith(prefix));
  const row = (label: string, f: Figure | undefined, unit: string, rat: string, g: Goal | undefined, extra = "") => {
    if (!f) return;
    out.push(`| ${label} | ${n0(f.okPerSecond)} ${unit}${extra}${failures(f)} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ${rat} | ${g ? `${g.goal.replace(/^[^≥<≤]*/, "")} ${mark(g.met)}` : ""} | ${cpu(f)} |`);
  };
  row("1. GET /me (session valid, profile and photos cached)", s.me, "req/s", `${ratio(s.me, b.E)}·E`, goal("GET /me ≥"));
  row(`2. POST /auth/login, ${s.loginModest?.inFlight ?? "?"} in flight`, s.loginModest, "logins/s", `${ratio(s.loginModest, b.C)}·C`, undefined);
  row(`2. POST /auth/login, ${s.login?.inFlight ?? "?"} in flight (storm; clients honour Retry-After)`, s.login, "logins/s", `${ratio(s.login, b.C)}·C`, goal("login ≥"), s.login?.drainSeconds ? `; user busy ${s.login.drainSeconds} s after it` : "");
  row(`2. GET /me at ${s.meDuringLogins?.rate ?? "?"}/s during the storm`, s.meDuringLogins, "req/s", "", goal("GET /me p99"));
  row(`2. the storm from clients ignoring Retry-After`, s.loginIgnoringRetryAfter, "logins/s", `${ratio(s.loginIgnoringRetryAfter, b.C)}·C`, undefined);
  row("3. ValidateSession (gRPC, one channel)", s.validate, "calls/s", `${ratio(s.validate, b.G)}·G`, goal("ValidateSession"));
  row("3b. same, session not logging to RabbitMQ", s.validateNoBroker, "calls/s", `${ratio(s.validateNoBroker, b.G)}·G`, undefined);
  row("3c. same, no per-call log line either", s.validateNoCallLog, "calls/s", `${ratio(s.validateNoCallLog, b.G)}·G`, undefined);
  row("4. POST /me/photos, 1 MiB", s.upload, "uploads/s", `${ratio(s.upload, b.U)}·U`, goal("upload ≥"), s.upload?.mbPerSecond ? `, ${n0(s.upload.mbPerSecond)} MB/s` : "");
  out.push("");

  const names = [...new Set([...Object.keys(r.rss.afterStart ?? {}), ...Object.keys(r.rss.afterMe ?? {}), ...Object.keys(r.rss.upload ?? {})])];
  if (names.length) {
    out.push("| RSS, MiB | " + names.join(" | ") + " |");
    out.push("|---|" + names.map(() => "---:").join("|") + "|");
    const heap = (when: string, n: string) => {
      const m = r.memory[when]?.[n];
      return m ? ` (heap ${n1(m.heapUsed / MiB)}/${n1(m.heapTotal / MiB)})` : "";
    };
    if (r.rss.afterStart) out.push("| 5. idle after start (V8 heap used/total) | " + names.map((n) => n1((r.rss.afterStart?.[n] ?? NaN) / MiB) + heap("afterStart", n)).join(" | ") + " |");
    if (r.rss.afterMe) out.push("| 5. idle after scenario 1 (V8 heap used/total) | " + names.map((n) => n1((r.rss.afterMe?.[n] ?? NaN) / MiB) + heap("afterMe", n)).join(" | ") + " |");
    if (r.rss.upload) {
      out.push("| 4. before → peak during uploads | " + names.map((n) => (r.rss.upload?.[n] ? `${n1(r.rss.upload[n].before / MiB)} → ${n1(r.rss.upload[n].peak / MiB)}` : "–")).join(" | ") + " |");
      out.push("| 4. growth per upload in flight | " + names.map((n) => (r.rss.upload?.[n] ? n1(r.rss.upload[n].growthPerUploadInFlight / MiB) : "–")).join(" | ") + " |");
    }
    out.push("");
  }

  out.push("| goal | measured | result |");
  out.push("|---|---:|---|");
  for (const g of r.goals) out.push(`| ${g.goal} | ${g.shown ?? (g.value === undefined ? "–" : g.value.toFixed(2))} | ${mark(g.met)} |`);
  if (r.notes.length) {
    out.push("");
    for (const line of r.notes) out.push(`- ${line}`);
  }
  return `${out.join("\n")}\n`;
}
