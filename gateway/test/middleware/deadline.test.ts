import { expect } from "chai";
import express from "express";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { createDeadlineMiddleware, hasTimedOut } from "../../middleware/deadline.js";
import { createProblemHandler } from "../../middleware/problem.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { eventually, recordingLogger, serve, sleep, type RecordingLogger, type TestServer } from "./test-server.js";

describe("deadline middleware", () => {
  let server: TestServer;
  let logger: RecordingLogger;
  const lateWrites: { timedOut: boolean; error?: string }[] = [];

  before(async () => {
    logger = recordingLogger();
    const app = express();
    app.use(createTraceMiddleware());
    app.use(
      createDeadlineMiddleware({
        defaultMs: 150,
        overrides: (req) => (req.path.startsWith("/upload") ? 600 : undefined),
      }),
    );
    app.get("/scope", async (_req, res) => {
      await sleep(1);
      const scope = currentScope();
      res.json({ traceId: scope?.traceId, deadline: scope?.deadline, now: Date.now() });
    });
    app.get("/stall", async (_req, res) => {
      await sleep(400);
      try {
        res.json({ late: true });
        lateWrites.push({ timedOut: hasTimedOut(res) });
      } catch (error) {
        lateWrites.push({ timedOut: hasTimedOut(res), error: (error as NodeJS.ErrnoException).code });
        throw error;
      }
    });
    app.get("/upload", async (_req, res) => {
      await sleep(300);
      res.json({ uploaded: true });
    });
    app.use(createProblemHandler({ logger }));
    server = await serve(app);
  });
  after(() => server.close());

  it("puts now + the default budget on the call scope, next to the trace id", async () => {
    const before = Date.now();
    const res = await fetch(`${server.url}/scope`, { headers: { "x-request-id": "dl-1" } });
    const body = (await res.json()) as { traceId: string; deadline: number };

    expect(body.traceId).to.equal("dl-1");
    expect(body.deadline).to.be.within(before + 150, Date.now() + 150);
  });

  it("answers 504 with a problem body when the handler stalls past the budget", async () => {
    const started = Date.now();
    const res = await fetch(`${server.url}/stall`, { headers: { "x-request-id": "dl-2" } });
    const elapsed = Date.now() - started;

    expect(res.status).to.equal(504);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(await res.json()).to.deep.include({ status: 504, title: "Gateway Timeout", traceId: "dl-2" });
    expect(elapsed).to.be.below(380);
  });

  it("keeps a handler that writes after the 504 from sending anything, and the server serving", async () => {
    lateWrites.length = 0;
    const res = await fetch(`${server.url}/stall`);
    expect(res.status).to.equal(504);
    await res.text();

    await eventually(() => lateWrites.length === 1);
    expect(lateWrites[0]).to.deep.equal({ timedOut: true, error: "ERR_HTTP_HEADERS_SENT" });
    expect(logger.lines.filter((l) => l.level === "error")).to.deep.equal([]);
    expect((await fetch(`${server.url}/scope`)).status).to.equal(200);
  });

  it("gives a route its own budget through overrides", async () => {
    const res = await fetch(`${server.url}/upload`);

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ uploaded: true });
  });

  it("rejects a budget that is not positive at creation", () => {
    expect(() => createDeadlineMiddleware({ defaultMs: 0 })).to.throw(/defaultMs/);
  });
});
