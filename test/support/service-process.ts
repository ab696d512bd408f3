// Starts one of the mesh's processes as a real child process for black-box tests, on ephemeral
// ports, and reads what it reports on stdout (its JSON log lines).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly adminPort: number;
  /** The HTTP port, for processes that serve HTTP (the gateway). */
  readonly httpPort: number;
  /** Every stdout line parsed as JSON so far (non-JSON lines are kept as {raw}). */
  readonly lines: Record<string, unknown>[];
  /** Sends the signal and resolves with the exit code (or the signal name if killed). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Runs `node --import tsx <entry>` with the given env overrides plus ephemeral ports, and waits for
 * its "serving" line. Rejects with the process's output if it exits or stays silent for timeoutMs.
 */
export async function startServiceProcess(entry: string, env: Record<string, string>, timeoutMs = 15_000): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: repoRoot,
    env: { ...process.env, USERMESH_GRPC__PORT: "0", USERMESH_HTTP__PORT: "0", USERMESH_ADMIN__PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const serving = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not report serving in ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    createInterface({ input: child.stdout }).on("line", (raw) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        line = { raw };
      }
      lines.push(line);
      if (line.msg === "serving") {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before serving\n${stderr}\n${JSON.stringify(lines)}`));
    });
  });
  const ready = await serving;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    grpcPort: Number(ready.grpcPort),
    adminPort: Number(ready.adminPort),
    httpPort: Number(ready.httpPort ?? 0),
    lines,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code, killedBy] = await exited;
      return code ?? killedBy ?? "unknown";
    },
  };
}
