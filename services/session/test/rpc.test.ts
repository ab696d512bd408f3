import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { startServiceProcess, type ServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";

// Interop: the real session process, called by a stock grpc-js client built from the .proto files.
describe("SessionService over gRPC (stock grpc-js client, real process, real Redis)", function () {
  this.timeout(30_000);
  const keyPrefix = `test:session-rpc:${randomUUID()}:`;
  const pkg = loadStockPackage([
    "usermesh/session/v1/session.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto",
  ]);
  let proc: ServiceProcess;
  let sessions: grpc.Client;
  let redis: Redis;

  before(async () => {
    proc = await startServiceProcess("services/session/main.ts", {
      USERMESH_REDIS__KEY_PREFIX: keyPrefix,
      USERMESH_LOG__TO_BROKER: "false",
    });
    sessions = stockClient(pkg, "usermesh.session.v1.SessionService", `127.0.0.1:${proc.grpcPort}`);
    redis = new Redis("redis://127.0.0.1:6379");
  });

  after(async () => {
    sessions?.close();
    const code = await proc?.stop();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    expect(code).to.equal(0);
  });

  it("creates, validates, lists and deletes sessions", async () => {
    const userId = randomUUID();
    const created = await callUnary<{ sessionId: string; token: string; expiresAt: { seconds: string } }>(sessions, "createSession", { userId, ip: "10.0.0.1", userAgent: "interop" });
    expect(created.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(Number(created.expiresAt.seconds) * 1000).to.be.greaterThan(Date.now());

    const validated = await callUnary<{ userId: string; sessionId: string }>(sessions, "validateSession", { token: created.token });
    expect(validated).to.include({ userId, sessionId: created.sessionId });

    const second = await callUnary<{ sessionId: string; token: string }>(sessions, "createSession", { userId });
    const listed = await callUnary<{ sessions: { sessionId: string; ip: string }[] }>(sessions, "listSessions", { userId });
    expect(listed.sessions.map((s) => s.sessionId)).to.have.members([created.sessionId, second.sessionId]);
    expect(listed.sessions.find((s) => s.sessionId === created.sessionId)?.ip).to.equal("10.0.0.1");

    await callUnary(sessions, "deleteSession", { token: created.token });
    const gone = await callUnary(sessions, "validateSession", { token: created.token }).catch((e: grpc.ServiceError) => e);
    expect((gone as grpc.ServiceError).code).to.equal(grpc.status.UNAUTHENTICATED);

    await callUnary(sessions, "deleteSession", { session: { userId, sessionId: second.sessionId } });
    expect((await callUnary<{ sessions: unknown[] }>(sessions, "listSessions", { userId })).sessions).to.have.length(0);
  });

  it("ends every session but the kept one with DeleteUserSessions", async () => {
    const userId = randomUUID();
    const kept = await callUnary<{ sessionId: string; token: string }>(sessions, "createSession", { userId });
    const others = await Promise.all([1, 2, 3].map(() => callUnary<{ token: string }>(sessions, "createSession", { userId })));
    const res = await callUnary<{ deletedCount: number }>(sessions, "deleteUserSessions", { userId, exceptSessionId: kept.sessionId });
    expect(res.deletedCount).to.equal(3);
    await callUnary(sessions, "validateSession", { token: kept.token });
    for (const other of others) {
      const error = (await callUnary(sessions, "validateSession", { token: other.token }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(error.code).to.equal(grpc.status.UNAUTHENTICATED);
    }
  });

  it("answers INVALID_ARGUMENT with google.rpc.BadRequest details for an empty user id", async () => {
    const error = (await callUnary(sessions, "createSession", { userId: "" }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(error.metadata.get("grpc-status-details-bin")).to.have.length(1);
  });

  it("answers UNAUTHENTICATED for a malformed token", async () => {
    const error = (await callUnary(sessions, "validateSession", { token: "not-a-token" }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).to.equal(grpc.status.UNAUTHENTICATED);
  });

  it("surfaces an exceeded deadline as DEADLINE_EXCEEDED", async () => {
    const error = (await callUnary(sessions, "listSessions", { userId: "u" }, { deadlineMs: -1 }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
  });

  it("serves grpc.health.v1.Health for the process and the service", async () => {
    const health = stockClient(pkg, "grpc.health.v1.Health", `127.0.0.1:${proc.grpcPort}`);
    try {
      expect(await callUnary(health, "check", { service: "" })).to.deep.equal({ status: "SERVING" });
      expect(await callUnary(health, "check", { service: "usermesh.session.v1.SessionService" })).to.deep.equal({ status: "SERVING" });
      const unknown = (await callUnary(health, "check", { service: "nope" }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(unknown.code).to.equal(grpc.status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  for (const version of ["v1", "v1alpha"]) {
    it(`lists the services through server reflection ${version}`, async () => {
      const reflection = stockClient(pkg, `grpc.reflection.${version}.ServerReflection`, `127.0.0.1:${proc.grpcPort}`);
      try {
        const call = (reflection as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, { listServicesResponse?: { service: { name: string }[] } }> }).serverReflectionInfo();
        const answer = new Promise<string[]>((resolve, reject) => {
          call.on("data", (res: { listServicesResponse?: { service: { name: string }[] } }) => resolve(res.listServicesResponse?.service.map((s) => s.name) ?? []));
          call.on("error", reject);
        });
        call.write({ listServices: "" });
        const names = await answer;
        call.end();
        expect(names).to.include.members(["usermesh.session.v1.SessionService", "grpc.health.v1.Health"]);
      } finally {
        reflection.close();
      }
    });
  }
});
