import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { createShutdown, type ShutdownLogger } from "./shutdown.js";

interface LogLine {
  level: "info" | "error";
  msg: string;
  fields?: Record<string, unknown>;
}

function recordingLogger(): ShutdownLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (msg, fields) => lines.push({ level: "info", msg, fields }),
    error: (msg, fields) => lines.push({ level: "error", msg, fields }),
  };
}

describe("createShutdown", () => {
  it("runs steps in reverse registration order, one at a time", async () => {
    const shutdown = createShutdown({ logger: recordingLogger(), graceMs: 1000 });
    const events: string[] = [];
    for (const name of ["db", "cache", "server"]) {
      shutdown.onShutdown(name, async () => {
        events.push(`${name} start`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push(`${name} end`);
      });
    }
    expect(await shutdown.run("test")).to.equal(0);
    expect(events).to.deep.equal(["server start", "server end", "cache start", "cache end", "db start", "db end"]);
  });

  it("exits 1 when a step fails, logs its name, and still runs the later steps", async () => {
    const logger = recordingLogger();
    const shutdown = createShutdown({ logger, graceMs: 1000 });
    const ran: string[] = [];
    shutdown.onShutdown("last", () => {
      ran.push("last");
    });
    shutdown.onShutdown("sync thrower", () => {
      throw new Error("boom");
    });
    shutdown.onShutdown("async thrower", () => Promise.reject(new Error("bang")));
    expect(await shutdown.run("test")).to.equal(1);
    expect(ran).to.deep.equal(["last"]);
    const failures = logger.lines.filter((line) => line.level === "error");
    expect(failures.map((line) => line.fields?.["step"])).to.deep.equal(["async thrower", "sync thrower"]);
    expect(failures.map((line) => line.fields?.["error"])).to.deep.equal(["bang", "boom"]);
  });

  it("cuts off a hanging step at the grace period and runs the rest", async () => {
    const logger = recordingLogger();
    const shutdown = createShutdown({ logger, graceMs: 50 });
    let closedLogs = false;
    shutdown.onShutdown("close logs", () => {
      closedLogs = true;
    });
    shutdown.onShutdown("hangs", () => new Promise<void>(() => undefined));
    const started = Date.now();
    expect(await shutdown.run("test")).to.equal(1);
    expect(Date.now() - started).to.be.within(40, 500);
    expect(closedLogs).to.equal(true);
    expect(logger.lines).to.deep.include({
      level: "error",
      msg: "shutdown step cut off by the grace period",
      fields: { step: "hangs", budgetMs: 50 },
    });
  });

  it("runs the steps once however often run() is called", async () => {
    const shutdown = createShutdown({ logger: recordingLogger(), graceMs: 1000 });
    let runs = 0;
    shutdown.onShutdown("count", () => {
      runs++;
    });
    const first = shutdown.run("one");
    const second = shutdown.run("two");
    expect(second).to.equal(first);
    await Promise.all([first, second, shutdown.run("three")]);
    expect(runs).to.equal(1);
  });

  it("aborts its signal when shutdown begins, before any step runs", async () => {
    const shutdown = createShutdown({ logger: recordingLogger(), graceMs: 1000 });
    let abortedDuringStep = false;
    shutdown.onShutdown("check", () => {
      abortedDuringStep = shutdown.signal.aborted;
    });
    expect(shutdown.signal.aborted).to.equal(false);
    await shutdown.run("test");
    expect(abortedDuringStep).to.equal(true);
    expect((shutdown.signal.reason as Error).name).to.equal("AbortError");
  });

  it("runs a step registered while shutdown is under way", async () => {
    const shutdown = createShutdown({ logger: recordingLogger(), graceMs: 1000 });
    const ran: string[] = [];
    shutdown.onShutdown("first registered", () => {
      ran.push("first registered");
    });
    shutdown.onShutdown("registers another", () => {
      ran.push("registers another");
      shutdown.onShutdown("late", () => {
        ran.push("late");
      });
    });
    await shutdown.run("test");
    expect(ran).to.deep.equal(["registers another", "late", "first registered"]);
  });
});

describe("createShutdown in a real process", () => {
  const fixture = fileURLToPath(new URL("./test-fixtures/shutdown-process.ts", import.meta.url));

  /** Starts the fixture, sends `signals` once it is ready, and resolves with its exit code and stdout. */
  function runFixture(args: string[], signals: NodeJS.Signals[]): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args], { stdio: ["ignore", "pipe", "inherit"] });
      let stdout = "";
      let sent = false;
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        stdout += chunk;
        if (!sent && stdout.includes("ready\n")) {
          sent = true;
          // The second signal follows once the first has reached the shutdown.
          child.kill(signals[0]);
          if (signals[1]) {
            const second = signals[1];
            const poll = setInterval(() => {
              if (stdout.includes("shutdown started")) {
                clearInterval(poll);
                child.kill(second);
              }
            }, 10);
          }
        }
      });
      child.on("error", reject);
      child.on("exit", (code) => resolve({ code, stdout }));
    });
  }

  it("runs its steps on SIGTERM and exits 0", async () => {
    const { code, stdout } = await runFixture([], ["SIGTERM"]);
    expect(stdout).to.contain("step ran");
    expect(code).to.equal(0);
  });

  it("exits 1 at once on a second signal while a step hangs", async () => {
    const { code, stdout } = await runFixture(["hang"], ["SIGTERM", "SIGINT"]);
    expect(stdout).to.not.contain("step ran");
    expect(stdout).to.contain("error: second signal during shutdown; exiting now");
    expect(code).to.equal(1);
  });
});
