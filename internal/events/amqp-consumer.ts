// Consumes one durable RabbitMQ queue with manual acks and bounded prefetch, for any service (Photo, Logs):
// declares the queue, its bindings and dead-letter wiring on every (re)connect and resumes consuming by itself.
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { settleWithin } from "../lifecycle/timing.js";
import { createAmqpLink, describe } from "./amqp-link.js";
import type { EventsLogger, ReconnectDelays } from "./amqp-link.js";

export interface ConsumerOptions {
  /** amqp:// or amqps:// URL; a wrong or unreachable one is retried forever. Never logged. */
  url: string;
  /** Durable queue, asserted on every (re)connect; its arguments must match an existing queue's. */
  queue: string;
  /** Each exchange is asserted durable (topic) and bound to the queue with the routing key. */
  bindings: readonly { exchange: string; exchangeType: "topic"; routingKey: string }[];
  /** Most unacked messages (hence concurrent handler calls) at once; an integer in 1..65535. */
  prefetch: number;
  /**
   * Where rejected messages go: a durable direct exchange and a durable queue bound to it with the queue's
   * own name as key; the consumed queue gets x-dead-letter-exchange = exchange and
   * x-dead-letter-routing-key = queue (the original routing key stays in the x-death header). Without it,
   * a rejected message is discarded.
   */
  deadLetter?: { exchange: string; queue: string };
  /** Gets one warn per outage, a warn per failed or rejected message (never its body). */
  logger: EventsLogger;
  /** Reconnect backoff bounds; default 500..15000 ms, doubled per failed attempt, jittered. */
  reconnectDelayMs?: ReconnectDelays;
  /** Opens a connection; default amqplib's connect. A test seam: it must return a REAL connection. */
  connect?: (url: string) => Promise<ChannelModel>;
  /** How long a message the handler answered "retry" waits before it is requeued; default 5000 ms. */
  retryDelayMs?: number;
}

/**
 * Handles one message. "ack": done. "reject": nack without requeue, i.e. dead-lettered (use it for
 * messages no retry can fix). "retry": a transient failure (a store outage): the message is held for
 * retryDelayMs, then requeued, as often as it takes, never dead-lettered. A thrown error (or any other
 * result): nacked WITH requeue when the message was not redelivered yet, otherwise dead-lettered. Note that RabbitMQ also marks a message redelivered when
 * the connection that held it unacked was lost, so such a message gets no second try after a failure.
 * Delivery is at-least-once: a handler must be idempotent.
 */
export type Handler = (message: ConsumeMessage) => Promise<"ack" | "reject" | "retry">;

export interface Consumer {
  /**
   * Starts consuming with handler; resolves once consuming on the first connection. While the broker is
   * unreachable it keeps retrying and stays pending (a process that must serve without the broker should
   * not await it); rejects if close() comes first. Throws if called twice.
   */
  start(handler: Handler): Promise<void>;
  /**
   * Cancels the consumer, waits for in-flight handlers (at most timeoutMs, default 30000) so their acks go
   * out, then closes the connection; messages still unacked return to the queue. Never rejects; idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
  /** True while the queue is being consumed. */
  readonly connected: boolean;
}

type Outcome = "ack" | "reject" | "requeue" | "retry";

const defaultCloseMs = 30_000;

/**
 * Creates an idle consumer; nothing connects before start(). Throws a RangeError when prefetch is not an
 * integer in 1..65535 or reconnectDelayMs is not 1 <= min <= max.
 */
