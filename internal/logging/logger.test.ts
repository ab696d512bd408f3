import { PassThrough } from "node:stream";
import { expect } from "chai";
import winston from "winston";
import { Code, ConnectError } from "@connectrpc/connect";
import { runInScope } from "../trace/call-scope.js";
import { createLogger, type LogLevel, type RootLogger } from "./logger.js";

interface Captured {
  lines: () => Record<string, unknown>[];
  raw: () => string;
}

function capture(stream: PassThrough): Captured {
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  return {
    raw: () => text,
    lines: () =>
      text
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("logger", () => {
  let stdout: PassThrough;
  let out: Captured;
  let logger: RootLogger;

  function start(level: LogLevel = "debug", transports: winston.transport[] = []): RootLogger {
    logger = createLogger({ service: "user", level, stdout, transports });
    return logger;
  }

  beforeEach(() => {
    stdout = new PassThrough();
    out = capture(stdout);
  });

  afterEach(async () => {
    await logger.close();
  });

  it("writes each line as one JSON object with ts, level, service, msg, the scope's trace id and the fields", async () => {
    start();
    runInScope({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736" }, () => {
      logger.info("user registered", { userId: "u-1", attempts: 2 });
    });
    await tick();

    const raw = out.raw();
    expect(raw.endsWith("\n")).to.equal(true);
    expect(raw.trim().split("\n")).to.have.length(1);
    const [line] = out.lines();
    expect(Object.keys(line)).to.deep.equal(["ts", "level", "service", "msg", "traceId", "userId", "attempts"]);
    expect(line).to.include({
      level: "info",
      service: "user",
      msg: "user registered",
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      userId: "u-1",
      attempts: 2,
    });
    expect(line.ts).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("omits traceId outside any call and prefers a traceId field over the scope's", async () => {
    start();
    logger.info("starting");
    runInScope({ traceId: "from-scope" }, () => logger.info("explicit", { traceId: "from-field" }));
    await tick();

    const [outside, explicit] = out.lines();
    expect(outside).not.to.have.property("traceId");
    expect(explicit.traceId).to.equal("from-field");
  });

  it("adds a child's fields to every line, letting fields given at the call win", async () => {
    const child = start().child({ component: "outbox", attempt: 1 });
    const grandchild = child.child({ batch: 7 });
    child.warn("retrying", { attempt: 2 });
    grandchild.debug("relayed");
    await tick();

    const [first, second] = out.lines();
    expect(first).to.include({ level: "warn", component: "outbox", attempt: 2 });
    expect(second).to.include({ level: "debug", component: "outbox", attempt: 1, batch: 7 });
  });

  it("serialises an Error field as name, message, stack and code, with a ConnectError's cause one level deep", async () => {
    start();
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    const rpcError = new ConnectError("profile store down", Code.Unavailable, undefined, undefined, refused);
    logger.error("query failed", { err: refused });
    logger.error("call failed", { error: rpcError });
    await tick();

    const [first, second] = out.lines();
    expect(first.err).to.include({ name: "Error", message: "connect ECONNREFUSED 127.0.0.1:5432", code: "ECONNREFUSED" });
    expect((first.err as { stack: string }).stack).to.contain("logger.test.ts");
    const logged = second.error as Record<string, unknown>;
    expect(logged).to.include({ name: "ConnectError", code: "unavailable" });
    expect(logged.message).to.contain("profile store down");
    expect(logged.cause).to.include({ name: "Error", code: "ECONNREFUSED" });
  });

  it("drops lines below the configured level", async () => {
    start("warn");
    logger.debug("noise");
    logger.info("chatter");
    logger.warn("slow query");
    logger.error("failed");
    await tick();

    expect(out.lines().map((line) => line.level)).to.deep.equal(["warn", "error"]);
  });

  it("does not throw on circular objects, BigInt values or throwing getters", async () => {
    start();
    const loop: Record<string, unknown> = { name: "loop" };
    loop.self = loop;
    const trap = {
      get secret(): string {
        throw new Error("no access");
      },
    };

    expect(() => logger.info("odd fields", { loop, big: 2n ** 70n, trap })).not.to.throw();
    await tick();

    const [line] = out.lines();
    expect(line.loop).to.deep.equal({ name: "loop", self: "[Circular]" });
    expect(line.big).to.equal("1180591620717411303424");
    expect(line.trap).to.deep.equal({ secret: "[Unserializable: no access]" });
  });

  it("does not let fields overwrite ts, level, service or msg", async () => {
    start();
    logger.info("real", { level: "error", msg: "forged", service: "other", ts: "then", extra: true });
    await tick();

    const [line] = out.lines();
    expect(line).to.include({ level: "info", msg: "real", service: "user", extra: true });
    expect(line.ts).not.to.equal("then");
  });

  it("hands extra transports the same info object, finished line included", async () => {
    const received: Record<string | symbol, unknown>[] = [];
    const spy = new winston.transports.Stream({ stream: new PassThrough({ objectMode: true }) });
    spy.log = (info: Record<string | symbol, unknown>, next: () => void) => {
      received.push(info);
      next();
    };
    start("info", [spy]);
    logger.info("to both", { orderId: "o-9" });
    await tick();

    expect(received).to.have.length(1);
    expect(received[0]).to.include({ level: "info", msg: "to both", orderId: "o-9" });
    expect(received[0][Symbol.for("message")]).to.equal(out.raw().trim());
  });

  it("resolves close() and then discards further lines without throwing", async () => {
    start();
    logger.info("before");
    await logger.close();
    expect(() => logger.info("after")).not.to.throw();
    await tick();

    expect(out.lines().map((line) => line.msg)).to.deep.equal(["before"]);
    expect(stdout.writableEnded).to.equal(false);
  });
});
