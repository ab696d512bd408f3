import { expect } from "chai";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readlink, readdir, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../support/service-process.js";

// `make run` as a newcomer runs it: from a fresh clone, installing and building on its own. Then a
// crashed child comes back under the supervisor, and SIGTERM stops everything cleanly.

const meshPorts = [8080, 9080, 50051, 50052, 50053, 9091, 9092, 9093];

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Pids of processes whose working directory is dir and whose command line contains text. */
async function pidsIn(dir: string, text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [cwd, cmdline] = await Promise.all([readlink(`/proc/${entry}/cwd`), import("node:fs/promises").then((fs) => fs.readFile(`/proc/${entry}/cmdline`, "utf8"))]);
      if (cwd === dir && cmdline.replaceAll("\0", " ").includes(text)) found.push(Number(entry));
    } catch {
      // The process ended meanwhile, or is not ours to read.
    }
  }
  return found;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("make run from a fresh clone", function () {
  this.timeout(600_000);
  let clone: string;
  let make: ChildProcess;
  let output = "";
  let exited: Promise<number | null>;

  before(async function () {
    const busy = (await Promise.all(meshPorts.map(portOpen))).some(Boolean);
    if (busy) {
      console.log("    (skipped: a mesh is already running on the standard ports)");
      this.skip();
    }
    clone = await mkdtemp(join(tmpdir(), "usermesh-clone-"));
    execFileSync("git", ["clone", "-q", repoRoot, clone]);
    make = spawn("make", ["run"], { cwd: clone, env: { ...process.env, USERMESH_HASHING__BCRYPT_COST: "4" }, stdio: ["ignore", "pipe", "pipe"] });
    make.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    make.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => make.once("exit", resolve));
    await eventually(async () => output.includes("the mesh is up"), `"the mesh is up" (output so far:\n${output.slice(-3000)})`, 540_000);
  });

  after(async () => {
    if (make && make.exitCode === null) make.kill("SIGKILL");
    for (const pid of clone ? await pidsIn(clone, "dist/") : []) process.kill(pid, "SIGKILL");
    if (clone) await rm(clone, { recursive: true, force: true });
  });

  it("serves a register → /me round trip through the gateway", async () => {
    const email = `newcomer-${randomUUID()}@example.com`;
    const registered = await fetch("http://127.0.0.1:8080/auth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse battery", name: "Newcomer" }),
    });
    expect(registered.status).to.equal(201);
    const { session } = (await registered.json()) as { session: { token: string } };
    const me = await fetch("http://127.0.0.1:8080/me", { headers: { authorization: `Bearer ${session.token}` } });
    expect(me.status).to.equal(200);
    expect(((await me.json()) as { user: { email: string } }).user.email).to.equal(email);
  });

  it("brings a SIGKILLed child back, and the gateway's /readyz recovers", async () => {
    const [pid] = await pidsIn(clone, "dist/services/session/main.js");
    expect(pid, "the session process").to.be.a("number");
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await fetch("http://127.0.0.1:8080/readyz")).status === 503, "readiness to notice", 10_000).catch(() => {});
    await eventually(async () => (await fetch("http://127.0.0.1:8080/readyz")).ok, "/readyz to recover", 30_000);
    const [again] = await pidsIn(clone, "dist/services/session/main.js");
    expect(again).to.be.a("number").and.not.equal(pid);
  });

  it("stops every child on SIGTERM with exit code 0, leaving nothing listening", async () => {
    const [supervisor] = await pidsIn(clone, "scripts/run-mesh.ts");
    process.kill(supervisor, "SIGTERM");
    expect(await exited).to.equal(0);
    for (const name of ["gateway", "photo", "user", "session"]) expect(output).to.match(new RegExp(`${name}\\s*\\| stopped \\(exit 0\\)`));
    expect(await Promise.all(meshPorts.map(portOpen))).to.deep.equal(meshPorts.map(() => false));
  });
});
