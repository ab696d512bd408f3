// Publishes CloudEvents to RabbitMQ over one confirm channel: publish() resolves only once the broker confirmed
// the message, which is what lets the outbox relay mark a row sent.
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { createAmqpLink, describe } from "./amqp-link.js";
import type { EventsLogger, ReconnectDelays } from "./amqp-link.js";
import { toAmqpMessage } from "./cloudevents.js";
import type { CloudEvent } from "./cloudevents.js";

export interface EventPublisher {
  /**
   * Publishes the event (binary CloudEvent, persistent, mandatory: false: an unroutable message is confirmed
   * and dropped by the broker, not an error) and resolves once the broker has confirmed it. Rejects with
   * PublishError when not connected (at once, without waiting for a reconnect), when the broker nacks,
   * when the channel closes before the confirm, when the publisher is closed, or when no confirm came
   * within the publish timeout; with InvalidCloudEventError when the event itself cannot be sent (retrying
   * will not help). A rejection does not prove the broker dropped the message (a confirm may be lost
   * with the connection), so publishing again may duplicate it: consumers deduplicate on the event id.
   * Waits for the channel to drain while the socket is backed up (that wait counts toward the timeout).
   * Publishing to an exchange that does not exist makes the broker close the channel: that publish and any
   * other in flight reject with "channel_closed", and the publisher reconnects; declare exchanges in options.
   */
  publish(exchange: string, routingKey: string, event: CloudEvent): Promise<void>;
  /** Stops reconnecting and closes the connection; pending publishes reject with reason "closed". Never rejects. */
  close(): Promise<void>;
  /** True while a confirm channel is open and the exchanges are asserted. */
  readonly connected: boolean;
  /** Resolves when connected; rejects with PublishError after timeoutMs or once closed. */
  waitUntilConnected(timeoutMs: number): Promise<void>;
}

/** Why a publish failed; lets callers branch (and count) without reading messages. */
export type PublishFailure = "not_connected" | "nacked" | "channel_closed" | "timeout" | "closed" | "unsendable";

