import { expect } from "chai";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import { UserDeletedSchema } from "../../gen/usermesh/events/v1/events_pb.js";
import { createAmqpPublisher, PublishError } from "./amqp-publisher.js";
import type { AmqpPublisherOptions, EventPublisher, PublishFailure } from "./amqp-publisher.js";
import { fromAmqpMessage } from "./cloudevents.js";
import {
  brokerUrl,
  fastRetry,
  keptConnections,
  openBrokerAdmin,
  recordingLogger,
  sampleEvent,
  sleep,
  uniqueName,
  unreachableUrl,
  waitFor,
} from "./test-fixtures/broker.js";
import type { BrokerAdmin } from "./test-fixtures/broker.js";
import { startStallingProxy } from "./test-fixtures/stalling-proxy.js";

async function publishError(promise: Promise<unknown>, reason: PublishFailure): Promise<PublishError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PublishError);
    expect((error as PublishError).reason).to.equal(reason);
    return error as PublishError;
  }
  expect.fail(`expected a PublishError (${reason})`);
}

describe("AMQP event publisher", function () {
  let admin: BrokerAdmin;
  let publishers: EventPublisher[] = [];

  function publisher(options: Partial<AmqpPublisherOptions> & Pick<AmqpPublisherOptions, "exchanges">) {
    const logger = recordingLogger();
    const created = createAmqpPublisher({ url: brokerUrl, logger, reconnectDelayMs: fastRetry, ...options });
    publishers.push(created);
    return { publisher: created, logger };
  }

  /** A fresh durable topic exchange with a temporary queue bound to every key; received collects its messages. */
  async function boundExchange(): Promise<{ exchange: string; queue: string; received: ConsumeMessage[] }> {
    const exchange = uniqueName("events.user");
    const queue = uniqueName("events.user.tap");
    admin.track({ exchanges: [exchange], queues: [queue] });
    await admin.channel.assertExchange(exchange, "topic", { durable: true });
    await admin.channel.assertQueue(queue, { durable: false, autoDelete: false });
    await admin.channel.bindQueue(queue, exchange, "#");
    const received: ConsumeMessage[] = [];
    await admin.channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return { exchange, queue, received };
  }

  beforeEach(async () => {
    admin = await openBrokerAdmin();
  });

  afterEach(async () => {
    await Promise.all(publishers.map((p) => p.close()));
    publishers = [];
    await admin.cleanup();
  });

  it("delivers a persistent binary CloudEvent with the spec's headers and content type once publish() resolves", async () => {
    const { exchange, received } = await boundExchange();
    const { publisher: events } = publisher({ exchanges: [{ name: exchange, type: "topic" }] });
    await events.waitUntilConnected(5000);
    const payload = toBinary(UserDeletedSchema, create(UserDeletedSchema, { userId: "u-9" }));
    const event = sampleEvent({ type: "usermesh.user.v1.deleted", data: payload });

    await events.publish(exchange, "user.delete", event);
    await waitFor(() => received.length === 1, "the message");

    const [message] = received;
    expect(message.fields.routingKey).to.equal("user.delete");
    expect(message.properties).to.include({ contentType: "application/protobuf", deliveryMode: 2, messageId: event.id });
    expect(message.properties.headers).to.include({
      cloudEvents_specversion: "1.0",
      cloudEvents_id: event.id,
      cloudEvents_type: "usermesh.user.v1.deleted",
      cloudEvents_source: "/usermesh/user",
      cloudEvents_time: "2024-05-06T07:08:09.123Z",
    });
    const back = fromAmqpMessage(message);
    expect(back.id).to.equal(event.id);
    expect(fromBinary(UserDeletedSchema, back.data).userId).to.equal("u-9");
  });

  it("asserts its exchanges durable on connect, so a publish to a new exchange is confirmed even with no queue bound", async () => {
    const exchange = uniqueName("events.fresh");
    admin.track({ exchanges: [exchange] });
    const { publisher: events } = publisher({ exchanges: [{ name: exchange, type: "topic" }] });
    await events.waitUntilConnected(5000);

    await events.publish(exchange, "user.registration", sampleEvent());

    await admin.channel.checkExchange(exchange);
  });

  it("keeps retrying, warning once, while an exchange cannot be asserted, and connects once the clash is gone", async () => {
    const exchange = uniqueName("events.clash");
    admin.track({ exchanges: [exchange] });
    await admin.channel.assertExchange(exchange, "direct", { durable: true });
    const { publisher: events, logger } = publisher({ exchanges: [{ name: exchange, type: "topic" }] });

    await waitFor(() => logger.warnings().length === 1, "the warning");
    await sleep(300);
    expect(events.connected).to.equal(false);
    expect(logger.warnings()).to.have.length(1);
    expect(logger.warnings()[0].fields?.err).to.contain("PRECONDITION");

    await admin.channel.deleteExchange(exchange);
    await events.waitUntilConnected(5000);
    await events.publish(exchange, "user.registration", sampleEvent());
  });

  it("rejects promptly with PublishError when the URL points nowhere, and warns once for the whole outage", async () => {
    const { publisher: events, logger } = publisher({ url: unreachableUrl, exchanges: [] });

    const started = Date.now();
    await publishError(events.publish("anything", "user.registration", sampleEvent()), "not_connected");
    expect(Date.now() - started).to.be.below(100);
    await publishError(events.waitUntilConnected(300), "not_connected");

    expect(events.connected).to.equal(false);
    expect(logger.warnings()).to.have.length(1);
    expect(JSON.stringify(logger.lines)).not.to.contain("guest:guest");
  });

  it("rejects with PublishError when the broker nacks the message", async () => {
    const exchange = uniqueName("events.full");
    const queue = uniqueName("events.full.q");
    admin.track({ exchanges: [exchange], queues: [queue] });
    await admin.channel.assertExchange(exchange, "topic", { durable: true });
    // A queue that can hold nothing and refuses publishes: the broker nacks whatever is routed to it.
    await admin.channel.assertQueue(queue, { maxLength: 0, overflow: "reject-publish" });
    await admin.channel.bindQueue(queue, exchange, "#");
    const { publisher: events } = publisher({ exchanges: [{ name: exchange, type: "topic" }] });
    await events.waitUntilConnected(5000);

    await publishError(events.publish(exchange, "user.registration", sampleEvent()), "nacked");
    expect(events.connected).to.equal(true);
  });

  it("rejects while the connection is down and publishes again after the automatic reconnect", async () => {
    const { exchange, received } = await boundExchange();
    const seam = keptConnections();
    const { publisher: events, logger } = publisher({
      exchanges: [{ name: exchange, type: "topic" }],
      connect: seam.connect,
      // Long enough to publish inside the outage, short enough to keep the test quick.
      reconnectDelayMs: { min: 300, max: 300 },
    });
    await events.waitUntilConnected(5000);
    await events.publish(exchange, "user.registration", sampleEvent());

    await seam.connections[0].close();
    await waitFor(() => !events.connected, "the publisher to notice the cut");
    await publishError(events.publish(exchange, "user.registration", sampleEvent()), "not_connected");

    await events.waitUntilConnected(5000);
    const after = sampleEvent();
    await events.publish(exchange, "user.delete", after);
    await waitFor(() => received.length === 2, "the message published after the reconnect");

    expect(seam.connections).to.have.length(2);
    expect(received[1].properties.messageId).to.equal(after.id);
    expect(logger.warnings()).to.have.length(1);
    expect(logger.lines.at(-1)?.msg).to.contain("connected again");
  });

  it("rejects with PublishError once the timeout passes without a confirm", async () => {
    const { exchange, received } = await boundExchange();
    const proxy = await startStallingProxy();
    try {
      const { publisher: events } = publisher({ url: proxy.url, exchanges: [{ name: exchange, type: "topic" }], publishTimeoutMs: 200 });
      await events.waitUntilConnected(5000);
      proxy.stall();

      const started = Date.now();
      await publishError(events.publish(exchange, "user.registration", sampleEvent()), "timeout");

      expect(Date.now() - started).to.be.within(190, 1000);
      // The broker took it all the same: a timed-out publish may still arrive, hence ids for deduplication.
      await waitFor(() => received.length === 1, "the message");
      proxy.resume();
      await events.close();
    } finally {
      await proxy.close();
    }
  });

  it("rejects the publishes still waiting for a confirm when the connection drops", async () => {
    const { exchange } = await boundExchange();
    const seam = keptConnections();
    const { publisher: events } = publisher({ exchanges: [{ name: exchange, type: "topic" }], connect: seam.connect });
    await events.waitUntilConnected(5000);

    // Written to the socket buffer but not yet confirmed when the connection goes.
    const inFlight = events.publish(exchange, "user.registration", sampleEvent());
    const cut = seam.connections[0].close();

    await publishError(inFlight, "channel_closed");
    await cut;
  });

  it("waits for the channel to drain when amqplib pushes back, and still confirms every message", async () => {
    const { exchange, queue } = await boundExchange();
    await admin.channel.unbindQueue(queue, exchange, "#");
    const sink = uniqueName("events.sink");
    admin.track({ queues: [sink] });
    await admin.channel.assertQueue(sink);
    await admin.channel.bindQueue(sink, exchange, "#");
    let drains = 0;
    const seam = keptConnections();
    const { publisher: events } = publisher({
      exchanges: [{ name: exchange, type: "topic" }],
      publishTimeoutMs: 15_000,
      connect: async (url) => {
        const model = await seam.connect(url);
        const createConfirmChannel = model.createConfirmChannel.bind(model);
        model.createConfirmChannel = async (options) => {
          const channel: ConfirmChannel = await createConfirmChannel(options);
          channel.on("drain", () => drains++);
          return channel;
        };
        return model;
      },
    });
    await events.waitUntilConnected(5000);
    const count = 3000; // amqplib buffers 1024 frames per channel before publish() returns false

    await Promise.all(Array.from({ length: count }, (_, n) => events.publish(exchange, "user.registration", sampleEvent({ id: `evt-${n}` }))));

    expect(drains).to.be.greaterThan(0);
    const { messageCount } = await admin.channel.checkQueue(sink);
    expect(messageCount).to.equal(count);
  });

  it("rejects every publish after close(), and close() can be called again", async () => {
    const { exchange } = await boundExchange();
    const { publisher: events } = publisher({ exchanges: [{ name: exchange, type: "topic" }] });
    await events.waitUntilConnected(5000);

    await events.close();

    expect(events.connected).to.equal(false);
    await publishError(events.publish(exchange, "user.registration", sampleEvent()), "closed");
    await publishError(events.waitUntilConnected(100), "closed");
    await events.close();
  });
});
