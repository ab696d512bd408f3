// A winston transport that ships every log line to the RabbitMQ "logs" exchange for the Logs service,
// in the background: it never blocks or fails a request, buffers while the broker is away, and counts
// what it had to drop.
import { connect as amqpConnect } from "amqplib";
import type { ChannelModel, ConfirmChannel, SocketOptions } from "amqplib";
import { Counter } from "prom-client";
import type { Registry } from "prom-client";
import winston from "winston";
import { createLineBuffer } from "./line-buffer.js";
import type { BufferedLine, LineBuffer, SendTicket } from "./line-buffer.js";
import { reconnectDelay, settleWithin } from "../lifecycle/timing.js";

export interface AmqpLogTransportOptions {
  /** amqp:// or amqps:// URL of the broker. A wrong one is retried forever, like an absent broker. */
  url: string;
  /** Topic exchange, asserted durable on every connect; default "logs". */
  exchange?: string;
  /** First part of the routing key `<service>.<level>`, and the messages' appId. */
  service: string;
  /** Lines held while unconfirmed or undeliverable; default 10000. The oldest goes first when full. */
  maxBuffered?: number;
  /** Where logs_published_total and logs_dropped_total are registered (or reused, if already there). */
  registry: Registry;
  /** Reconnect backoff bounds; default 500..30000 ms, doubled per failed attempt, with jitter. */
  reconnectDelayMs?: { min: number; max: number };
  /** Where the one-line connection notices go; default process.stderr. Never the logger itself. */
  notices?: NodeJS.WritableStream;
  /**
   * Opens a connection; default amqplib's connect. A seam for tests that need to reach the live
   * connection (e.g. to cut it); it must return a real connection to a real broker.
   */
  connect?: (url: string, socketOptions: SocketOptions) => Promise<ChannelModel>;
}

export interface AmqpLogTransport extends winston.transport {
  // winston calls close() on unpipe and ignores the result; this promise never rejects, so nothing is lost.
  /**
   * Stops reconnecting, waits up to timeoutMs (default 2000) for the broker to confirm every
   * buffered line, then closes the channel and connection. Lines still unconfirmed are counted as
   * dropped (reason "closed"), though some of them may have reached the broker. Never rejects;
   * calling it again returns the same promise.
   */
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- a superset of winston's void close()
  close(timeoutMs?: number): Promise<void>;
  /** True while a channel to the broker is open and the exchange asserted. */
  readonly connected: boolean;
}

const defaultExchange = "logs";
const defaultMaxBuffered = 10_000;
const defaultDelays = { min: 500, max: 30_000 };
const defaultCloseMs = 2000;
// Bounds a connect to a host that never answers; the next attempt follows the usual backoff.
const connectTimeoutMs = 10_000;
// A line this large is a bug at the call site; refusing it keeps one line from wedging the channel.
const maxLineBytes = 1024 * 1024;
// Bounds closing the channel and connection when the flush used up the whole budget.
const minTeardownMs = 500;

// winston re-exports winston-transport as `Transport` at runtime, but its typings only describe the
// instance (as `transport`), so the constructor is typed here rather than importing an undeclared package.
const TransportStream = (winston as unknown as { Transport: new () => winston.transport }).Transport;

/**
 * A transport publishing each line (the JSON the logger formatted) to a durable topic exchange with
 * routing key `<service>.<level>`, persistent, contentType application/json, appId = service, over a
 * confirm channel: a line leaves the buffer only once the broker confirmed it (at-least-once; a nack
 * or a lost channel sends it again).
 *
 * log() only buffers; publishing runs in the background, respects channel backpressure, and starts
 * when the first connection is up. Failures never throw or reach the logger: the connection is retried
 * with capped exponential backoff and jitter, and one short notice per state change goes to stderr.
 * When the buffer is full the oldest line is dropped and counted in logs_dropped_total{reason=
 * "buffer_full"}; oversized lines (over 1 MiB) count as reason "too_large", lines lost to close() as
 * "closed". The broker discards lines while no queue is bound to the exchange, so the Logs service's
 * durable queue must exist for lines to be kept. Throws a RangeError at creation when maxBuffered is
 * not a positive integer or reconnectDelayMs is not 1 <= min <= max.
 */
export function createAmqpLogTransport(options: AmqpLogTransportOptions): AmqpLogTransport {
  return new AmqpLogTransportImpl(options);
}

interface Session {
  readonly model: ChannelModel;
  readonly channel: ConfirmChannel;
}

