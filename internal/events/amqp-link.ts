// Keeps one AMQP connection with one channel open for a publisher or a consumer: runs the caller's setup on
// every (re)connect and, after any loss, starts over with capped, jittered backoff, warning once per outage.
import { connect as amqpConnect } from "amqplib";
import type { Channel, ChannelModel } from "amqplib";
import { reconnectDelay, settleWithin, type ReconnectDelays } from "../lifecycle/timing.js";

/** What the events kit logs through; the process logger satisfies it. */
export interface EventsLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** Bounds of the reconnect backoff, in milliseconds: 1 <= min <= max. */
export type { ReconnectDelays };

/** A live connection and the channel the caller set up on it. */
export interface AmqpSession<C extends Channel> {
  readonly model: ChannelModel;
  readonly channel: C;
}

export interface AmqpLinkOptions<C extends Channel> {
  /** amqp:// or amqps:// URL. Never logged: it may hold a password. */
  url: string;
  /** Names the link in log lines and, by default, as the connection name the broker shows. */
  name: string;
  logger: EventsLogger;
  /** Default 500..15000 ms, doubled per failed attempt, with jitter. */
  reconnectDelayMs?: ReconnectDelays;
  /** Opens a connection; default amqplib's connect. A test seam: it must return a REAL connection. */
  connect?: (url: string) => Promise<ChannelModel>;
  /** Opens the channel on a fresh connection (plain or confirm). */
  openChannel: (model: ChannelModel) => Promise<C>;
  /** Declares topology, starts consuming, …; a throw fails the attempt, which is retried after a backoff. */
  setup: (channel: C) => Promise<void>;
  /** Told, once, when a session that was up is lost (not when close() ends it). */
  onDown?: (session: AmqpSession<C>) => void;
}

