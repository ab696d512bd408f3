import { expect } from "chai";
import { getEventListeners } from "node:events";
import { Code, ConnectError, createClient, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { LogLevel, LogService } from "../../gen/usermesh/logs/v1/logs_pb.js";
import { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { currentScope, runInScope } from "../trace/call-scope.js";
import { startRpcServer, serviceEntry, type RpcServer } from "./rpc-server.js";
import { createGrpcTransport, type GrpcTransport } from "./grpc-transport.js";
import type { RpcLogger } from "./server-interceptors.js";

const quiet: RpcLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const traceId = "0af7651916cd43dd8448eb211c80319c";

/** A call as its handler saw it. */
interface SeenCall {
  readonly token: string;
  readonly signal: AbortSignal;
}

/** Resolves true once signal aborts, false when ms pass first. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve(true)), { once: true });
  });
}

/** Waits (polling) until check() holds; throws after timeoutMs. */
async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function failure(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  return promise.then(() => undefined, (e: unknown) => ConnectError.from(e));
}

/** Resolves when signal aborts (or after 10 s, so a broken test cannot hang the suite). */
function untilAborted(signal: AbortSignal): Promise<void> {
  return abortedWithin(signal, 10_000).then(() => undefined);
}

describe("grpc transport cancellation", () => {
  let server: RpcServer;
  let transport: GrpcTransport;
  let sessions: Client<typeof SessionService>;
  let logs: Client<typeof LogService>;
  const seen: SeenCall[] = [];
  let tails = 0;
  let tailSignal: AbortSignal | undefined;

  const sessionImpl = recordingSessionService(seen);

  const logImpl: ServiceImpl<typeof LogService> = {
    search: () => ({ lines: [] }),
    async *tail(req, ctx) {
      tails++;
      tailSignal = ctx.signal;
      yield { line: { msg: "first", service: req.service, level: LogLevel.INFO } };
      await untilAborted(ctx.signal);
    },
  };

  before(async () => {
    server = await startRpcServer({
      host: "127.0.0.1",
      port: 0,
      services: [serviceEntry(SessionService, sessionImpl), serviceEntry(LogService, logImpl)],
      logger: quiet,
    });
    transport = createGrpcTransport({ address: `127.0.0.1:${server.port}` });
    sessions = createClient(SessionService, transport);
    logs = createClient(LogService, transport);
  });

  after(async () => {
    transport.close();
    await server.shutdown(1000);
  });

  beforeEach(() => {
    seen.length = 0;
  });

  /** Starts a slow ValidateSession and resolves once the server handler is running. */
  async function slowCall(start: () => Promise<unknown>): Promise<{ result: Promise<ConnectError | undefined>; call: SeenCall }> {
    const result = failure(start());
    await until(() => seen.length === 1);
    return { result, call: seen[0] };
  }

  it("cancels a call on the server when the call scope's signal aborts", async () => {
    const scope = new AbortController();
    const { result, call } = await slowCall(() => runInScope({ traceId, signal: scope.signal }, () => sessions.validateSession({ token: "slow" })));

    scope.abort();

    expect(await abortedWithin(call.signal, 1000)).to.equal(true);
    expect((await result)?.code).to.equal(Code.Canceled);
  });

  it("never opens a call, unary or streaming, whose scope's signal has already aborted", async () => {
    const scope = new AbortController();
    scope.abort();
    const tailsBefore = tails;

    const unary = await failure(runInScope({ traceId, signal: scope.signal }, () => sessions.validateSession({ token: "x" })));
    const stream = await failure(
      runInScope({ traceId, signal: scope.signal }, async () => {
        for await (const _ of logs.tail({ service: "gateway" })) void _;
      }),
    );

    expect(unary?.code).to.equal(Code.Canceled);
    expect(stream?.code).to.equal(Code.Canceled);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).to.have.length(0);
    expect(tails).to.equal(tailsBefore);
  });

  it("cancels a server stream when the scope's signal aborts mid-stream", async () => {
    const scope = new AbortController();
    const got: string[] = [];
    const ended = failure(
      runInScope({ traceId, signal: scope.signal }, async () => {
        for await (const res of logs.tail({ service: "gateway" })) {
          got.push(res.line?.msg ?? "");
          scope.abort();
        }
      }),
    );

    expect((await ended)?.code).to.equal(Code.Canceled);
    expect(got).to.deep.equal(["first"]);
    expect(await abortedWithin(tailSignal!, 1000)).to.equal(true);
  });

  it("still cancels on the caller's own signal, outside any scope", async () => {
    const own = new AbortController();
    const { result, call } = await slowCall(() => sessions.validateSession({ token: "slow" }, { signal: own.signal }));

    own.abort();

    expect(await abortedWithin(call.signal, 1000)).to.equal(true);
    expect((await result)?.code).to.equal(Code.Canceled);
  });

  for (const which of ["scope", "caller"] as const) {
    it(`cancels a call that has both signals when the ${which}'s aborts`, async () => {
      const scope = new AbortController();
      const own = new AbortController();
      const { result, call } = await slowCall(() =>
        runInScope({ traceId, signal: scope.signal }, () => sessions.validateSession({ token: "slow" }, { signal: own.signal })),
      );

      (which === "scope" ? scope : own).abort();

      expect(await abortedWithin(call.signal, 1000)).to.equal(true);
      expect((await result)?.code).to.equal(Code.Canceled);
    });
  }

  it("leaves calls without an aborted signal as they were, and no abort listener behind", async () => {
    const scope = new AbortController();
    const own = new AbortController();

    expect((await sessions.validateSession({ token: "x" })).userId).to.equal("u1");
    expect((await runInScope({ traceId }, () => sessions.validateSession({ token: "x" }))).userId).to.equal("u1");
    const many = await runInScope({ traceId, signal: scope.signal }, () =>
      Promise.all(Array.from({ length: 20 }, (_, i) => sessions.validateSession({ token: `x${i}` }, i % 2 ? { signal: own.signal } : {}))),
    );

    expect(many.map((r) => r.userId)).to.deep.equal(Array(20).fill("u1"));
    expect(getEventListeners(scope.signal, "abort")).to.have.length(0);
    expect(getEventListeners(own.signal, "abort")).to.have.length(0);
    expect(seen.every((call) => !call.signal.aborted)).to.equal(true);
  });

  it("stops retrying an idempotent call once the scope's signal aborts", async () => {
    // Nothing listens there: every attempt fails UNAVAILABLE at once, and 50 attempts would take seconds.
    const dead = createGrpcTransport({ address: "127.0.0.1:1", retry: { maxAttempts: 50, initialBackoffMs: 200, maxBackoffMs: 200, multiplier: 1 } });
    try {
      const scope = new AbortController();
      const started = Date.now();
      const result = failure(runInScope({ traceId, signal: scope.signal }, () => createClient(SessionService, dead).validateSession({ token: "x" }, { timeoutMs: 20_000 })));
      setTimeout(() => scope.abort(), 150);

      expect((await result)?.code).to.equal(Code.Canceled);
      expect(Date.now() - started).to.be.below(600);
    } finally {
      dead.close();
    }
  });

  it("fails a call made once the scope's deadline has passed at once, with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const error = await failure(runInScope({ traceId, deadline: Date.now() - 1 }, () => sessions.validateSession({ token: "x" })));

    expect(error?.code).to.equal(Code.DeadlineExceeded);
    expect(Date.now() - started).to.be.below(500);
  });
});

