import { expect } from "chai";
import type { ConsumeMessage } from "amqplib";
import { createAmqpConsumer } from "./amqp-consumer.js";
import type { Consumer, ConsumerOptions } from "./amqp-consumer.js";
import { fromAmqpMessage, toAmqpMessage } from "./cloudevents.js";
import {
  brokerUrl,
  fastRetry,
  keptConnections,
  openBrokerAdmin,
  recordingLogger,
  sampleEvent,
  sleep,
  uniqueName,
  waitFor,
} from "./test-fixtures/broker.js";
import type { BrokerAdmin } from "./test-fixtures/broker.js";

describe("AMQP consumer", function () {
  let admin: BrokerAdmin;
  let consumers: Consumer[] = [];

  /** Names for one test's exchange, queue and dead-letter pair, all deleted afterwards. */
  function topology() {
    const names = {
      exchange: uniqueName("events.user"),
      queue: uniqueName("photo.user-events"),
      deadLetter: { exchange: uniqueName("photo.dlx"), queue: uniqueName("photo.user-events.dead") },
    };
    admin.track({ exchanges: [names.exchange, names.deadLetter.exchange], queues: [names.queue, names.deadLetter.queue] });
    return names;
  }

  function consumer(names: ReturnType<typeof topology>, options: Partial<ConsumerOptions> = {}) {
    const logger = recordingLogger();
    const created = createAmqpConsumer({
      url: brokerUrl,
      queue: names.queue,
      bindings: [{ exchange: names.exchange, exchangeType: "topic", routingKey: "user.*" }],
      prefetch: 5,
      deadLetter: names.deadLetter,
      logger,
      reconnectDelayMs: fastRetry,
      ...options,
    });
    consumers.push(created);
    return { consumer: created, logger };
  }

  function publish(exchange: string, routingKey: string, id: string): void {
    const { content, options } = toAmqpMessage(sampleEvent({ id }));
    admin.channel.publish(exchange, routingKey, content, options);
  }

  async function messageCount(queue: string): Promise<number> {
    return (await admin.channel.checkQueue(queue)).messageCount;
  }

  beforeEach(async () => {
    admin = await openBrokerAdmin();
  });

  afterEach(async () => {
    await Promise.all(consumers.map((c) => c.close(2000)));
    consumers = [];
    await admin.cleanup();
  });

  it("declares its queue and bindings, handles each message and acks it", async () => {
    const names = topology();
    const { consumer: events } = consumer(names);
    const handled: string[] = [];

    await events.start(async (message) => {
      handled.push(fromAmqpMessage(message).id);
      return "ack";
    });
    expect(events.connected).to.equal(true);
    publish(names.exchange, "user.registration", "evt-1");
    publish(names.exchange, "user.delete", "evt-2");
    publish(names.exchange, "order.created", "evt-not-bound");
    await waitFor(() => handled.length === 2, "both messages");
    await events.close();

    expect(handled).to.deep.equal(["evt-1", "evt-2"]);
    expect(await messageCount(names.queue)).to.equal(0);
    expect(await messageCount(names.deadLetter.queue)).to.equal(0);
  });

  it("sends a message the handler rejects to the dead-letter queue, with its original routing key in x-death", async () => {
    const names = topology();
    const { consumer: events } = consumer(names);
    let calls = 0;

    await events.start(async () => {
      calls++;
      return "reject";
    });
    publish(names.exchange, "user.registration", "evt-poison");
    await waitFor(async () => (await messageCount(names.deadLetter.queue)) === 1, "the dead-lettered message");

    expect(calls).to.equal(1);
    const dead = await admin.channel.get(names.deadLetter.queue, { noAck: true });
    if (!dead) expect.fail("no dead-lettered message");
    expect(dead.properties.messageId).to.equal("evt-poison");
    const deaths = dead.properties.headers?.["x-death"] ?? [];
    expect(deaths[0]).to.include({ reason: "rejected", queue: names.queue });
    expect(deaths[0]["routing-keys"]).to.deep.equal(["user.registration"]);
  });

  it("redelivers a message once when the handler throws, then dead-letters it on the second failure", async () => {
    const names = topology();
    const { consumer: events, logger } = consumer(names);
    const deliveries: boolean[] = [];

    await events.start(async (message) => {
      deliveries.push(message.fields.redelivered);
      throw new Error("storage unavailable");
    });
    publish(names.exchange, "user.delete", "evt-flaky");
    await waitFor(async () => (await messageCount(names.deadLetter.queue)) === 1, "the dead-lettered message");
    await sleep(100);

    expect(deliveries).to.deep.equal([false, true]);
    expect(logger.warnings().map((line) => line.fields?.err)).to.deep.equal(["storage unavailable", "storage unavailable"]);
  });

  it("acks a message that succeeds on its redelivery", async () => {
    const names = topology();
    const { consumer: events } = consumer(names);
    const deliveries: boolean[] = [];

    await events.start(async (message) => {
      deliveries.push(message.fields.redelivered);
      if (!message.fields.redelivered) throw new Error("transient");
      return "ack";
    });
    publish(names.exchange, "user.delete", "evt-transient");
    await waitFor(() => deliveries.length === 2, "the redelivery");
    await events.close();

    expect(deliveries).to.deep.equal([false, true]);
    expect(await messageCount(names.queue)).to.equal(0);
    expect(await messageCount(names.deadLetter.queue)).to.equal(0);
  });

  it("holds a message the handler answers \"retry\" and requeues it as often as it takes, never dead-lettering it", async () => {
    const names = topology();
    const { consumer: events } = consumer(names, { retryDelayMs: 50 });
    let attempts = 0;

    await events.start(async () => (++attempts < 4 ? "retry" : "ack"));
    publish(names.exchange, "user.delete", "evt-outage");
    await waitFor(() => attempts === 4, "the fourth attempt");
    await events.close();

    expect(await messageCount(names.queue)).to.equal(0);
    expect(await messageCount(names.deadLetter.queue)).to.equal(0);
  });

  it("never runs more handlers at once than the prefetch allows", async () => {
    const names = topology();
    const { consumer: events } = consumer(names, { prefetch: 3 });
    let running = 0;
    let most = 0;
    let done = 0;

    await events.start(async () => {
      running++;
      most = Math.max(most, running);
      await sleep(40);
      running--;
      done++;
      return "ack";
    });
    for (let n = 0; n < 12; n++) publish(names.exchange, "user.registration", `evt-${n}`);
    await waitFor(() => done === 12, "every message");

    expect(most).to.equal(3);
  });

  it("resumes consuming by itself after the connection is cut", async () => {
    const names = topology();
    const seam = keptConnections();
    const { consumer: events, logger } = consumer(names, { connect: seam.connect });
    const handled: string[] = [];

    await events.start(async (message) => {
      handled.push(String(message.properties.messageId));
      return "ack";
    });
    publish(names.exchange, "user.registration", "evt-before");
    await waitFor(() => handled.length === 1, "the first message");

    await seam.connections[0].close();
    await waitFor(() => !events.connected, "the consumer to notice the cut");
    publish(names.exchange, "user.delete", "evt-during");
    await waitFor(() => events.connected, "the reconnect");
    publish(names.exchange, "user.delete", "evt-after");
    await waitFor(() => handled.length === 3, "the messages published during and after the cut");

    expect(handled).to.have.members(["evt-before", "evt-during", "evt-after"]);
    expect(seam.connections).to.have.length(2);
    expect(logger.warnings()).to.have.length(1);
  });

  it("declares its queue again and carries on when the broker cancels the consumer (queue deleted)", async () => {
    const names = topology();
    const { consumer: events } = consumer(names);
    const handled: string[] = [];
    await events.start(async (message) => {
      handled.push(String(message.properties.messageId));
      return "ack";
    });

    await admin.channel.deleteQueue(names.queue);
    // Right after the delete the consumer may not have noticed yet: the queue is then simply missing.
    await waitFor(async () => events.connected && (await admin.consumersOf(names.queue)) === 1, "the queue to be back");
    publish(names.exchange, "user.registration", "evt-after-delete");
    await waitFor(() => handled.length === 1, "the message");

    expect(handled).to.deep.equal(["evt-after-delete"]);
  });

  it("lets in-flight handlers finish and ack before close() resolves", async () => {
    const names = topology();
    const { consumer: events } = consumer(names);
    let release: () => void = () => undefined;
    const started: ConsumeMessage[] = [];

    await events.start(async (message) => {
      started.push(message);
      await new Promise<void>((resolve) => (release = resolve));
      return "ack";
    });
    publish(names.exchange, "user.registration", "evt-slow");
    await waitFor(() => started.length === 1, "the handler to start");
    let closed = false;
    const closing = events.close().then(() => (closed = true));
    await sleep(100);
    expect(closed).to.equal(false);

    release();
    await closing;

    expect(events.connected).to.equal(false);
    expect(await messageCount(names.queue)).to.equal(0);
  });

  it("rejects start() when closed before the broker was ever reached", async () => {
    const names = topology();
    const { consumer: events } = consumer(names, { url: "amqp://guest:guest@127.0.0.1:1" });

    const starting = events.start(async () => "ack");
    await sleep(50);
    await events.close();

    let failed = false;
    await starting.catch(() => (failed = true));
    expect(failed).to.equal(true);
  });
});
