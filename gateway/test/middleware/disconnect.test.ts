import { expect } from "chai";
import { request as httpRequest } from "node:http";
import express, { type Response } from "express";
import { Registry } from "prom-client";
import { createClient, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { PhotoService } from "../../../gen/usermesh/photo/v1/photo_pb.js";
import { SessionService } from "../../../gen/usermesh/session/v1/session_pb.js";
import { UserService } from "../../../gen/usermesh/user/v1/user_pb.js";
import { createGrpcTransport, type GrpcTransport } from "../../../internal/rpc/grpc-transport.js";
import { startRpcServer, serviceEntry, type RpcServer } from "../../../internal/rpc/rpc-server.js";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";
import { createGatewayApp } from "../../app.js";
import { gatewayConfigSchema } from "../../config.js";
import { createDeadlineMiddleware } from "../../middleware/deadline.js";
import { createDisconnectMiddleware } from "../../middleware/disconnect.js";
import { createProblemHandler } from "../../middleware/problem.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { eventually, recordingLogger, serve, sleep, type RecordingLogger, type TestServer } from "./test-server.js";

/** A ValidateSession call as the session service saw it. */
interface SeenCall {
  readonly token: string;
  readonly signal: AbortSignal;
}

/** A real gRPC session service whose ValidateSession for token "slow" answers only once cancelled. */
async function startSlowSessions(seen: SeenCall[]): Promise<RpcServer> {
  const impl: ServiceImpl<typeof SessionService> = {
    async validateSession(req, ctx: HandlerContext) {
      seen.push({ token: req.token, signal: ctx.signal });
      if (req.token === "slow") await abortedWithin(ctx.signal, 10_000);
      return { userId: "u1", sessionId: "s1" };
    },
    createSession: () => ({}),
    deleteSession: () => ({}),
    listSessions: () => ({}),
    deleteUserSessions: () => ({}),
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  return startRpcServer({ host: "127.0.0.1", port: 0, services: [serviceEntry(SessionService, impl)], logger: quiet });
}

/** Resolves true once signal aborts, false when ms pass first. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve(true)), { once: true });
  });
}

/**
 * Sends GET url and destroys the socket once leave() resolves, before any answer: a client that gave
 * up. Resolves when the socket is gone.
 */
async function abandon(url: string, headers: Record<string, string>, leave: () => Promise<void>): Promise<void> {
  const req = httpRequest(url, { headers });
  const gone = new Promise<void>((resolve) => req.once("close", resolve));
  req.on("error", () => undefined); // "socket hang up": the point of the exercise
  req.end();
  await leave();
  req.destroy();
  await gone;
}

describe("disconnect middleware (real gRPC upstream)", () => {
  const seen: SeenCall[] = [];
  let upstream: RpcServer;
  let transport: GrpcTransport;
  let server: TestServer;
  let logger: RecordingLogger;
  const routeSignals: AbortSignal[] = [];

  before(async () => {
    upstream = await startSlowSessions(seen);
    transport = createGrpcTransport({ address: `127.0.0.1:${upstream.port}` });
    const sessions: Client<typeof SessionService> = createClient(SessionService, transport);
    logger = recordingLogger();
    const app = express();
    app.use(createTraceMiddleware());
    app.use(createDeadlineMiddleware({ defaultMs: 5000, overrides: (req) => (req.path === "/budget" ? 200 : undefined) }));
    app.use(createDisconnectMiddleware());
    const forward = async (token: string, res: Response) => {
      routeSignals.push(currentScope()!.signal!);
      const session = await sessions.validateSession({ token });
      res.json({ userId: session.userId });
    };
    app.get("/validate/:token", (req, res) => forward(req.params.token, res));
    app.get("/budget", (_req, res) => forward("slow", res));
    app.use(createProblemHandler({ logger }));
    server = await serve(app);
  });

  after(async () => {
    await server.close();
    transport.close();
    await upstream.shutdown(1000);
  });

  beforeEach(() => {
    seen.length = 0;
    routeSignals.length = 0;
  });

  it("cancels the gRPC call of a request whose client disconnects", async () => {
    await abandon(`${server.url}/validate/slow`, {}, () => eventually(() => seen.length === 1));

    expect(await abortedWithin(seen[0].signal, 1000)).to.equal(true);
    expect(routeSignals[0].aborted).to.equal(true);
    // The cancelled call's error meets the problem handler: a client that left is no server error.
    await sleep(50);
    expect(logger.lines.filter((l) => l.level === "error")).to.deep.equal([]);
  });

  it("aborts nothing for a request that completes normally", async () => {
    const res = await fetch(`${server.url}/validate/fast`);
    expect(await res.json()).to.deep.equal({ userId: "u1" });

    // The response's 'close' follows its 'finish' even on a kept-alive connection.
    expect(await abortedWithin(routeSignals[0], 200)).to.equal(false);
    expect(seen[0].signal.aborted).to.equal(false);
  });

  it("leaves a 504's calls to their deadline: the request's signal stays unaborted", async () => {
    const res = await fetch(`${server.url}/budget`);
    expect(res.status).to.equal(504);
    await res.text();

    // The upstream call ends on its deadline, the same instant as the 504.
    expect(await abortedWithin(seen[0].signal, 1000)).to.equal(true);
    expect(await abortedWithin(routeSignals[0], 200)).to.equal(false);
  });
});

describe("gateway app: an HTTP client that goes away cancels its upstream calls", () => {
  const seen: SeenCall[] = [];
  let upstream: RpcServer;
  let transport: GrpcTransport;
  let redisKeys: RedisTestKeys;
  let server: TestServer;

  before(async () => {
    upstream = await startSlowSessions(seen);
    transport = createGrpcTransport({ address: `127.0.0.1:${upstream.port}` });
    redisKeys = createRedisTestKeys("disconnect");
    const config = gatewayConfigSchema.parse({
      http: { port: 0 },
      admin: { port: 0 },
      log: { toBroker: false },
      redis: { keyPrefix: redisKeys.keyPrefix },
    });
    const app = createGatewayApp({
      config,
      logger: recordingLogger(),
      registry: new Registry(),
      redis: redisKeys.redis,
      // Only SessionService is served: the auth middleware's ValidateSession is the call under test.
      users: createClient(UserService, transport),
      sessions: createClient(SessionService, transport),
      photos: createClient(PhotoService, transport),
      readiness: [],
    });
    server = await serve(app);
  });

  after(async () => {
    await server.close();
    transport.close();
    await upstream.shutdown(1000);
    await redisKeys.close();
  });

  beforeEach(() => {
    seen.length = 0;
  });

  it("cancels the session check of a request whose client disconnects", async () => {
    await abandon(`${server.url}/me`, { authorization: "Bearer slow" }, () => eventually(() => seen.length === 1));

    expect(await abortedWithin(seen[0].signal, 1000)).to.equal(true);
  });

  it("lets the session check of a request that stays run to its end", async () => {
    const res = await fetch(`${server.url}/me`, { headers: { authorization: "Bearer fast" } });
    await res.text();

    expect(seen.map((c) => c.token)).to.deep.equal(["fast"]);
    expect(await abortedWithin(seen[0].signal, 200)).to.equal(false);
  });
});
