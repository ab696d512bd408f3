// Relays the outbox to RabbitMQ: one leader at a time (a PostgreSQL advisory lock held on a
// dedicated connection), rows published in id order (so per user too), each row marked sent only
// after the broker confirmed it. Woken by NOTIFY from appendOutbox, with a polling fallback.
import type pg from "pg";
import type { CloudEvent } from "../../internal/events/cloudevents.js";
import type { EventPublisher } from "../../internal/events/amqp-publisher.js";
import { outboxChannel } from "./outbox.js";

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
  let wake: (() => void) | undefined;
  let leader: pg.PoolClient | undefined;

  /** Sleeps until ms pass or wake() is called (NOTIFY, stop). */
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

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

  /** Publishes pending rows in id order; stops at the first failure so no later row overtakes it. */
  async function relayPending(): Promise<number> {
    let published = 0;
    for (;;) {
      const { rows } = await options.pool.query<OutboxRow>(
        `SELECT id, event_id, aggregate_id, routing_key, event_type, payload, occurred_at
           FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1`,
        [batchSize],
      );
      for (const row of rows) {
        if (stopped) return published;
        await options.publisher.publish(options.exchange, row.routing_key, toCloudEvent(row));
        await options.pool.query("UPDATE outbox SET published_at = now() WHERE id = $1", [row.id]);
        options.counters?.published.inc();
        published++;
      }
      if (rows.length < batchSize) return published;
    }
  }

  async function becomeLeader(): Promise<pg.PoolClient | undefined> {
    const client = await options.pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [leaderLockKey]);
      if (!rows[0]?.locked) {
        client.release();
        return undefined;
      }
      await client.query(`LISTEN ${outboxChannel}`);
      client.on("notification", () => wake?.());
      // PostgreSQL drops the lock with a broken session, so leadership ends with it.
      client.on("error", () => {
        if (leader === client) leader = undefined;
      });
      logger.info("outbox relay leading");
      return client;
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
  }

  async function resign(): Promise<void> {
    const client = leader;
    leader = undefined;
    if (!client) return;
    try {
      await client.query(`UNLISTEN ${outboxChannel}`);
      await client.query("SELECT pg_advisory_unlock($1)", [leaderLockKey]);
      client.release();
    } catch (error) {
      client.release(error as Error);
    }
  }

  async function loop(): Promise<void> {
    let failures = 0;
    let lastPrune = 0;
    while (!stopped) {
      try {
        leader ??= await becomeLeader();
        if (leader) {
          const published = await relayPending();
          if (published > 0) logger.info("outbox relayed", { published });
          if (Date.now() - lastPrune > pruneEveryMs) {
            await options.pool.query("DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)", [retentionMs / 1000]);
            lastPrune = Date.now();
          }
        }
        failures = 0;
        if (!stopped) await sleep(pollIntervalMs);
      } catch (error) {
        failures++;
        options.counters?.failures.inc();
        const delay = Math.min(retry.max, retry.min * 2 ** (failures - 1));
        if (failures === 1 || failures % 10 === 0) logger.warn("outbox relay failed; retrying", { err: error, failures, retryInMs: delay });
        if (!stopped) await sleep(delay);
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
      wake?.();
      await running;
    },
    get leading() {
      return leader !== undefined;
    },
  };
}
