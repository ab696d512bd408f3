import { expect } from "chai";
import express from "express";
import { createAccessLogMiddleware } from "../../middleware/access-log.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { setAuth, setRoute } from "../../request-context.js";
import { eventually, recordingLogger, serve, sleep, type RecordingLogger, type TestServer } from "./test-server.js";

describe("access log middleware", () => {
  let server: TestServer;
  let logger: RecordingLogger;

  beforeEach(async () => {
    logger = recordingLogger();
    const app = express();
    app.use(createTraceMiddleware());
    app.use(createAccessLogMiddleware(logger));
    app.get("/users/:id", (_req, res) => {
      setRoute(res, "/users/:id");
      res.json({ ok: true });
    });
    app.get("/me", (_req, res) => {
      setRoute(res, "/me");
      setAuth(res, { userId: "u-1", sessionId: "s-1", token: "secret-token", via: "bearer" });
      res.status(204).end();
    });
    app.get("/stream", (_req, res) => {
      setRoute(res, "/stream");
      res.write("abc");
      res.write(Buffer.alloc(10));
      res.end("é");
    });
    app.get("/broken", (_req, res) => {
      setRoute(res, "/broken");
      res.status(503).send("down");
    });
    app.get("/bad", (_req, res) => {
      setRoute(res, "/bad");
      res.status(422).send("no");
    });
    app.get("/slow", async (_req, res) => {
      setRoute(res, "/slow");
      await sleep(2000);
      if (!res.writableEnded && !res.destroyed) res.send("late");
    });
    server = await serve(app);
  });
  afterEach(() => server.close());

  const requestLines = () => logger.lines.filter((l) => l.msg === "http request");

  it("writes one info line with method, route template, status, duration, bytes and trace id", async () => {
    const res = await fetch(`${server.url}/users/42?token=abc`, { headers: { "x-request-id": "log-1" } });
    const body = await res.text();

    await eventually(() => requestLines().length === 1);
    const [line] = requestLines();
    expect(line.level).to.equal("info");
    expect(line.fields).to.include({ method: "GET", route: "/users/:id", status: 200, traceId: "log-1" });
    expect(line.fields.bytes).to.equal(Buffer.byteLength(body));
    expect(line.fields.durationMs).to.be.a("number").and.at.least(0);
    expect(line.fields).to.not.have.property("userId");
  });

  it("never logs the raw path, query string, cookies or Authorization", async () => {
    await fetch(`${server.url}/users/42?token=query-secret`, {
      headers: { authorization: "Bearer header-secret", cookie: "session=cookie-secret" },
    });

    await eventually(() => requestLines().length === 1);
    const logged = JSON.stringify(logger.lines);
    for (const secret of ["query-secret", "header-secret", "cookie-secret", "/users/42"]) {
      expect(logged).to.not.include(secret);
    }
  });

  it("adds the user id once the request is authenticated", async () => {
    await fetch(`${server.url}/me`);

    await eventually(() => requestLines().length === 1);
    expect(requestLines()[0].fields).to.include({ route: "/me", status: 204, userId: "u-1", bytes: 0 });
  });

  it("labels requests no route claimed as unmatched", async () => {
    await fetch(`${server.url}/no/such/path`);

    await eventually(() => requestLines().length === 1);
    expect(requestLines()[0].fields).to.include({ route: "unmatched", status: 404 });
  });

  it("counts the bytes of a streamed response written in chunks", async () => {
    await (await fetch(`${server.url}/stream`)).arrayBuffer();

    await eventually(() => requestLines().length === 1);
    expect(requestLines()[0].fields.bytes).to.equal(3 + 10 + Buffer.byteLength("é"));
  });

  it("logs server errors at error and client errors at info", async () => {
    await fetch(`${server.url}/broken`);
    await fetch(`${server.url}/bad`);

    await eventually(() => requestLines().length === 2);
    const byRoute = Object.fromEntries(requestLines().map((l) => [String(l.fields.route), l.level]));
    expect(byRoute).to.deep.equal({ "/broken": "error", "/bad": "info" });
  });

  it("logs a request the client aborted, once, as 499", async () => {
    const controller = new AbortController();
    const pending = fetch(`${server.url}/slow`, { signal: controller.signal }).catch(() => undefined);
    await sleep(100);
    controller.abort();
    await pending;

    await eventually(() => requestLines().length === 1);
    await sleep(50);
    expect(requestLines()).to.have.length(1);
    expect(requestLines()[0].fields).to.include({ route: "/slow", status: 499, aborted: true });
  });
});
