import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { expect } from "chai";
import { connect } from "amqplib";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { Registry } from "prom-client";
import { runInScope } from "../trace/call-scope.js";
import { createAmqpLogTransport, type AmqpLogTransport, type AmqpLogTransportOptions } from "./amqp-log-transport.js";
import { createLogger, type RootLogger } from "./logger.js";

const brokerUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const unreachableUrl = "amqp://guest:guest@127.0.0.1:1";
const fastRetry = { min: 20, max: 100 };

async function counterValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return match?.value ?? 0;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function lineCount(stream: PassThrough): () => string[] {
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  return () => text.split("\n").filter((line) => line !== "");
}

describe("AMQP log transport", function () {
  const run = randomBytes(4).toString("hex");
  let admin: ChannelModel;
  let channel: Channel;
  const exchanges: string[] = [];
  let cleanups: (() => Promise<unknown>)[] = [];

  /** A uniquely named exchange with an exclusive queue bound to every key; received collects its messages. */
  async function boundExchange(): Promise<{ exchange: string; received: ConsumeMessage[] }> {
    const exchange = `logs.test.${run}.${exchanges.length}`;
    exchanges.push(exchange);
    await channel.assertExchange(exchange, "topic", { durable: true });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, "#");
    const received: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return { exchange, received };
  }

  function setUp(options: Partial<AmqpLogTransportOptions> & { exchange: string }): {
    transport: AmqpLogTransport;
    logger: RootLogger;
    registry: Registry;
    stdout: PassThrough;
    notices: PassThrough;
  } {
    const registry = new Registry();
    const stdout = new PassThrough();
    const notices = new PassThrough();
    const transport = createAmqpLogTransport({
      url: brokerUrl,
      service: `svc${run}`,
      registry,
      notices,
      reconnectDelayMs: fastRetry,
      ...options,
    });
    const logger = createLogger({ service: `svc${run}`, level: "debug", stdout, transports: [transport] });
    cleanups.push(() => logger.close(), () => transport.close(500));
    return { transport, logger, registry, stdout, notices };
  }

  before(async () => {
    admin = await connect(brokerUrl);
    channel = await admin.createChannel();
  });

  afterEach(async () => {
    await Promise.all(cleanups.map((cleanup) => cleanup()));
    cleanups = [];
  });

  after(async () => {
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await admin.close();
  });

  describe("with RabbitMQ reachable", () => {
    it("publishes each line to <service>.<level> with the caller's trace id in the JSON body", async () => {
      const { exchange, received } = await boundExchange();
      const { logger, registry } = setUp({ exchange });
      const traceId = "abc0123456789abcdef0123456789abc";

      runInScope({ traceId }, () => logger.info("profile updated", { userId: "u-7" }));
      await waitFor(() => received.length === 1, "the log message");

      const [message] = received;
      expect(message.fields.routingKey).to.equal(`svc${run}.info`);
      expect(message.properties).to.include({
        contentType: "application/json",
        deliveryMode: 2,
        appId: `svc${run}`,
      });
      expect(message.properties.timestamp).to.be.a("number");
      const body = JSON.parse(message.content.toString("utf8")) as Record<string, unknown>;
      expect(body).to.include({ traceId, msg: "profile updated", userId: "u-7", level: "info", service: `svc${run}` });
      await waitFor(async () => (await counterValue(registry, "logs_published_total")) === 1, "the confirm");
    });

    it("sends lines buffered while the connection was down once it reconnects", async () => {
      const { exchange, received } = await boundExchange();
      const connections: ChannelModel[] = [];
      const { transport, logger, notices } = setUp({
        exchange,
        connect: async (url, socketOptions) => {
          const model = await connect(url, socketOptions);
          connections.push(model);
          return model;
        },
      });
      const noticeLines = lineCount(notices);
      await waitFor(() => transport.connected, "the first connection");
      logger.info("before the cut");
      await waitFor(() => received.length === 1, "the first line");

      await connections[0].close();
      await waitFor(() => !transport.connected, "the transport to notice the cut");
      for (let n = 0; n < 5; n++) logger.warn("during the cut", { n });
      await waitFor(() => received.length === 6, "the buffered lines after reconnecting");

      expect(connections).to.have.length(2);
      const during = received.slice(1).map((m) => JSON.parse(m.content.toString("utf8")) as { n: number });
      expect(during.map((line) => line.n)).to.deep.equal([0, 1, 2, 3, 4]);
      expect(received.slice(1).every((m) => m.fields.routingKey === `svc${run}.warn`)).to.equal(true);
      expect(noticeLines()).to.have.length(2);
      expect(noticeLines()[1]).to.contain("connected again");
    });

    it("waits in close() for the broker to confirm what is still buffered", async () => {
      const { exchange, received } = await boundExchange();
      const { transport, logger, registry, stdout } = setUp({ exchange });
      lineCount(stdout);
      await waitFor(() => transport.connected, "the connection");

      for (let n = 0; n < 200; n++) logger.info("shutting down", { n });
      await logger.close();

      expect(await counterValue(registry, "logs_published_total")).to.equal(200);
      expect(await counterValue(registry, "logs_dropped_total", { reason: "closed" })).to.equal(0);
      expect(transport.connected).to.equal(false);
      await waitFor(() => received.length === 200, "all 200 lines");
    });
  });

  describe("with the broker unreachable", () => {
    it("never throws or blocks, still writes stdout, and counts the lines dropped beyond the buffer", async () => {
      const { transport, logger, registry, stdout, notices } = setUp({
        url: unreachableUrl,
        exchange: `logs.test.${run}.unreachable`,
        maxBuffered: 10,
      });
      const stdoutLines = lineCount(stdout);
      const noticeLines = lineCount(notices);

      const started = performance.now();
      for (let n = 0; n < 100; n++) logger.info("broker is down", { n });
      const elapsed = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 300));

      expect(elapsed).to.be.below(1000);
      expect(stdoutLines()).to.have.length(100);
      expect(await counterValue(registry, "logs_dropped_total", { reason: "buffer_full" })).to.equal(90);
      expect(await counterValue(registry, "logs_published_total")).to.equal(0);
      expect(transport.connected).to.equal(false);
      // Several reconnects have failed by now, but the outage is announced once.
      expect(noticeLines()).to.have.length(1);
      expect(noticeLines()[0]).to.contain("ECONNREFUSED");
    });

    it("resolves close() within its timeout, counting the unsent lines as dropped", async () => {
      const { transport, logger, registry } = setUp({ url: unreachableUrl, exchange: `logs.test.${run}.closing` });
      for (let n = 0; n < 5; n++) logger.error("nobody hears this", { n });

      const started = Date.now();
      await transport.close(300);
      expect(Date.now() - started).to.be.below(1000);
      expect(await counterValue(registry, "logs_dropped_total", { reason: "closed" })).to.equal(5);
      await logger.close();
    });

    it("shares its counters when a second transport registers on the same registry", async () => {
      const registry = new Registry();
      const make = () =>
        createAmqpLogTransport({ url: unreachableUrl, service: "twice", registry, notices: new PassThrough() });
      const first = make();
      let second: AmqpLogTransport | undefined;
      expect(() => (second = make())).not.to.throw();
      await Promise.all([first.close(100), second?.close(100)]);
      expect(registry.getMetricsAsArray().map((m) => m.name)).to.have.members([
        "logs_published_total",
        "logs_dropped_total",
      ]);
    });
  });
});
