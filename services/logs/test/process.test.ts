// The logs process as operators run it, black-box: started with startServiceProcess against the real
// RabbitMQ (an exchange and queue unique to the run) and a temporary directory, called through a stock
// grpc-js client, fed by the shared logger of three "processes".
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { PassThrough } from "node:stream";
import { Registry } from "prom-client";
import { fieldViolationsOf } from "../../../internal/errors/errors.js";
import { openBrokerAdmin, uniqueName, type BrokerAdmin } from "../../../internal/events/test-fixtures/broker.js";
import { createAmqpLogTransport } from "../../../internal/logging/amqp-log-transport.js";
import { createLogger } from "../../../internal/logging/logger.js";
import { errorFromStatus } from "../../../internal/rpc/grpc-codec.js";
import { startServiceProcess, type ServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";
import { startTcpProxy, type TcpProxy } from "../../../test/support/tcp-proxy.js";
import { loggerLine, newTraceId, storedLines, tempDir, waitFor } from "./fixtures.js";

const amqpUrl = "amqp://guest:guest@127.0.0.1:5672";
const pkg = loadStockPackage(["usermesh/logs/v1/logs.proto"]);

interface WireValue { kind?: string; stringValue?: string; numberValue?: number; boolValue?: boolean; structValue?: WireStruct; nullValue?: string; listValue?: { values: WireValue[] } }
interface WireStruct { fields: Record<string, WireValue> }
interface WireLine { ts: { seconds: string; nanos: number }; level: string; service: string; msg: string; traceId: string; fields: WireStruct | null }
interface WirePage { lines: WireLine[]; nextPageToken: string }

/** A google.protobuf.Struct as grpc-js's proto-loader hands it over, back to plain JSON. */
function plain(value: WireValue): unknown {
  switch (value.kind) {
    case "stringValue": return value.stringValue;
    case "numberValue": return value.numberValue;
    case "boolValue": return value.boolValue;
    case "structValue": return fieldsOf(value.structValue!);
    case "listValue": return value.listValue!.values.map(plain);
    default: return null;
  }
}
function fieldsOf(struct: WireStruct | null): Record<string, unknown> {
  return Object.fromEntries(Object.entries(struct?.fields ?? {}).map(([k, v]) => [k, plain(v)]));
}

async function metric(adminPort: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return text.split("\n").filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

/** Declares the exchange and the durable queue as the process will, so nothing published early is lost. */
async function declareTopology(admin: BrokerAdmin): Promise<{ exchange: string; queue: string }> {
  const exchange = uniqueName("logs");
  const queue = uniqueName("logs.ingest");
  admin.track({ exchanges: [exchange], queues: [queue] });
  await admin.channel.assertExchange(exchange, "topic", { durable: true });
  await admin.channel.assertQueue(queue, { durable: true });
  await admin.channel.bindQueue(queue, exchange, "#");
  return { exchange, queue };
}

function startLogs(env: Record<string, string>): Promise<ServiceProcess> {
  return startServiceProcess("services/logs/main.ts", { USERMESH_INGEST__FLUSH_INTERVAL_MS: "20", ...env });
}

function publisher(admin: BrokerAdmin, exchange: string) {
  return (routingKey: string, body: string) =>
    admin.channel.publish(exchange, routingKey, Buffer.from(body), { contentType: "application/json", persistent: true });
}

describe("logs process (real process, RabbitMQ and files)", function () {
  this.timeout(60_000);
  let admin: BrokerAdmin;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let exchange: string;
  let proc: ServiceProcess;
  let client: grpc.Client;
  let publish: (routingKey: string, body: string) => boolean;

  const search = (request: object) => callUnary<WirePage>(client, "search", request);

  before(async () => {
    admin = await openBrokerAdmin();
    dir = await tempDir();
    const topology = await declareTopology(admin);
    exchange = topology.exchange;
    publish = publisher(admin, exchange);
    proc = await startLogs({
      USERMESH_STORAGE__DIR: dir.path,
      USERMESH_INGEST__EXCHANGE: exchange,
      USERMESH_INGEST__QUEUE: topology.queue,
      // Asked to publish its own lines to the very exchange it consumes: it must not.
      USERMESH_LOG__TO_BROKER: "true",
      USERMESH_LOG__EXCHANGE: exchange,
    });
    client = stockClient(pkg, "usermesh.logs.v1.LogService", `127.0.0.1:${proc.grpcPort}`);
  });

  after(async () => {
    client?.close();
    expect(await proc?.stop()).to.equal(0);
    await admin?.cleanup();
    await dir?.remove();
  });

  it("stores what the gateway, user and session loggers publish, and Search finds one trace id across all three", async () => {
    const traceId = newTraceId();
    const registry = new Registry();
    const logger = (service: string) =>
      createLogger({ service, level: "debug", stdout: new PassThrough(), transports: [createAmqpLogTransport({ url: amqpUrl, exchange, service, registry, notices: new PassThrough() })] });
    const [gateway, user, session] = ["gateway", "user", "session"].map(logger);
    gateway.info("request handled", { traceId, method: "POST", path: "/v1/users/login", status: 200 });
    user.info("rpc handled", { traceId, rpc: "usermesh.user.v1.UserService/Login", code: "OK", durationMs: 21.5 });
    session.warn("session limit reached", { traceId, userId: "u-1", evicted: 1 });
    user.info("unrelated", { traceId: newTraceId() });
    // close() waits for the broker's confirms.
    await Promise.all([gateway.close(), user.close(), session.close()]);

    let page: WirePage = { lines: [], nextPageToken: "" };
    await waitFor(async () => (page = await search({ traceId })).lines.length === 3, "the trace's three lines");
    expect(page.lines.map((l) => [l.service, l.level, l.msg])).to.have.deep.members([
      ["gateway", "LOG_LEVEL_INFO", "request handled"],
      ["user", "LOG_LEVEL_INFO", "rpc handled"],
      ["session", "LOG_LEVEL_WARN", "session limit reached"],
    ]);
    expect(page.lines.every((l) => l.traceId === traceId)).to.equal(true);
    const userLine = page.lines.find((l) => l.service === "user")!;
    expect(fieldsOf(userLine.fields)).to.deep.equal({ rpc: "usermesh.user.v1.UserService/Login", code: "OK", durationMs: 21.5 });
    expect(Number(userLine.ts.seconds)).to.be.closeTo(Date.now() / 1000, 60);
    const ts = page.lines.map((l) => Number(l.ts.seconds) * 1e9 + l.ts.nanos);
    expect(ts).to.deep.equal([...ts].sort((a, b) => b - a));

    for (const service of ["gateway", "user", "session"]) {
      const lines = await storedLines(dir.path, service);
      expect(lines.some((l) => l.line.traceId === traceId), service).to.equal(true);
    }
    expect(await metric(proc.adminPort, /^logs_ingested_total\{.*service="session".*level="warn"/)).to.be.at.least(1);
    expect(await metric(proc.adminPort, /^logs_write_seconds_count/)).to.be.at.least(1);
    expect(await metric(proc.adminPort, /^logs_queue_lag_seconds_count/)).to.be.at.least(4);
  });

  it("streams a line published after Tail started, and only lines its filter wants", async () => {
    const call = (client as unknown as { tail(req: object): grpc.ClientReadableStream<{ line: WireLine; dropped: number }> }).tail({ service: "user", minLevel: "LOG_LEVEL_WARN" });
    const received: WireLine[] = [];
    call.on("data", (response: { line: WireLine }) => received.push(response.line));
    const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
      call.on("error", resolve);
      call.on("end", () => resolve(undefined));
    });
    // The subscription starts when the server has the call: publish until one arrives.
    const started = Date.now();
    for (let i = 0; received.length === 0 && Date.now() - started < 10_000; i++) {
      publish("gateway.warn", loggerLine("gateway", "warn", `other service ${i}`, undefined));
      publish("user.info", loggerLine("user", "info", `too low ${i}`, undefined));
      publish("user.warn", loggerLine("user", "warn", `probe ${i}`, undefined));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(received.length).to.be.greaterThan(0);
    expect(received.every((l) => l.service === "user" && l.level === "LOG_LEVEL_WARN" && l.msg.startsWith("probe"))).to.equal(true);
    call.cancel();
    expect((await ended)?.code).to.equal(grpc.status.CANCELLED);
  });

  it("pages through Search results with an opaque token, newest first, without gaps or repeats", async () => {
    const traceId = newTraceId();
    const base = Date.now() - 60_000;
    for (let i = 0; i < 25; i++) publish("user.info", loggerLine("user", "info", `page line ${i}`, traceId, { i }, base + i * 10));
    await waitFor(async () => (await search({ traceId, limit: 1000 })).lines.length === 25, "25 lines stored");
    const seen: number[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await search({ traceId, limit: 10, pageToken });
      seen.push(...page.lines.map((l) => fieldsOf(l.fields).i as number));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).to.equal(3);
    expect(seen).to.deep.equal(Array.from({ length: 25 }, (_, i) => 24 - i));
  });

  it("answers INVALID_ARGUMENT with a field violation per bad argument", async () => {
    const error = await search({ limit: 5000, service: "a/b", pageToken: "bogus", since: { seconds: 20 }, until: { seconds: 10 } }).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).to.equal(grpc.status.INVALID_ARGUMENT);
    const violations = fieldViolationsOf(errorFromStatus(error as grpc.ServiceError));
    expect(violations.map((v) => v.field).sort()).to.deep.equal(["limit", "pageToken", "service", "until"]);
  });

  it("counts a malformed message, drops it and keeps consuming", async () => {
    const before = await metric(proc.adminPort, /^logs_malformed_total\{.*reason="not_json"/);
    publish("user.info", "{ this is not json");
    const traceId = newTraceId();
    publish("user.info", loggerLine("user", "info", "after the malformed one", traceId));
    await waitFor(async () => (await search({ traceId })).lines.length === 1, "the line after the malformed one");
    expect(await metric(proc.adminPort, /^logs_malformed_total\{.*reason="not_json"/)).to.equal(before + 1);
  });

  it("keeps its own log lines off the broker, so it never stores them", async () => {
    expect(proc.lines.some((l) => l.msg === "rpc handled" && l.service === "logs")).to.equal(true);
    expect((await search({ service: "logs" })).lines).to.deep.equal([]);
    expect(await storedLines(dir.path, "logs")).to.deep.equal([]);
  });
});

describe("logs process: broker connection cut and restored", function () {
  this.timeout(90_000);
  let admin: BrokerAdmin;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let proxy: TcpProxy;

  before(async () => {
    admin = await openBrokerAdmin();
    dir = await tempDir();
    proxy = await startTcpProxy(5672);
  });
  after(async () => {
    await proxy?.close();
    await admin?.cleanup();
    await dir?.remove();
  });

  it("reconnects after its connection to RabbitMQ is cut, and stores every line exactly once", async () => {
    const { exchange, queue } = await declareTopology(admin);
    const publish = publisher(admin, exchange);
    const proc = await startLogs({
      USERMESH_STORAGE__DIR: dir.path,
      USERMESH_INGEST__EXCHANGE: exchange,
      USERMESH_INGEST__QUEUE: queue,
      USERMESH_AMQP__URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      USERMESH_LOG__TO_BROKER: "false",
    });
    const client = stockClient(pkg, "usermesh.logs.v1.LogService", `127.0.0.1:${proc.grpcPort}`);
    try {
      const connected = (times: number) => proc.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith(`consumer ${queue}: connected`)).length >= times;
      await waitFor(() => connected(1), "the consumer connected");
      const total = 4000;
      const stored = () => metric(proc.adminPort, /^logs_ingested_total\{/);

      // Cut while lines are flowing: some are stored but not yet acked when the connection goes.
      for (let i = 0; i < 3000; i++) publish("user.info", loggerLine("user", "info", `line ${i}`, undefined, { i }));
      await waitFor(async () => (await stored()) >= 200, "the first lines stored", 20_000);
      proxy.cut();
      for (let i = 3000; i < total; i++) publish("user.info", loggerLine("user", "info", `line ${i}`, undefined, { i }));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      proxy.restore();

      await waitFor(() => connected(2), "the consumer connected again", 30_000);
      await waitFor(async () => (await admin.channel.checkQueue(queue)).messageCount === 0 && (await stored()) >= total, "every line stored", 30_000);
      const lines = await storedLines(dir.path, "user");
      const counts = new Map<number, number>();
      for (const { line } of lines) counts.set(line.i as number, (counts.get(line.i as number) ?? 0) + 1);
      expect(counts.size).to.equal(total);
      expect([...counts.values()].every((n) => n === 1), "each line exactly once").to.equal(true);
      expect(lines).to.have.length(total);
      // Lines stored but not yet acked at the cut come again, redelivered; they are recognised, not rewritten
      // (typically a few hundred here: logs_duplicates_total).
      expect(await stored()).to.equal(total);
      expect(proc.lines.some((l) => typeof l.msg === "string" && l.msg.includes("lost the broker connection"))).to.equal(true);
      const firstPage = await callUnary<WirePage>(client, "search", { service: "user", limit: 1 });
      expect(firstPage.lines).to.have.length(1);
    } finally {
      client.close();
      expect(await proc.stop()).to.equal(0);
    }
  });

  it("ends open Tail streams and exits 0 on SIGTERM", async () => {
    const { exchange, queue } = await declareTopology(admin);
    const proc = await startLogs({ USERMESH_STORAGE__DIR: dir.path, USERMESH_INGEST__EXCHANGE: exchange, USERMESH_INGEST__QUEUE: queue, USERMESH_LOG__TO_BROKER: "false" });
    const client = stockClient(pkg, "usermesh.logs.v1.LogService", `127.0.0.1:${proc.grpcPort}`);
    try {
      const call = (client as unknown as { tail(req: object): grpc.ClientReadableStream<unknown> }).tail({});
      const ended = new Promise<string>((resolve) => {
        call.on("data", () => undefined);
        call.on("end", () => resolve("end"));
        call.on("error", (e: grpc.ServiceError) => resolve(`error ${e.code}`));
      });
      // Let the server take the call before stopping it.
      await waitFor(async () => (await metric(proc.adminPort, /^grpc_server_started_total\{.*grpc_method="Tail"/)) >= 1, "the Tail call started");
      const started = Date.now();
      expect(await proc.stop()).to.equal(0);
      expect(await ended).to.equal("end");
      expect(Date.now() - started).to.be.below(5000);
    } finally {
      client.close();
    }
  });
});