/** A publish the broker did not confirm; `cause` keeps amqplib's error when there was one. */
export class PublishError extends Error {
  override readonly name = "PublishError";
  constructor(
    message: string,
    readonly reason: PublishFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AmqpPublisherOptions {
  /** amqp:// or amqps:// URL; a wrong or unreachable one is retried forever (publishes reject meanwhile). */
  url: string;
  /** Asserted durable on every (re)connect; a clash with an existing exchange's type is retried and logged. */
  exchanges: readonly { name: string; type: "topic" | "direct" | "fanout" }[];
  /** Gets one warn per outage (never the URL) and an info when connected again. */
  logger: EventsLogger;
  /** Reconnect backoff bounds; default 500..15000 ms, doubled per failed attempt, jittered. */
  reconnectDelayMs?: ReconnectDelays;
  /** How long publish() waits for the broker's confirm (and for drain); default 5000 ms. */
  publishTimeoutMs?: number;
  /** Opens a connection; default amqplib's connect. A test seam: it must return a REAL connection. */
  connect?: (url: string) => Promise<ChannelModel>;
}

type AmqpMessage = ReturnType<typeof toAmqpMessage>;

interface Pending {
  readonly channel: ConfirmChannel;
  fail(error: PublishError): void;
}

const defaultPublishTimeoutMs = 5000;

/**
 * Creates the publisher and starts connecting in the background (one connection, one confirm channel).
 * Connection failures are logged and retried, never thrown. Throws a RangeError when publishTimeoutMs is
 * not positive or reconnectDelayMs is not 1 <= min <= max.
 */
export function createAmqpPublisher(options: AmqpPublisherOptions): EventPublisher {
  const timeoutMs = options.publishTimeoutMs ?? defaultPublishTimeoutMs;
  if (!(timeoutMs > 0)) throw new RangeError(`publishTimeoutMs must be positive, got ${timeoutMs}`);
  const pending = new Set<Pending>();
  // Channels that emitted 'close': tells a confirm callback's "channel closed" from a broker nack.
  const closedChannels = new WeakSet<ConfirmChannel>();
  // Set while a channel's write buffer is full; resolves on 'drain' (or close).
  const drained = new WeakMap<ConfirmChannel, Promise<void>>();
  let closed = false;

  const link = createAmqpLink<ConfirmChannel>({
    url: options.url,
    name: "event publisher",
    logger: options.logger,
    reconnectDelayMs: options.reconnectDelayMs,
    connect: options.connect,
    openChannel: (model) => model.createConfirmChannel(),
    setup: async (channel) => {
      // Prepended so it runs before amqplib fails the unconfirmed callbacks on the same 'close'.
      channel.prependListener("close", () => closedChannels.add(channel));
      for (const exchange of options.exchanges) {
        await channel.assertExchange(exchange.name, exchange.type, { durable: true });
      }
    },
    onDown: (session) => {
      failPending(
        (p) => p.channel === session.channel,
        () => new PublishError("the connection closed before the broker confirmed the message", "channel_closed"),
      );
    },
  });
  link.start();

  function failPending(which: (p: Pending) => boolean, error: () => PublishError): void {
    for (const p of [...pending]) if (which(p)) p.fail(error());
  }

  function blockUntilDrained(channel: ConfirmChannel): void {
    if (drained.has(channel)) return;
    drained.set(
      channel,
      new Promise<void>((resolve) => {
        const done = () => {
          channel.off("drain", done);
          channel.off("close", done);
          drained.delete(channel);
          resolve();
        };
        channel.on("drain", done);
        channel.on("close", done);
      }),
    );
  }

  function send(channel: ConfirmChannel, exchange: string, routingKey: string, message: AmqpMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const entry: Pending = { channel, fail: (error) => settle(error) };
      const timer = setTimeout(
        () => settle(new PublishError(`the broker did not confirm the message within ${timeoutMs} ms`, "timeout")),
        timeoutMs,
      );
      function settle(error?: PublishError): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        pending.delete(entry);
        if (error) reject(error);
        else resolve();
      }
      pending.add(entry);

      const write = async () => {
        // Re-check after every wait: another publish may have filled the buffer again.
        for (let wait = drained.get(channel); wait; wait = drained.get(channel)) {
          await wait;
          if (settled) return;
        }
        if (closedChannels.has(channel)) {
          settle(new PublishError("the connection closed before the message was sent", "channel_closed"));
          return;
        }
        let ready: boolean;
        try {
          ready = channel.publish(exchange, routingKey, message.content, { ...message.options, mandatory: false }, (err: unknown) => {
            if (err === null || err === undefined) settle();
            else if (closedChannels.has(channel)) {
              settle(new PublishError("the channel closed before the broker confirmed the message", "channel_closed", { cause: err }));
            } else settle(new PublishError("the broker nacked the message", "nacked", { cause: err }));
          });
        } catch (err) {
          // amqplib refuses synchronously: the channel is already closed, or the message cannot be encoded.
          const reason = closedChannels.has(channel) ? "channel_closed" : "unsendable";
          settle(new PublishError(`the message was not sent: ${describe(err)}`, reason, { cause: err }));
          return;
        }
        if (!ready) blockUntilDrained(channel);
      };
      void write();
    });
  }

  return {
    async publish(exchange, routingKey, event) {
      // First, so a bad event is reported as such whatever the connection's state.
      const message = toAmqpMessage(event);
      if (closed) throw new PublishError("the publisher is closed", "closed");
      const session = link.session;
      if (!session) throw new PublishError("not connected to the broker", "not_connected");
      await send(session.channel, exchange, routingKey, message);
    },
    async close() {
      closed = true;
      failPending(
        () => true,
        () => new PublishError("the publisher closed before the broker confirmed the message", "closed"),
      );
      await link.close();
    },
    get connected() {
      return link.session !== undefined;
    },
    async waitUntilConnected(timeoutMs) {
      try {
        await link.waitUntilUp(timeoutMs);
      } catch (err) {
        if (closed) throw new PublishError("the publisher is closed", "closed", { cause: err });
        throw new PublishError(`not connected to the broker within ${timeoutMs} ms`, "not_connected", { cause: err });
      }
    },
  };
}
