// The two load generators every figure comes from, so baselines and scenarios share their settings:
// autocannon for HTTP (concurrency connections, no pipelining, a warm-up run, then a fixed-length run) and
// a bounded closed-loop RPC driver (N calls in flight over one channel) for gRPC.
import autocannon from "autocannon";

export interface LoadSettings {
  /** Requests (or calls) in flight. */
  readonly concurrency: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

export interface LoadResult {
  /** Successful (2xx, or gRPC OK) completions per second of the measured run. */
  readonly ok: number;
  readonly okPerSecond: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly seconds: number;
  /** Status counts of failures, e.g. {"504": 12, "error": 1}. */
  readonly failures: Record<string, number>;
}

export interface HttpLoad {
  readonly url: string;
  readonly method?: "GET" | "POST";
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  /** Caps the request rate over all connections (an open-ish background load). */
  readonly overallRate?: number;
  /** Per-request timeout, seconds (default 10). */
  readonly timeoutSeconds?: number;
}

/** One autocannon run without warm-up; bounded by its duration plus the per-request timeout. */
export async function autocannonRun(target: HttpLoad, concurrency: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({
    url: target.url,
    method: target.method ?? "GET",
    headers: target.headers,
    body: target.body,
    connections: concurrency,
    pipelining: 1,
    duration: seconds,
    timeout: target.timeoutSeconds ?? 10,
    overallRate: target.overallRate,
  });
  const failures: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    if (!code.startsWith("2") && stats.count) failures[code] = stats.count;
  }
  if (result.errors) failures.error = result.errors;
  if (result.timeouts) failures.timeout = result.timeouts;
  const ok = result["2xx"];
  return {
    ok,
    okPerSecond: ok / result.duration,
    failed: result.non2xx + result.errors,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    seconds: result.duration,
    failures,
  };
}

/**
 * One continuous autocannon run whose first warmupSeconds are not counted: responses are tallied from
 * the 'response' events of the measured window only. For loads with a backlog (the login storm), where
 * stopping after a separate warm-up run would leave orphaned requests queued in the server.
 */
export async function autocannonWindowed(target: HttpLoad, concurrency: number, warmupSeconds: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  let counting = false;
  let finished!: () => void;
  let failedRun!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => ((finished = resolve), (failedRun = reject)));
  const instance = autocannon(
    {
      url: target.url,
      method: target.method ?? "GET",
      headers: target.headers,
      body: target.body,
      connections: concurrency,
      pipelining: 1,
      duration: warmupSeconds + seconds,
      timeout: target.timeoutSeconds ?? 10,
      overallRate: target.overallRate,
    },
    (error) => (error ? failedRun(error) : finished()),
  );
  const windowStart = setTimeout(() => (counting = true), warmupSeconds * 1000);
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    if (!counting) return;
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    else {
      failed++;
      failures[String(statusCode)] = (failures[String(statusCode)] ?? 0) + 1;
    }
  });
  instance.on("reqError", () => {
    if (!counting) return;
    failed++;
    failures.error = (failures.error ?? 0) + 1;
  });
  await done;
  clearTimeout(windowStart);
  return resultOf(latencies, failed, failures, seconds);
}

/**
 * A closed loop of `concurrency` HTTP clients that honour 429 + Retry-After, as well-behaved clients do:
 * each sends a request, waits for the answer, and after a 429 waits the seconds Retry-After names
 * before its next request (autocannon would resend at once, and a load shedder's cheap refusals would
 * then become the load). One continuous run whose responses are counted when they arrive within its last
 * `seconds` (429s as failures); at the end the requests still in flight are abandoned, as autocannon does,
 * so the run (and a CPU meter around it) stops on time.
 */
export async function retryAfterLoop(target: HttpLoad, concurrency: number, warmupSeconds: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  const startsAt = performance.now() + warmupSeconds * 1000;
  const endAt = startsAt + seconds * 1000;
  const stop = new AbortController();
  const stopTimer = setTimeout(() => stop.abort(), endAt - performance.now());
  const count = (t0: number, key?: string) => {
    const now = performance.now();
    if (now < startsAt || now > endAt) return;
    if (key === undefined) latencies.push(now - t0);
    else {
      failed++;
      failures[key] = (failures[key] ?? 0) + 1;
    }
  };
  const worker = async () => {
    while (performance.now() < endAt) {
      const t0 = performance.now();
      let pause = 0;
      try {
        const res = await fetch(target.url, {
          method: target.method ?? "GET",
          headers: target.headers,
          body: target.body,
          signal: AbortSignal.any([stop.signal, AbortSignal.timeout((target.timeoutSeconds ?? 10) * 1000)]),
        });
        await res.arrayBuffer();
        count(t0, res.ok ? undefined : String(res.status));
        if (res.status === 429) pause = Number(res.headers.get("retry-after") ?? "1") * 1000;
      } catch {
        if (stop.signal.aborted) return;
        count(t0, "error");
        pause = 10; // never a busy loop against a target that is down
      }
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(0, endAt - performance.now()))));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(stopTimer);
  return resultOf(latencies, failed, failures, seconds);
}

/** Warm-up run (discarded), then the measured run, both at the same settings. */
export async function httpLoad(target: HttpLoad, settings: LoadSettings): Promise<LoadResult> {
  if (settings.warmupSeconds > 0) await autocannonRun(target, settings.concurrency, settings.warmupSeconds);
  return autocannonRun(target, settings.concurrency, settings.seconds);
}

/**
 * A closed loop: `concurrency` workers each make one call, wait for it, make the next, until the run's
 * time is up (calls in flight then finish; each call carries its own deadline). Latencies are exact.
 */
export async function callLoop(call: () => Promise<unknown>, concurrency: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  const started = performance.now();
  const endAt = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < endAt) {
      const t0 = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t0);
      } catch (error) {
        failed++;
        const key = errorKey(error);
        failures[key] = (failures[key] ?? 0) + 1;
        // A failing target must not turn this into a busy loop.
        if (performance.now() - t0 < 1) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return resultOf(latencies, failed, failures, (performance.now() - started) / 1000);
}

export async function rpcLoad(call: () => Promise<unknown>, settings: LoadSettings): Promise<LoadResult> {
  if (settings.warmupSeconds > 0) await callLoop(call, settings.concurrency, settings.warmupSeconds);
  return callLoop(call, settings.concurrency, settings.seconds);
}

function errorKey(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error) return `code ${String((error).code)}`;
  return "error";
}

/** Throughput and latency percentiles of one measured window (latencies of successes only). */
function resultOf(latencies: number[], failed: number, failures: Record<string, number>, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : NaN);
  return {
    ok: latencies.length,
    okPerSecond: latencies.length / seconds,
    failed,
    p50Ms: round(pct(50)),
    p99Ms: round(pct(99)),
    maxMs: round(latencies.at(-1) ?? NaN),
    seconds,
    failures,
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
