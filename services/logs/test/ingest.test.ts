// Ingestion behind the real consumer and RabbitMQ (an exchange and queue unique to each test) into the
// real file store in a temporary directory; the handler alone for the cases a broker cannot stage on cue.
import { expect } from "chai";
import type { ConsumeMessage } from "amqplib";
import { createAmqpConsumer, type Consumer } from "../../../internal/events/amqp-consumer.js";
import { brokerUrl, fastRetry, openBrokerAdmin, recordingLogger as brokerLogger, uniqueName, type BrokerAdmin } from "../../../internal/events/test-fixtures/broker.js";
import { openFileLogStore } from "../file-log-store.js";
import { createIngest, type IngestMetrics, type LineWriter } from "../ingest.js";
import { formatLogLine, type LogRecord } from "../log-line.js";
import { createLogs } from "../logs.js";
import { loggerLine, newTraceId, record, recordingLogger, storedLines, tempDir, waitFor } from "./fixtures.js";

function recordingMetrics() {
  const seen = { ingested: [] as string[], malformed: [] as string[], duplicates: 0, writes: 0, lags: [] as number[] };
  const metrics: IngestMetrics = {
    ingested: { inc: ({ service, level }) => void seen.ingested.push(`${service}.${level}`) },
    malformed: { inc: ({ reason }) => void seen.malformed.push(reason) },
    duplicates: { inc: () => void seen.duplicates++ },
    writeSeconds: { observe: () => void seen.writes++ },
    queueLagSeconds: { observe: (s) => void seen.lags.push(s) },
  };
  return { seen, metrics };
}

/** A delivery as amqplib hands it over, for calling the handler directly. */
function delivery(content: string, redelivered = false): ConsumeMessage {
  return {
    content: Buffer.from(content),
    fields: { deliveryTag: 1, redelivered, exchange: "logs", routingKey: "user.info", consumerTag: "t" },
    properties: { contentType: "application/json", headers: {} },
  } as unknown as ConsumeMessage;
}