describe("cancellation across hops", () => {
  let front: RpcServer;
  let back: RpcServer;
  let toBack: GrpcTransport;
  let toFront: GrpcTransport;
  let client: Client<typeof SessionService>;
  const backCalls: SeenCall[] = [];
  const frontScopeSignals: (AbortSignal | undefined)[] = [];

  const backImpl = recordingSessionService(backCalls);

  before(async () => {
    back = await startRpcServer({ host: "127.0.0.1", port: 0, services: [serviceEntry(SessionService, backImpl)], logger: quiet });
    toBack = createGrpcTransport({ address: `127.0.0.1:${back.port}` });
    const backClient = createClient(SessionService, toBack);
    // The front forwards to the back with no signal of its own: only the call scope links them.
    const frontImpl: ServiceImpl<typeof SessionService> = {
      async validateSession(req) {
        frontScopeSignals.push(currentScope()?.signal);
        return backClient.validateSession({ token: req.token });
      },
      createSession: () => ({}),
      deleteSession: () => ({}),
      listSessions: () => ({}),
      deleteUserSessions: () => ({}),
    };
    front = await startRpcServer({ host: "127.0.0.1", port: 0, services: [serviceEntry(SessionService, frontImpl)], logger: quiet });
    toFront = createGrpcTransport({ address: `127.0.0.1:${front.port}` });
    client = createClient(SessionService, toFront);
  });

  after(async () => {
    toFront.close();
    toBack.close();
    await front.shutdown(1000);
    await back.shutdown(1000);
  });

  beforeEach(() => {
    backCalls.length = 0;
    frontScopeSignals.length = 0;
  });

  it("cancels the calls a handler made when its own caller cancels", async () => {
    const abort = new AbortController();
    const result = failure(client.validateSession({ token: "slow" }, { signal: abort.signal }));
    await until(() => backCalls.length === 1);

    abort.abort();

    expect(await abortedWithin(backCalls[0].signal, 1000)).to.equal(true);
    expect((await result)?.code).to.equal(Code.Canceled);
  });

  it("never aborts a handler's scope signal after the call completed normally", async () => {
    expect((await client.validateSession({ token: "x" })).userId).to.equal("u1");
    const signal = frontScopeSignals[0];

    expect(signal).to.be.instanceOf(AbortSignal);
    // grpc-js reports 'cancelled' when the stream closes, even after a normal end: background work
    // started by the handler must not be cancelled by that.
    expect(await abortedWithin(signal!, 200)).to.equal(false);
    expect(backCalls[0].signal.aborted).to.equal(false);
  });
});

/** A SessionService whose ValidateSession records each call's signal and, for token "slow", waits until it aborts. */
function recordingSessionService(seen: SeenCall[]): ServiceImpl<typeof SessionService> {
  return {
    async validateSession(req, ctx: HandlerContext) {
      seen.push({ token: req.token, signal: ctx.signal });
      if (req.token === "slow") await untilAborted(ctx.signal);
      return { userId: "u1", sessionId: "s1" };
    },
    createSession: () => ({}),
    deleteSession: () => ({}),
    listSessions: () => ({}),
    deleteUserSessions: () => ({}),
  };
}