class AmqpLogTransportImpl extends TransportStream implements AmqpLogTransport {
  private readonly url: string;
  private readonly exchange: string;
  private readonly service: string;
  private readonly delays: { min: number; max: number };
  private readonly notices: NodeJS.WritableStream;
  private readonly openConnection: (url: string, socketOptions: SocketOptions) => Promise<ChannelModel>;
  private readonly buffer: LineBuffer;
  private readonly maxBuffered: number;
  private readonly published: Counter;
  private readonly dropped: Counter<"reason">;

  private session: Session | undefined;
  private connecting = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private awaitingDrain = false;
  // Set once an outage notice went out, so recovery is announced and repeated failures are not.
  private outage = false;
  // close() called: no more reconnects, new lines are refused.
  private stopping = false;
  // close() finished: a connect that completes now is closed at once.
  private stopped = false;
  private closing: Promise<void> | undefined;
  private readonly settledListeners = new Set<() => void>();

  constructor(options: AmqpLogTransportOptions) {
    super();
    this.url = options.url;
    this.exchange = options.exchange ?? defaultExchange;
    this.service = options.service;
    this.delays = options.reconnectDelayMs ?? defaultDelays;
    if (!(this.delays.min >= 1 && this.delays.max >= this.delays.min)) {
      throw new RangeError(`reconnectDelayMs must satisfy 1 <= min <= max, got ${JSON.stringify(this.delays)}`);
    }
    this.notices = options.notices ?? process.stderr;
    this.openConnection = options.connect ?? ((url, socketOptions) => amqpConnect(url, socketOptions));
    this.maxBuffered = options.maxBuffered ?? defaultMaxBuffered;
    this.buffer = createLineBuffer(this.maxBuffered);
    this.published = counter(options.registry, "logs_published_total", "Log lines the broker confirmed.", []);
    this.dropped = counter(options.registry, "logs_dropped_total", "Log lines given up without reaching the broker.", ["reason"]);
    this.dropped.inc({ reason: "buffer_full" }, 0);
    void this.connectOnce();
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  override log(info: unknown, next: () => void): void {
    try {
      this.accept(info);
    } catch {
      // A transport must not fail the logger; a line that cannot even be read is simply not shipped.
    }
    next();
  }

  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- see AmqpLogTransport.close
  override close(timeoutMs = defaultCloseMs): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs).catch(() => undefined);
    return this.closing;
  }

  private accept(info: unknown): void {
    if (this.stopping) {
      this.dropped.inc({ reason: "closed" });
      return;
    }
    const record = info as { level?: unknown; [key: symbol]: unknown };
    const formatted = record[Symbol.for("message")];
    const body = Buffer.from(typeof formatted === "string" ? formatted : JSON.stringify(info), "utf8");
    if (body.length > maxLineBytes) {
      this.dropped.inc({ reason: "too_large" });
      return;
    }
    const level = typeof record.level === "string" ? record.level : "info";
    const line: BufferedLine = {
      routingKey: `${this.service}.${level}`,
      body,
      timestamp: Math.floor(Date.now() / 1000),
    };
    const evicted = this.buffer.push(line);
    if (evicted > 0) this.dropped.inc({ reason: "buffer_full" }, evicted);
    this.schedulePump(0);
  }

  private schedulePump(delayMs: number): void {
    if (delayMs === 0) {
      if (this.pumpScheduled) return;
      this.pumpScheduled = true;
      // Batches the lines of one tick and keeps publishing out of the caller's stack.
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
      return;
    }
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, delayMs);
    this.pumpTimer.unref();
  }

  private pump(): void {
    const session = this.session;
    if (!session || this.awaitingDrain) return;
    for (let ticket = this.buffer.take(); ticket; ticket = this.buffer.take()) {
      const sent = ticket;
      let ready: boolean;
      try {
        ready = session.channel.publish(
          this.exchange,
          sent.line.routingKey,
          sent.line.body,
          {
            contentType: "application/json",
            contentEncoding: "utf-8",
            persistent: true,
            timestamp: sent.line.timestamp,
            appId: this.service,
          },
          (err: unknown) => this.settle(sent, err),
        );
      } catch (err) {
        // The channel is already unusable (closed under us); the line waits for the next one.
        this.buffer.release(sent);
        this.lose(session, err);
        return;
      }
      if (!ready) {
        this.awaitingDrain = true;
        session.channel.once("drain", () => {
          if (this.session !== session) return;
          this.awaitingDrain = false;
          this.pump();
        });
        return;
      }
    }
  }

  private settle(ticket: SendTicket, err: unknown): void {
    if (err === null || err === undefined) {
      if (this.buffer.confirm(ticket)) this.published.inc();
    } else {
      // A nack, or the channel closed before confirming: send it again, not in a tight loop.
      this.buffer.release(ticket);
      if (this.session) this.schedulePump(this.delays.min);
    }
    this.notifySettled();
  }

  private async connectOnce(): Promise<void> {
    if (this.stopped || this.connecting || this.session) return;
    this.connecting = true;
    let model: ChannelModel | undefined;
    try {
      model = await this.openConnection(this.url, {
        timeout: connectTimeoutMs,
        clientProperties: { connection_name: `${this.service} logs` },
      });
      // Every 'error' is followed by 'close', which is where the loss is handled.
      model.on("error", ignore);
      const channel = await model.createConfirmChannel();
      channel.on("error", ignore);
      await channel.assertExchange(this.exchange, "topic", { durable: true });
      if (this.stopped) {
        await model.close().catch(ignore);
        return;
      }
      const session: Session = { model, channel };
      model.on("close", (cause?: unknown) => this.lose(session, cause));
      channel.on("close", () => this.lose(session, undefined));
      this.session = session;
      this.attempt = 0;
      this.awaitingDrain = false;
      if (this.outage) {
        this.outage = false;
        this.notice(`connected again; sending ${this.buffer.size} buffered line(s)`);
      }
      this.pump();
    } catch (err) {
      if (model) model.close().catch(ignore);
      if (!this.stopping) this.noteOutage("cannot reach the broker", err);
      this.scheduleReconnect();
    } finally {
      this.connecting = false;
      this.notifySettled();
    }
  }

  private lose(session: Session, cause: unknown): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.awaitingDrain = false;
    // Whatever the broker did not confirm is sent again on the next channel: at-least-once.
    this.buffer.releaseAll();
    // The channel may have died alone (a broker-side channel error); start over with both.
    session.model.close().catch(ignore);
    if (!this.stopping) this.noteOutage("lost the broker connection", cause);
    this.scheduleReconnect();
    this.notifySettled();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const delay = reconnectDelay(this.attempt++, this.delays);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connectOnce();
    }, delay);
    // Reconnecting alone must not keep a process alive that has nothing else to do.
    this.reconnectTimer.unref();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    // One last attempt while waiting out a backoff: the broker may be back, and the buffer is worth it.
    if (this.buffer.size > 0 && !this.session) void this.connectOnce();
    await this.flushed(deadline);
    this.stopped = true;
    clearTimeout(this.pumpTimer);
    const lost = this.buffer.clear();
    if (lost > 0) this.dropped.inc({ reason: "closed" }, lost);
    const session = this.session;
    this.session = undefined;
    if (session) {
      const teardownMs = Math.max(deadline - Date.now(), minTeardownMs);
      await settleWithin(
        session.channel.close().catch(ignore).then(() => session.model.close()),
        teardownMs,
      );
    }
  }

  /** Resolves once nothing is buffered, or nothing can be sent any more, or the deadline passes. */
  private flushed(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        const idle = !this.session && !this.connecting;
        if (this.buffer.size > 0 && !idle && Date.now() < deadline) return;
        clearTimeout(timer);
        this.settledListeners.delete(check);
        resolve();
      };
      const timer = setTimeout(check, Math.max(deadline - Date.now(), 0));
      this.settledListeners.add(check);
      check();
    });
  }

  private notifySettled(): void {
    for (const listener of [...this.settledListeners]) listener();
  }

  private noteOutage(what: string, cause: unknown): void {
    if (this.outage) return;
    this.outage = true;
    this.notice(`${what} (${describe(cause)}); buffering up to ${this.maxBuffered} lines, retrying`);
  }

  private notice(text: string): void {
    try {
      this.notices.write(`logs transport [${this.service}]: ${text}\n`);
    } catch {
      // stderr itself failing leaves nowhere to say so.
    }
  }
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  // A different metric already owns the name: count anyway, unregistered, rather than throw.
  return new Counter({ name, help, labelNames, registers: existing ? [] : [registry] });
}

function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message.slice(0, 200);
  return typeof cause === "string" ? cause.slice(0, 200) : "closed";
}

function ignore(): void {}
