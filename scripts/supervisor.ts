// A small process supervisor for running the mesh on one machine: starts children in order,
// waits for each to be ready, prefixes their output, restarts a crashed child with backoff, and
// stops them all in reverse order on shutdown.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface ChildSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Resolves true once the child serves (e.g. gRPC health SERVING). Polled until readyTimeoutMs. */
  readonly ready: () => Promise<boolean>;
}

export interface SupervisorOptions {
  readonly children: readonly ChildSpec[];
  readonly out: (line: string) => void;
  readonly readyTimeoutMs?: number;
  /** Grace for each child to exit after SIGTERM before SIGKILL. */
  readonly stopTimeoutMs?: number;
  readonly restartBackoffMs?: { readonly min: number; readonly max: number };
  readonly color?: boolean;
}

export interface Supervisor {
  /** Starts every child in order, each only after the previous is ready. Rejects if one never gets ready. */
  start(): Promise<void>;
  /** Stops every child in reverse order; resolves with true when all exited with code 0. */
  stop(): Promise<boolean>;
}

const colors = [36, 35, 33, 32, 34, 31];

export function createSupervisor(options: SupervisorOptions): Supervisor {
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  const backoff = options.restartBackoffMs ?? { min: 500, max: 15_000 };
  const width = Math.max(...options.children.map((c) => c.name.length));
  const running = new Map<string, ChildProcess>();
  const exitCodes = new Map<string, number | null>();
  let stopping = false;

  const label = (spec: ChildSpec, index: number) => {
    const text = spec.name.padEnd(width);
    return options.color ? `\x1b[${colors[index % colors.length]}m${text}\x1b[0m` : text;
  };

  function launch(spec: ChildSpec, index: number, failures: number): ChildProcess {
    // Its own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops the
    // children one by one in reverse order instead of all at once.
    const child = spawn(spec.command, [...spec.args], { env: { ...process.env, ...spec.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    running.set(spec.name, child);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => options.out(`${label(spec, index)} | ${line}`));
    }
    const startedAt = Date.now();
    child.once("exit", (code, signal) => {
      exitCodes.set(spec.name, code);
      if (stopping) return;
      // A child that ran a while before crashing starts its backoff afresh.
      const nextFailures = Date.now() - startedAt > 60_000 ? 1 : failures + 1;
      const delay = Math.min(backoff.max, backoff.min * 2 ** (nextFailures - 1));
      options.out(`${label(spec, index)} | exited (${signal ?? code}); restarting in ${delay} ms`);
      setTimeout(() => !stopping && launch(spec, index, nextFailures), delay).unref();
    });
    return child;
  }

  async function waitReady(spec: ChildSpec): Promise<void> {
    const until = Date.now() + readyTimeoutMs;
    while (Date.now() < until) {
      if (stopping) return;
      if (await spec.ready().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${spec.name} was not ready within ${readyTimeoutMs} ms`);
  }

  async function stopChild(spec: ChildSpec): Promise<void> {
    const child = running.get(spec.name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  }

  // If the supervisor itself dies, its detached children must not outlive it.
  process.once("exit", () => {
    for (const child of running.values()) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  return {
    async start() {
      for (const [index, spec] of options.children.entries()) {
        launch(spec, index, 0);
        await waitReady(spec);
        options.out(`${label(spec, index)} | ready`);
      }
    },
    async stop() {
      stopping = true;
      for (const spec of [...options.children].reverse()) {
        await stopChild(spec);
        options.out(`${label(spec, options.children.indexOf(spec))} | stopped (exit ${exitCodes.get(spec.name) ?? "?"})`);
      }
      return options.children.every((spec) => exitCodes.get(spec.name) === 0);
    },
  };
}
