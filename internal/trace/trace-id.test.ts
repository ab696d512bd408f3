import { expect } from "chai";
import { newTraceId, traceIdFrom, traceparentFor } from "./trace-id.js";
import { currentScope, remainingMs, runDetached, runInScope } from "./call-scope.js";

const headers = (h: Record<string, string>) => new Headers(h);

describe("trace id", () => {
  it("takes the trace id from a W3C traceparent", () => {
    expect(traceIdFrom(headers({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }))).to.equal("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("falls back to x-request-id, then to a new id", () => {
    expect(traceIdFrom(headers({ "x-request-id": "req-42" }))).to.equal("req-42");
    expect(traceIdFrom(headers({}))).to.match(/^[0-9a-f]{32}$/);
  });

  it("refuses malformed or hostile ids", () => {
    expect(traceIdFrom(headers({ traceparent: "00-" + "0".repeat(32) + "-00f067aa0ba902b7-01" }))).to.match(/^[0-9a-f]{32}$/);
    expect(traceIdFrom({ get: () => "a\nb" })).to.match(/^[0-9a-f]{32}$/);
    expect(traceIdFrom(headers({ "x-request-id": "<script>" }))).to.match(/^[0-9a-f]{32}$/);
    expect(traceIdFrom(headers({ "x-request-id": "x".repeat(200) }))).to.have.length(32);
  });

  it("builds a traceparent only for W3C-shaped ids", () => {
    const id = newTraceId();
    expect(traceparentFor(id)).to.match(new RegExp(`^00-${id}-[0-9a-f]{16}-01$`));
    expect(traceparentFor("req-42")).to.equal(undefined);
  });

  it("reports the time left before the scope's deadline", () => {
    runInScope({ traceId: "t", deadline: 10_000 }, () => {
      expect(remainingMs(9_000)).to.equal(1_000);
      expect(remainingMs(11_000)).to.equal(0);
    });
    expect(remainingMs()).to.equal(undefined);
  });

  it("runs detached work with the trace id but without the caller's signal and deadline", () => {
    const caller = new AbortController();
    caller.abort();
    const seen = runInScope({ traceId: "t-1", deadline: 10_000, signal: caller.signal }, () => runDetached(() => currentScope()));
    expect(seen).to.deep.equal({ traceId: "t-1" });
    expect(runDetached(() => currentScope())).to.equal(undefined);
  });
});
