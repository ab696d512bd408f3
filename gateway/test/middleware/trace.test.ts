import { expect } from "chai";
import express from "express";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { serve, sleep, type TestServer } from "./test-server.js";

describe("trace middleware", () => {
  let server: TestServer;

  before(async () => {
    const app = express();
    app.use(createTraceMiddleware());
    app.get("/scope", async (_req, res) => {
      await sleep(5);
      await new Promise((resolve) => setImmediate(resolve));
      res.json({ traceId: currentScope()?.traceId ?? null });
    });
    server = await serve(app);
  });
  after(() => server.close());

  const get = (headers: Record<string, string> = {}) => fetch(`${server.url}/scope`, { headers });

  it("takes the trace id from traceparent and echoes it as x-request-id", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await get({ traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": "other-id" });

    expect(res.headers.get("x-request-id")).to.equal(traceId);
    expect(await res.json()).to.deep.equal({ traceId });
  });

  it("takes x-request-id when there is no traceparent", async () => {
    const res = await get({ "x-request-id": "req-42.abc" });

    expect(res.headers.get("x-request-id")).to.equal("req-42.abc");
    expect(await res.json()).to.deep.equal({ traceId: "req-42.abc" });
  });

  it("makes a new W3C trace id when neither header is usable", async () => {
    const res = await get({ "x-request-id": "not allowed <script>" });

    const traceId = res.headers.get("x-request-id");
    expect(traceId).to.match(/^[0-9a-f]{32}$/);
    expect(await res.json()).to.deep.equal({ traceId });
  });

  it("gives each request its own trace id", async () => {
    const [a, b] = await Promise.all([get(), get()]);

    expect(a.headers.get("x-request-id")).to.not.equal(b.headers.get("x-request-id"));
  });

  it("keeps the scope visible to a handler after it awaits timers and I/O", async () => {
    const res = await get({ "x-request-id": "after-await" });

    expect(await res.json()).to.deep.equal({ traceId: "after-await" });
  });
});
