// Starts a bench process (a mesh process from dist/, or a baseline server) as a child whose stdout and
// stderr go straight to a log file (so the bench never spends CPU reading its log lines), and waits for
// the JSON line it prints once it serves: {"msg":"serving", "grpcPort"?, "httpPort"?, "adminPort"?}.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";
import { connect, createServer as createNetServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface BenchChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly adminPort: number;
  readonly logFile: string;
  /** SIGTERM, then SIGKILL after killAfterMs; resolves with the exit code or signal name. */
  stop(killAfterMs?: number): Promise<number | string>;
}

export interface StartOptions {
  readonly name: string;
  /** Script path relative to the repo root. */
  readonly entry: string;
  readonly env?: Record<string, string>;
  /** Extra node flags, e.g. ["--import", "tsx"] or ["--cpu-prof", ...]. */
  readonly nodeArgs?: readonly string[];
  readonly logFile: string;
  readonly timeoutMs?: number;
  /**
   * Ports chosen by the caller (passed in env): readiness is then the admin port's /healthz answering
   * 200, for processes that log nothing at info level and so print no "serving" line.
   */
  readonly knownPorts?: { readonly grpcPort: number; readonly adminPort: number };
}

/** Spawns the child and resolves once it printed its "serving" line; rejects with its log tail otherwise. */
export async function startChild(options: StartOptions): Promise<BenchChild> {
  const fd = openSync(options.logFile, "a");
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.entry], {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const started = Date.now();
  let serving: Record<string, unknown> | undefined;
  while (!serving) {
    serving = options.knownPorts ? await healthy(options.knownPorts) : servingLine(options.logFile, child.pid ?? -1);
    if (serving) break;
    if (exitedEarly || Date.now() - started > timeoutMs) {
      if (!exitedEarly) child.kill("SIGKILL");
      throw new Error(`${options.name} did not report serving (${exitedEarly ? "exited" : "timed out"}); log tail:\n${tail(options.logFile)}`);
    }
    await sleep(50);
  }
  const line = serving;
  return {
    name: options.name,
    child,
    pid: child.pid ?? -1,
    grpcPort: Number(line.grpcPort ?? 0),
    httpPort: Number(line.httpPort ?? 0),
    adminPort: Number(line.adminPort ?? 0),
    logFile: options.logFile,
    async stop(killAfterMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode ?? "unknown";
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      const [code, signal] = await exited;
      clearTimeout(timer);
      return code ?? signal ?? "unknown";
    },
  };
}

/** The first {"msg":"serving"} line of the log file; pid-tagged lines ({"pid"}) must match when present. */
function servingLine(file: string, pid: number): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  for (const raw of text.split("\n")) {
    if (!raw.includes('"serving"')) continue;
    try {
      const line = JSON.parse(raw) as Record<string, unknown>;
      if (line.msg === "serving" && (line.pid === undefined || line.pid === pid)) return line;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

async function healthy(ports: { grpcPort: number; adminPort: number }): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${ports.adminPort}/healthz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    // The admin port opens before the gRPC server binds: wait for both.
    return res.ok && (await accepts(ports.grpcPort)) ? { msg: "serving", ...ports } : undefined;
  } catch {
    return undefined;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/** A port free right now on 127.0.0.1 (the OS picks it; it is released before returning). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || !address) throw new Error("no port");
  return address.port;
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no log)";
  }
}