export function createAmqpConsumer(options: ConsumerOptions): Consumer {
  const { queue, logger, deadLetter } = options;
  if (!Number.isInteger(options.prefetch) || options.prefetch < 1 || options.prefetch > 65_535) {
    throw new RangeError(`prefetch must be an integer in 1..65535, got ${options.prefetch}`);
  }
  const name = `consumer ${queue}`;
  const consumerTags = new WeakMap<Channel, string>();
  const inFlight = new Set<Promise<void>>();
  let handler: Handler | undefined;
  let closing: Promise<void> | undefined;
  const retryDelayMs = options.retryDelayMs ?? 5000;
  // Cuts retry waits short on close, so held messages go back to the queue at once.
  const closed = new AbortController();

  const link = createAmqpLink<Channel>({
    url: options.url,
    name,
    logger,
    reconnectDelayMs: options.reconnectDelayMs,
    connect: options.connect,
    openChannel: (model) => model.createChannel(),
    setup: async (channel) => {
      await declareTopology(channel, options);
      // Per consumer (global = false): at most `prefetch` deliveries unacked, so at most that many handlers.
      await channel.prefetch(options.prefetch);
      const { consumerTag } = await channel.consume(queue, (message) => receive(channel, message), { noAck: false });
      consumerTags.set(channel, consumerTag);
    },
  });

  function receive(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted, or its node went away): declare it again.
      const session = link.session;
      if (session?.channel === channel) link.drop(session, new Error("the broker cancelled the consumer"));
      return;
    }
    const work = handle(channel, message);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }

  async function handle(channel: Channel, message: ConsumeMessage): Promise<void> {
    const fields = { queue, routingKey: message.fields.routingKey, messageId: describeId(message.properties.messageId) };
    const dropped = deadLetter ? "dead-lettering it" : "discarding it (no dead-letter queue)";
    let outcome: Outcome;
    try {
      const verdict = await handler!(message);
      if (verdict !== "ack" && verdict !== "reject" && verdict !== "retry") throw new TypeError(`the handler returned ${String(verdict)}`);
      outcome = verdict;
      if (outcome === "reject") logger.warn(`${name}: the handler rejected a message; ${dropped}`, fields);
    } catch (err) {
      outcome = message.fields.redelivered ? "reject" : "requeue";
      const what = outcome === "requeue" ? "requeueing it once" : `it was redelivered already; ${dropped}`;
      logger.warn(`${name}: the handler failed; ${what}`, { ...fields, err: describe(err) });
    }
    if (outcome === "retry") {
      logger.warn(`${name}: the handler hit a transient failure; retrying in ${retryDelayMs} ms`, fields);
      await waitOrClose(retryDelayMs);
    }
    try {
      if (outcome === "ack") channel.ack(message);
      else channel.nack(message, false, outcome !== "reject");
    } catch {
      // The channel closed meanwhile; the broker requeues the message itself (marked redelivered).
    }
  }

  function waitOrClose(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      closed.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    closed.abort();
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(deadline - Date.now(), 0);
    const session = link.session;
    const consumerTag = session && consumerTags.get(session.channel);
    // Deliveries sent before the cancel-ok still arrive and are handled; none come after it.
    if (session && consumerTag) await settleWithin(session.channel.cancel(consumerTag), left());
    while (inFlight.size > 0 && left() > 0) await settleWithin(Promise.allSettled([...inFlight]), left());
    await link.close(Math.max(left(), 500));
  }

  return {
    async start(h) {
      if (handler) throw new Error(`${name} is already started`);
      if (closing) throw new Error(`${name} is closed`);
      handler = h;
      link.start();
      await link.waitUntilUp();
    },
    close(timeoutMs = defaultCloseMs) {
      closing ??= shutdown(timeoutMs);
      return closing;
    },
    get connected() {
      return link.session !== undefined;
    },
  };
}

async function declareTopology(channel: Channel, options: ConsumerOptions): Promise<void> {
  const { deadLetter } = options;
  if (deadLetter) {
    await channel.assertExchange(deadLetter.exchange, "direct", { durable: true });
    await channel.assertQueue(deadLetter.queue, { durable: true });
    await channel.bindQueue(deadLetter.queue, deadLetter.exchange, deadLetter.queue);
  }
  await channel.assertQueue(options.queue, {
    durable: true,
    ...(deadLetter ? { deadLetterExchange: deadLetter.exchange, deadLetterRoutingKey: deadLetter.queue } : {}),
  });
  for (const binding of options.bindings) {
    await channel.assertExchange(binding.exchange, binding.exchangeType, { durable: true });
    await channel.bindQueue(options.queue, binding.exchange, binding.routingKey);
  }
}

function describeId(messageId: unknown): string | undefined {
  return typeof messageId === "string" ? messageId.slice(0, 100) : undefined;
}