export interface AmqpLink<C extends Channel> {
  /** The session while the connection is up and set up; undefined otherwise. */
  readonly session: AmqpSession<C> | undefined;
  /** Starts connecting (idempotent). Failures are retried forever and only logged, never thrown. */
  start(): void;
  /** Resolves with the session once up; rejects after timeoutMs (when given) or once the link is closed. */
  waitUntilUp(timeoutMs?: number): Promise<AmqpSession<C>>;
  /** Gives up a session the caller found unusable (e.g. its consumer was cancelled): closes it, reconnects. */
  drop(session: AmqpSession<C>, cause: unknown): void;
  /** Stops reconnecting and closes the connection, waiting at most timeoutMs. Never rejects; idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

interface LiveSession<C extends Channel> extends AmqpSession<C> {
  lost: boolean;
}

const defaultDelays: ReconnectDelays = { min: 500, max: 15_000 };
// Bounds a connect to a host that never answers; the next attempt follows the usual backoff.
const connectTimeoutMs = 10_000;
const defaultCloseMs = 2000;

/** Creates an idle link; call start(). Throws a RangeError when reconnectDelayMs is not 1 <= min <= max. */
export function createAmqpLink<C extends Channel>(options: AmqpLinkOptions<C>): AmqpLink<C> {
  const { name, logger } = options;
  const delays = options.reconnectDelayMs ?? defaultDelays;
  if (!(delays.min >= 1 && delays.max >= delays.min && Number.isFinite(delays.max))) {
    throw new RangeError(`reconnectDelayMs must satisfy 1 <= min <= max, got ${JSON.stringify(delays)}`);
  }
  const open =
    options.connect ??
    ((url: string) => amqpConnect(url, { timeout: connectTimeoutMs, clientProperties: { connection_name: name } }));

  let session: LiveSession<C> | undefined;
  let attempt: Promise<void> | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let stopped = false;
  let everUp = false;
  // Set when an outage was reported, so recovery is announced and repeated failures are not.
  let outage = false;
  let closing: Promise<void> | undefined;
  const listeners = new Set<() => void>();

  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  function run(): void {
    if (stopped || attempt || session) return;
    attempt = connectOnce().finally(() => {
      attempt = undefined;
      notify();
    });
  }

  async function connectOnce(): Promise<void> {
    let model: ChannelModel | undefined;
    try {
      model = await open(options.url);
      // Every 'error' is followed by 'close', which is where a loss is handled.
      model.on("error", ignore);
      model.on("blocked", (reason: string) => logger.warn(`${name}: the broker blocked the connection`, { reason }));
      model.on("unblocked", () => logger.info(`${name}: the broker unblocked the connection`));
      const channel = await options.openChannel(model);
      channel.on("error", ignore);
      const live: LiveSession<C> = { model, channel, lost: false };
      model.on("close", (cause?: unknown) => lose(live, cause));
      channel.on("close", () => lose(live, undefined));
      // close() came while connecting: do not start consuming on a connection about to be closed.
      if (!stopped) await options.setup(channel);
      if (live.lost) throw new Error("the connection closed during setup");
      if (stopped) {
        live.lost = true;
        await model.close().catch(ignore);
        return;
      }
      session = live;
      failures = 0;
      if (outage || !everUp) logger.info(`${name}: connected${everUp ? " again" : ""}`);
      outage = false;
      everUp = true;
    } catch (err) {
      if (model) model.close().catch(ignore);
      if (!stopped) noteOutage(everUp ? "cannot reconnect to the broker" : "cannot reach the broker", err);
      scheduleReconnect();
    }
  }

  function lose(live: LiveSession<C>, cause: unknown): void {
    if (live.lost) return;
    live.lost = true;
    // Before setup finished: connectOnce sees `lost` and handles it.
    if (session !== live) return;
    session = undefined;
    // The channel may have died alone (a broker-side channel error); start over with both.
    live.model.close().catch(ignore);
    options.onDown?.(live);
    if (!stopped) noteOutage("lost the broker connection", cause);
    scheduleReconnect();
    notify();
  }

  function scheduleReconnect(): void {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      run();
    }, reconnectDelay(failures++, delays));
    // Reconnecting alone must not keep a process alive that has nothing else to do.
    timer.unref();
  }

  function noteOutage(what: string, cause: unknown): void {
    if (outage) return;
    outage = true;
    logger.warn(`${name}: ${what}; retrying`, { err: describe(cause) });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    stopped = true;
    clearTimeout(timer);
    timer = undefined;
    notify();
    const deadline = Date.now() + timeoutMs;
    // An attempt in flight closes its own connection once it sees `stopped`.
    if (attempt) await settleWithin(attempt, timeoutMs);
    const live = session;
    session = undefined;
    if (live) {
      live.lost = true;
      // Channel first: its close goes out behind the acks it still buffers, whereas amqplib may write a
      // connection close ahead of them (each channel has its own write buffer) and the acks would be lost.
      await settleWithin(live.channel.close(), Math.max(deadline - Date.now(), 100));
      await settleWithin(live.model.close(), Math.max(deadline - Date.now(), 100));
    }
  }

  return {
    get session() {
      return session;
    },
    start() {
      if (started || stopped) return;
      started = true;
      run();
    },
    waitUntilUp(timeoutMs) {
      return new Promise<AmqpSession<C>>((resolve, reject) => {
        let deadline: NodeJS.Timeout | undefined;
        const done = () => {
          listeners.delete(check);
          clearTimeout(deadline);
        };
        const check = () => {
          if (session) {
            done();
            resolve(session);
          } else if (stopped) {
            done();
            reject(new Error(`${name} is closed`));
          }
        };
        if (timeoutMs !== undefined) {
          deadline = setTimeout(() => {
            done();
            reject(new Error(`${name} did not connect within ${timeoutMs} ms`));
          }, timeoutMs);
        }
        listeners.add(check);
        check();
      });
    },
    drop(dropped, cause) {
      lose(dropped as LiveSession<C>, cause);
    },
    close(timeoutMs = defaultCloseMs) {
      closing ??= shutdown(timeoutMs).catch(ignore);
      return closing;
    },
  };
}

/** A short, log-safe description of a failure cause. */
export function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message.slice(0, 200);
  return typeof cause === "string" ? cause.slice(0, 200) : "closed";
}

function ignore(): void {}
