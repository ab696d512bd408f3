// Relays the outbox to RabbitMQ: one leader at a time (a PostgreSQL advisory lock held on a
// dedicated connection), rows published in id order (so per user too), each row marked sent only
// after the broker confirmed it. Woken by NOTIFY from appendOutbox, with a polling fallback.
import type pg from "pg";
import type { CloudEvent } from "../../internal/events/cloudevents.js";
import type { EventPublisher } from "../../internal/events/amqp-publisher.js";
import { outboxChannel } from "./outbox.js";
import { createWakeableSleep } from "../../internal/lifecycle/timing.js";

export interface OutboxRelayLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface OutboxRelayOptions {
  readonly pool: pg.Pool;
  readonly publisher: Pick<EventPublisher, "publish">;
  readonly exchange: string;
  /** CloudEvents source of every event, e.g. "//usermesh/user". */
  readonly source: string;
  readonly logger: OutboxRelayLogger;
  readonly batchSize?: number;
  /** Fallback wake-up when no NOTIFY arrives, and the leadership retry period. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  readonly retryDelayMs?: { readonly min: number; readonly max: number };
  /** Published rows older than this are deleted. Default 7 days. */
  readonly retentionMs?: number;
  readonly counters?: { readonly published: { inc(): void }; readonly failures: { inc(): void } };
}

export interface OutboxRelay {
  /** Starts competing for leadership and relaying; returns at once. */
  start(): void;
  /** Stops after the row in flight (if any) and releases leadership. Never rejects. */
  stop(): Promise<void>;
  /** True while this instance holds outbox leadership. */
  readonly leading: boolean;
}

/** Advisory lock key for outbox leadership (any constant shared by every instance). */
const leaderLockKey = 0x75736572; // "user"
const pruneEveryMs = 3600_000;

/** The dedicated connection that holds the advisory lock and LISTENs; `end` gives it back exactly once. */
interface Leadership {
  readonly client: pg.PoolClient;
  end(error?: Error): void;
}

interface OutboxRow {
  id: string;
  event_id: string;
  aggregate_id: string;
  routing_key: string;
  event_type: string;
  payload: Buffer;
  occurred_at: Date;
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const retry = options.retryDelayMs ?? { min: 200, max: 10_000 };
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;
  const { logger } = options;
  let stopped = false;
  let running: Promise<void> | undefined;
  // Set by a NOTIFY (or a lost leadership) at any time, cleared when a pass starts: one that arrives
  // while a pass runs, when nobody sleeps to be woken, must still cut the next poll wait short.
  let woken = false;
  let leader: Leadership | undefined;

  // Cut short by stop() (and, in the relay, by NOTIFY or lost leadership).
  const sleeper = createWakeableSleep();
  const sleep = (ms: number) => sleeper.sleep(ms);

  function toCloudEvent(row: OutboxRow): CloudEvent {
    return {
      id: row.event_id,
      source: options.source,
      type: row.event_type,
      time: row.occurred_at,
      subject: row.aggregate_id,
      dataContentType: "application/protobuf",
      data: row.payload,
    };
  }

  /**
   * Publishes pending rows in id order; stops at the first failure so no later row overtakes it, and
   * once leadership is lost, so a relay that took over is not publishing the same rows alongside it.
   */
  async function relayPending(): Promise<number> {
    let published = 0;
    for (;;) {
      const { rows } = await options.pool.query<OutboxRow>(
        `SELECT id, event_id, aggregate_id, routing_key, event_type, payload, occurred_at
           FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1`,
        [batchSize],
      );
      for (const row of rows) {
        if (stopped || !leader) return published;
        await options.publisher.publish(options.exchange, row.routing_key, toCloudEvent(row));
        await options.pool.query("UPDATE outbox SET published_at = now() WHERE id = $1", [row.id]);
        options.counters?.published.inc();
        published++;
      }
      if (rows.length < batchSize) return published;
    }
  }

  // While backing off after a failure, NOTIFYs only mark work as pending: waking on each one would
  // turn a broker outage into a publish attempt per registration.
  let backingOff = false;

  function wakeUp(): void {
    woken = true;
    if (!backingOff) sleeper.wake();
  }

  /** Takes the advisory lock on a dedicated connection and LISTENs there, or gives the connection back. */
  async function tryToLead(): Promise<void> {
    const client = await options.pool.connect();
    let ended = false;
    const onNotification = () => wakeUp();
    // A checked-out client's 'error' is ours to hear (unheard, it would crash the process). PostgreSQL
    // drops the lock with a broken session, so leadership ends with it; the broken connection goes back
    // to the pool to be discarded (kept, it would hold a pool slot and stall pool.end() forever), and
    // the loop is woken to compete again at once.
    const onError = (error: Error) => {
      if (leader?.client === client) {
        leader = undefined;
        logger.warn("outbox relay lost its leader connection", { err: error });
        wakeUp();
      }
      end(error);
    };
    function end(error?: Error): void {
      if (ended) return;
      ended = true;
      client.off("notification", onNotification);
      client.off("error", onError);
      client.release(error);
    }
    client.on("error", onError);
    try {
      const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [leaderLockKey]);
      if (!rows[0]?.locked) {
        end();
        return;
      }
      client.on("notification", onNotification);
      await client.query(`LISTEN ${outboxChannel}`);
    } catch (error) {
      end(error as Error);
      throw error;
    }
    leader = { client, end };
    logger.info("outbox relay leading");
  }

  async function resign(): Promise<void> {
    const current = leader;
    leader = undefined;
    if (!current) return;
    try {
      await current.client.query(`UNLISTEN ${outboxChannel}`);
      await current.client.query("SELECT pg_advisory_unlock($1)", [leaderLockKey]);
      current.end();
    } catch (error) {
      current.end(error as Error);
    }
  }

  async function loop(): Promise<void> {
    let failures = 0;
    let lastPrune = 0;
    while (!stopped) {
      try {
        woken = false;
        if (!leader) await tryToLead();
        if (leader) {
          const published = await relayPending();
          if (published > 0) logger.info("outbox relayed", { published });
          if (Date.now() - lastPrune > pruneEveryMs) {
            await options.pool.query("DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)", [retentionMs / 1000]);
            lastPrune = Date.now();
          }
        }
        failures = 0;
        if (!stopped && !woken) await sleep(pollIntervalMs);
      } catch (error) {
        failures++;
        options.counters?.failures.inc();
        const delay = Math.min(retry.max, retry.min * 2 ** (failures - 1));
        if (failures === 1 || failures % 10 === 0) logger.warn("outbox relay failed; retrying", { err: error, failures, retryInMs: delay });
        backingOff = true;
        if (!stopped) await sleep(delay);
        backingOff = false;
      }
    }
    await resign();
  }

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopped = true;
      sleeper.wake();
      await running;
    },
    get leading() {
      return leader !== undefined;
    },
  };
}