describe("log ingestion (real RabbitMQ and files)", function () {
  this.timeout(30_000);
  let admin: BrokerAdmin;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    admin = await openBrokerAdmin();
    dir = await tempDir();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    await admin.cleanup();
    await dir.remove();
  });

  async function start(options: { writer?: LineWriter; retryDelayMs?: number } = {}) {
    const exchange = uniqueName("logs");
    const queue = uniqueName("logs.ingest");
    admin.track({ exchanges: [exchange], queues: [queue] });
    const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 1024 * 1024, retentionDays: 14, fsync: true, logger: recordingLogger() });
    cleanups.push(() => store.close());
    const { seen, metrics } = recordingMetrics();
    const ingest = createIngest({ writer: options.writer ?? store, batch: { maxLines: 50, intervalMs: 20 }, metrics, logger: recordingLogger() });
    cleanups.push(() => ingest.close());
    const consumer: Consumer = createAmqpConsumer({
      url: brokerUrl,
      queue,
      bindings: [{ exchange, exchangeType: "topic", routingKey: "#" }],
      prefetch: 100,
      logger: brokerLogger(),
      reconnectDelayMs: fastRetry,
      retryDelayMs: options.retryDelayMs ?? 50,
    });
    cleanups.push(() => consumer.close(2000));
    await consumer.start(ingest.handler);
    const publish = (routingKey: string, body: string) =>
      admin.channel.publish(exchange, routingKey, Buffer.from(body), { contentType: "application/json", persistent: true });
    return { store, seen, queue, consumer, publish };
  }

  it("stores lines from three processes in each one's file with all their fields, and finds their trace", async () => {
    const run = await start();
    const traceId = newTraceId();
    const now = Date.now();
    const sent = [
      loggerLine("gateway", "info", "request handled", traceId, { method: "POST", path: "/v1/users/login", status: 200, durationMs: 31.2 }, now),
      loggerLine("user", "info", "rpc handled", traceId, { rpc: "usermesh.user.v1.UserService/Login", code: "OK", durationMs: 24.9, peer: "127.0.0.1:5123" }, now + 1),
      loggerLine("session", "warn", "slow redis call", traceId, { durationMs: 250, command: "EVALSHA" }, now + 2),
    ];
    run.publish("gateway.info", sent[0]);
    run.publish("user.info", sent[1]);
    run.publish("session.warn", sent[2]);
    await waitFor(() => run.seen.ingested.length === 3, "three lines stored");

    for (const [service, body] of [["gateway", sent[0]], ["user", sent[1]], ["session", sent[2]]] as const) {
      const lines = await storedLines(dir.path, service);
      expect(lines.map((l) => l.file)).to.deep.equal([`${new Date(now).toISOString().slice(0, 10)}.jsonl`]);
      expect(lines[0].line).to.deep.equal(JSON.parse(body));
    }
    expect(run.seen.ingested.sort()).to.deep.equal(["gateway.info", "session.warn", "user.info"]);
    expect(run.seen.lags.every((s) => s >= 0 && s < 10)).to.equal(true);
    const found = await createLogs({ store: run.store }).search({ traceId, service: "", minLevel: 0, text: "", limit: 0, pageToken: "" });
    expect(found.lines.map((l) => l.service)).to.deep.equal(["session", "user", "gateway"]);
    expect(found.lines[2].fields).to.deep.equal({ method: "POST", path: "/v1/users/login", status: 200, durationMs: 31.2 });
    expect((await admin.channel.checkQueue(run.queue)).messageCount).to.equal(0);
  });

  it("counts malformed messages, acks and drops them, and keeps consuming", async () => {
    const run = await start();
    run.publish("user.info", "not json");
    run.publish("user.info", '{"ts":"2024-05-06T07:08:09.123Z","level":"info","service":"user"}');
    run.publish("user.info", loggerLine("user", "info", "from a month ago", undefined, {}, Date.now() - 30 * 86_400_000));
    run.publish("user.info", loggerLine("user", "info", "the good one", undefined));
    await waitFor(() => run.seen.ingested.length === 1 && run.seen.malformed.length === 3, "the good line after the bad ones");
    expect(run.seen.malformed).to.deep.equal(["not_json", "missing_field", "ts_out_of_range"]);
    expect((await storedLines(dir.path, "user")).map((l) => l.line.msg)).to.deep.equal(["the good one"]);
    // Nothing was left unacked: once the consumer is gone, the queue is still empty.
    await run.consumer.close(2000);
    expect((await admin.channel.checkQueue(run.queue)).messageCount).to.equal(0);
  });

  it("answers retry while the store fails, so the broker keeps the line until it can be stored once", async () => {
    let failures = 3;
    const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 1024 * 1024, retentionDays: 14, fsync: false, logger: recordingLogger() });
    const flaky: LineWriter = {
      keeps: (tsMs) => store.keeps(tsMs),
      append: (records) => (failures-- > 0 ? Promise.reject(Object.assign(new Error("no space left"), { code: "ENOSPC" })) : store.append(records)),
    };
    const run = await start({ writer: flaky, retryDelayMs: 20 });
    run.publish("user.error", loggerLine("user", "error", "survives the outage", undefined));
    await waitFor(() => run.seen.ingested.length === 1, "the line stored after the outage");
    expect(failures).to.be.below(0);
    expect((await storedLines(dir.path, "user")).map((l) => l.line.msg)).to.deep.equal(["survives the outage"]);
    await store.close();
  });

  it("acks a message only once its batch is stored", async () => {
    let release: () => void = () => undefined;
    const appended: LogRecord[][] = [];
    const writer: LineWriter = {
      keeps: () => true,
      append: (records) => {
        appended.push([...records]);
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const { metrics } = recordingMetrics();
    const ingest = createIngest({ writer, batch: { maxLines: 2, intervalMs: 60_000 }, metrics, logger: recordingLogger() });
    const first = ingest.handler(delivery(loggerLine("user", "info", "a", undefined)));
    const second = ingest.handler(delivery(loggerLine("user", "info", "b", undefined)));
    let settled = false;
    void Promise.all([first, second]).then(() => (settled = true));
    await waitFor(() => appended.length === 1, "the batch of two handed to the store");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).to.equal(false);
    release();
    expect(await Promise.all([first, second])).to.deep.equal(["ack", "ack"]);
    expect(appended[0].map((r) => r.msg)).to.deep.equal(["a", "b"]);
  });

  it("acks a redelivered copy of a stored line without writing it again, also one stored before a restart", async () => {
    const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 1024 * 1024, retentionDays: 14, fsync: false, logger: recordingLogger() });
    const { seen, metrics } = recordingMetrics();
    const ingest = createIngest({ writer: store, batch: { maxLines: 10, intervalMs: 5 }, metrics, logger: recordingLogger() });
    const body = loggerLine("user", "info", "once", newTraceId());
    expect(await ingest.handler(delivery(body))).to.equal("ack");
    expect(await ingest.handler(delivery(body, true))).to.equal("ack");
    // The same text, first delivered: another line that happens to be identical, so it is kept.
    expect(await ingest.handler(delivery(body))).to.equal("ack");

    const restarted = createIngest({ writer: store, batch: { maxLines: 10, intervalMs: 5 }, metrics, logger: recordingLogger() });
    restarted.seed(await store.lastLines(10));
    expect(await restarted.handler(delivery(body, true))).to.equal("ack");
    const other = record({ tsMs: Date.now(), msg: "never stored" });
    expect(await restarted.handler(delivery(formatLogLine(other), true))).to.equal("ack");

    expect(seen.duplicates).to.equal(2);
    expect((await storedLines(dir.path, "user")).map((l) => l.line.msg)).to.deep.equal(["once", "once", "never stored"]);
    await Promise.all([ingest.close(), restarted.close()]);
    await store.close();
  });

  it("remembers only its redelivery window of recent lines", async () => {
    const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 1024 * 1024, retentionDays: 14, fsync: false, logger: recordingLogger() });
    const { seen, metrics } = recordingMetrics();
    const ingest = createIngest({ writer: store, batch: { maxLines: 1, intervalMs: 0 }, metrics, logger: recordingLogger(), redeliveryWindow: 2 });
    const [a, b, c] = ["a", "b", "c"].map((msg) => loggerLine("user", "info", msg, undefined));
    for (const body of [a, b, c]) await ingest.handler(delivery(body));
    await ingest.handler(delivery(c, true));
    await ingest.handler(delivery(a, true));
    expect(seen.duplicates).to.equal(1);
    expect((await storedLines(dir.path, "user")).map((l) => l.line.msg)).to.deep.equal(["a", "b", "c", "a"]);
    await ingest.close();
    await store.close();
  });
});
