import { expect } from "chai";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport as createConnectGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { LogService, LogLevel } from "../../gen/usermesh/logs/v1/logs_pb.js";
import { PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { currentScope, runInScope } from "../trace/call-scope.js";
import { fieldViolationsOf, invalidArgument, unavailable } from "../errors/errors.js";
import { startRpcServer, serviceEntry, standardInterceptors, type RpcServer } from "./rpc-server.js";
import { createGrpcTransport, type GrpcTransport } from "./grpc-transport.js";
import { createConnectHandler } from "./connect-host.js";
import type { RpcLogger } from "./server-interceptors.js";

interface Logged { level: string; msg: string; fields: Record<string, unknown> }

function capturingLogger(lines: Logged[]): RpcLogger {
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => lines.push({ level, msg, fields });
  return { info: at("info"), warn: at("warn"), error: at("error") };
}

const never = new Promise<never>(() => {});

describe("rpc adapters (grpc-js host + Connect client over grpc-js)", () => {
  let server: RpcServer;
  let transport: GrpcTransport;
  let sessions: Client<typeof SessionService>;
  const logged: Logged[] = [];
  const seen: { traceId?: string; timeoutMs?: number } = {};
  let unavailableLeft = 0;
  let flakyAttempts = 0;
  let dependencyUp = true;

  const sessionImpl: ServiceImpl<typeof SessionService> = {
    createSession(req) {
      if (req.userId === "boom") throw new Error("password=hunter2 at db.example:5432");
      if (req.userId === "flaky") {
        unavailableLeft--;
        throw unavailable("store down");
      }
      if (!req.userId) throw invalidArgument("bad request", [{ field: "userId", description: "must not be empty", reason: "REQUIRED" }]);
      return { sessionId: "s1", token: "t" };
    },
    async validateSession(req, ctx: HandlerContext) {
      seen.traceId = currentScope()?.traceId;
      seen.timeoutMs = ctx.timeoutMs();
      if (req.token === "slow") await Promise.race([never, new Promise((r) => ctx.signal.addEventListener("abort", r))]);
      if (req.token === "flaky") {
        flakyAttempts++;
        if (unavailableLeft-- > 0) throw unavailable("store down");
      }
      return { userId: "u1", sessionId: "s1" };
    },
    deleteSession: () => ({}),
    listSessions: () => ({ sessions: [{ sessionId: "a" }, { sessionId: "b" }] }),
    deleteUserSessions: () => ({ deletedCount: 2 }),
  };

  const logImpl: ServiceImpl<typeof LogService> = {
    search: () => ({ lines: [] }),
    async *tail(req) {
      for (let i = 0; i < 3; i++) yield { line: { msg: `line ${i}`, service: req.service, level: LogLevel.INFO } };
    },
  };

  const photoImpl: ServiceImpl<typeof PhotoService> = {
    async loadPhoto(requests) {
      let userId = "";
      let size = 0;
      for await (const part of requests) {
        if (part.part.case === "header") userId = part.part.value.userId;
        if (part.part.case === "chunk") size += part.part.value.length;
      }
      return { photo: { userId, sizeBytes: BigInt(size) } };
    },
    getPhoto: () => ({}),
    async *getPhotoContent() {},
    getPhotos: () => ({}),
    deletePhoto: () => ({}),
  };

  const services = [
    serviceEntry(SessionService, sessionImpl),
    serviceEntry(LogService, logImpl),
    serviceEntry(PhotoService, photoImpl),
  ];

  before(async () => {
    server = await startRpcServer({
      host: "127.0.0.1",
      port: 0,
      services,
      logger: capturingLogger(logged),
      dependencies: [{ name: "store", check: async () => dependencyUp }],
    });
    transport = createGrpcTransport({ address: `127.0.0.1:${server.port}`, retry: { maxAttempts: 4, initialBackoffMs: 5, maxBackoffMs: 20, multiplier: 2 } });
    sessions = createClient(SessionService, transport);
  });

  after(async () => {
    transport.close();
    await server.shutdown(1000);
  });

  it("round-trips a unary call with typed messages", async () => {
    const res = await sessions.validateSession({ token: "x" });
    expect(res.userId).to.equal("u1");
    expect(res.sessionId).to.equal("s1");
  });

  it("carries field violations to the client as google.rpc.BadRequest", async () => {
    const error = await sessions.createSession({ userId: "" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).to.equal(Code.InvalidArgument);
    expect(error?.rawMessage).to.equal("bad request");
    expect(fieldViolationsOf(error!)).to.deep.equal([{ field: "userId", description: "must not be empty", reason: "REQUIRED" }]);
  });

  it("turns an unexpected exception into INTERNAL without leaking its message, and logs the cause", async () => {
    const error = await sessions.createSession({ userId: "boom" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).to.equal(Code.Internal);
    expect(error?.rawMessage).to.equal("internal error");
    expect(error?.message).not.to.contain("hunter2");
    const line = logged.find((l) => l.fields.code === "Internal");
    expect(line?.level).to.equal("error");
    expect((line?.fields.err as Error).message).to.contain("hunter2");
  });

  it("logs client errors below error level", () => {
    const line = logged.find((l) => l.fields.code === "InvalidArgument");
    expect(line?.level).to.equal("info");
  });

  it("propagates the caller's trace id and remaining deadline to the server", async () => {
    await runInScope({ traceId: "0af7651916cd43dd8448eb211c80319c", deadline: Date.now() + 1500 }, () => sessions.validateSession({ token: "x" }));
    expect(seen.traceId).to.equal("0af7651916cd43dd8448eb211c80319c");
    expect(seen.timeoutMs).to.be.within(1000, 1500);
  });

  it("makes a new trace id when the caller sends none", async () => {
    await sessions.validateSession({ token: "x" });
    expect(seen.traceId).to.match(/^[0-9a-f]{32}$/);
  });

  it("surfaces an expired deadline as DEADLINE_EXCEEDED", async () => {
    const error = await sessions.validateSession({ token: "slow" }, { timeoutMs: 100 }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).to.equal(Code.DeadlineExceeded);
  });

  it("retries an idempotent call on UNAVAILABLE", async () => {
    unavailableLeft = 2;
    flakyAttempts = 0;
    const res = await sessions.validateSession({ token: "flaky" });
    expect(res.userId).to.equal("u1");
    expect(flakyAttempts).to.equal(3);
  });

  it("never retries a call that is not idempotent", async () => {
    unavailableLeft = 0;
    const error = await sessions.createSession({ userId: "flaky" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).to.equal(Code.Unavailable);
    expect(unavailableLeft).to.equal(-1);
  });

  it("answers UNAVAILABLE when nothing listens, after bounded retries", async () => {
    const dead = createGrpcTransport({ address: "127.0.0.1:1", retry: { maxAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 10, multiplier: 2 } });
    try {
      const error = await createClient(SessionService, dead).listSessions({ userId: "u" }, { timeoutMs: 2000 }).then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(error?.code).to.equal(Code.Unavailable);
    } finally {
      dead.close();
    }
  });

  it("streams server responses in order", async () => {
    const logs = createClient(LogService, transport);
    const got: string[] = [];
    for await (const res of logs.tail({ service: "gateway" })) got.push(`${res.line?.service}:${res.line?.msg}`);
    expect(got).to.deep.equal(["gateway:line 0", "gateway:line 1", "gateway:line 2"]);
  });

  it("streams client requests into one response", async () => {
    const photos = createClient(PhotoService, transport);
    async function* parts() {
      yield { part: { case: "header" as const, value: { userId: "u9" } } };
      for (let i = 0; i < 10; i++) yield { part: { case: "chunk" as const, value: new Uint8Array(1000) } };
    }
    const res = await photos.loadPhoto(parts());
    expect(res.photo?.userId).to.equal("u9");
    expect(res.photo?.sizeBytes).to.equal(10_000n);
  });

  it("reports health that follows the dependencies", async () => {
    const health = createClient(Health, transport);
    expect((await health.check({ service: "" })).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
    dependencyUp = false;
    await server.health.refresh();
    expect((await health.check({ service: "usermesh.session.v1.SessionService" })).status).to.equal(HealthCheckResponse_ServingStatus.NOT_SERVING);
    dependencyUp = true;
    await server.health.refresh();
    expect((await health.check({ service: "usermesh.session.v1.SessionService" })).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("serves the same handlers through connect-node", async () => {
    const h2 = http2.createServer(createConnectHandler(services, standardInterceptors(capturingLogger([]))));
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    try {
      const connectTransport = createConnectGrpcTransport({ baseUrl: `http://127.0.0.1:${(h2.address() as AddressInfo).port}` });
      const client = createClient(SessionService, connectTransport);
      expect((await client.listSessions({ userId: "u" })).sessions).to.have.length(2);
      const error = await client.createSession({ userId: "" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(fieldViolationsOf(error!)[0]?.field).to.equal("userId");
    } finally {
      h2.close();
    }
  });
});
