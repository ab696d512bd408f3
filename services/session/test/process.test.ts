import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import * as amqp from "amqplib";
import { Redis } from "ioredis";
import { startServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";

const amqpUrl = "amqp://guest:guest@127.0.0.1:5672";
const pkg = loadStockPackage(["usermesh/session/v1/session.proto"]);

async function metricValue(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : 0;
}

// The session process as operators run it: logs on RabbitMQ, drops counted, graceful stop.
describe("session process: logging and shutdown", function () {
  this.timeout(40_000);
  const keyPrefix = `test:session-proc:${randomUUID()}:`;
  const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true });

  after(async () => {
    await redis.connect().catch(() => {});
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it("publishes its log lines to the logs exchange with the caller's trace id", async () => {
    const exchange = `test.logs.${randomUUID()}`;
    const connection = await amqp.connect(amqpUrl);
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, "topic", { durable: true });
    const { queue } = await channel.assertQueue("", { exclusive: true });
    await channel.bindQueue(queue, exchange, "session.*");
    const proc = await startServiceProcess("services/session/main.ts", {
      USERMESH_REDIS__KEY_PREFIX: keyPrefix,
      USERMESH_LOG__EXCHANGE: exchange,
    });
    const client = stockClient(pkg, "usermesh.session.v1.SessionService", `127.0.0.1:${proc.grpcPort}`);
    try {
      const traceId = randomUUID().replaceAll("-", "");
      const metadata = new grpc.Metadata();
      metadata.set("x-request-id", traceId);
      const found = new Promise<{ routingKey: string; line: Record<string, unknown> }>((resolve) => {
        void channel.consume(queue, (msg) => {
          if (!msg) return;
          const line = JSON.parse(msg.content.toString()) as Record<string, unknown>;
          if (line.traceId === traceId) resolve({ routingKey: msg.fields.routingKey, line });
        }, { noAck: true });
      });
      await callUnary(client, "listSessions", { userId: "u1" }, { metadata });
      const { routingKey, line } = await found;
      expect(routingKey).to.equal("session.info");
      expect(line).to.include({ service: "session", msg: "rpc handled", code: "OK", rpc: "usermesh.session.v1.SessionService/ListSessions" });
      expect(line.ts).to.be.a("string");
    } finally {
      client.close();
      expect(await proc.stop()).to.equal(0);
      await channel.deleteExchange(exchange);
      await connection.close();
    }
  });

  it("keeps serving with an unreachable broker and counts the dropped lines", async () => {
    const proc = await startServiceProcess("services/session/main.ts", {
      USERMESH_REDIS__KEY_PREFIX: keyPrefix,
      USERMESH_LOG__AMQP_URL: "amqp://guest:guest@127.0.0.1:1",
      USERMESH_LOG__MAX_BUFFERED: "5",
    });
    const client = stockClient(pkg, "usermesh.session.v1.SessionService", `127.0.0.1:${proc.grpcPort}`);
    try {
      for (let i = 0; i < 20; i++) await callUnary(client, "listSessions", { userId: "u1" });
      expect(await metricValue(proc.adminPort, "logs_dropped_total")).to.be.at.least(15);
      expect(proc.lines.filter((l) => l.msg === "rpc handled")).to.have.length(20);
    } finally {
      client.close();
      expect(await proc.stop()).to.equal(0);
    }
  });

  it("finishes 100 calls in flight on SIGTERM, then exits 0", async () => {
    const proc = await startServiceProcess("services/session/main.ts", {
      USERMESH_REDIS__KEY_PREFIX: keyPrefix,
      USERMESH_LOG__TO_BROKER: "false",
    });
    const client = stockClient(pkg, "usermesh.session.v1.SessionService", `127.0.0.1:${proc.grpcPort}`);
    const pauser = new Redis("redis://127.0.0.1:6379");
    try {
      // Hold every Redis command for a moment so the 100 calls are truly in flight at SIGTERM.
      await pauser.call("CLIENT", "PAUSE", "1500", "ALL");
      const calls = Array.from({ length: 100 }, (_, i) => callUnary(client, "createSession", { userId: `user-${i}` }, { deadlineMs: 10_000 }));
      await waitFor(async () => (await metricValue(proc.adminPort, "grpc_server_started_total")) >= 100);
      const exit = proc.stop("SIGTERM");
      const results = await Promise.allSettled(calls);
      expect(results.filter((r) => r.status === "fulfilled")).to.have.length(100);
      expect(await exit).to.equal(0);
    } finally {
      client.close();
      await pauser.call("CLIENT", "UNPAUSE").catch(() => {});
      await pauser.quit();
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
