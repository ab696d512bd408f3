// The outbox relay against a real PostgreSQL (a fresh database with the user migrations) and a real
// RabbitMQ (a topic exchange and a queue unique to each test): no event lost, none published twice,
// order kept, rows marked only once the broker confirmed, one leader among several relays.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ConsumeMessage } from "amqplib";
import { UserDeletedSchema, UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { settleWithin } from "../../../internal/lifecycle/timing.js";
import { createAmqpPublisher, type EventPublisher } from "../../../internal/events/amqp-publisher.js";
import { fromAmqpMessage } from "../../../internal/events/cloudevents.js";
import {
  brokerUrl,
  fastRetry,
  openBrokerAdmin,
  recordingLogger,
  sleep,
  uniqueName,
  waitFor,
  type BrokerAdmin,
} from "../../../internal/events/test-fixtures/broker.js";
import { runMigrations } from "../../../internal/stores/migrations.js";
import { createPgPool, withTransaction } from "../../../internal/stores/postgres.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/pg.js";
import { startTcpProxy } from "../../../test/support/tcp-proxy.js";
import { appendOutbox, userDeletedEvent, userRegisteredEvent, type OutboxEvent } from "../outbox.js";
import { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from "../outbox-relay.js";

const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));
const source = "//usermesh/user";
const brokerPort = Number(new URL(brokerUrl).port || 5672);
const quiet = { warn: () => {}, error: () => {} };

interface OutboxRow {
  id: string;
  event_id: string;
  aggregate_id: string;
  routing_key: string;
  event_type: string;
  occurred_at: Date;
  created_at: Date;
  published_at: Date | null;
}

/** The same broker URL with its port replaced, e.g. to go through a TCP proxy. */
function brokerUrlOnPort(port: number): string {
  const url = new URL(brokerUrl);
  url.port = String(port);
  return url.toString();
}

/** How many times each value occurs. */
function countOf(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

describe("outbox relay (real PostgreSQL and RabbitMQ)", function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let admin: BrokerAdmin;
  // What the running test started (relays, publishers, pools, proxies), undone newest first.
  let cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    db = await createTestDatabase("outbox_relay");
    await runMigrations(db.pool, { dir: migrationsDir });
    admin = await openBrokerAdmin();
  });
  after(async () => {
    await admin?.cleanup();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.pool.query("TRUNCATE outbox");
  });
  afterEach(async () => {
    const undo = cleanups.reverse();
    cleanups = [];
    // Bounded, so one hung cleanup (a pool that never ends) reports through its test, not as a hang.
    for (const cleanup of undo) await settleWithin(cleanup(), 5000);
  });

  /** A durable topic exchange and a queue bound to user.* on it, consumed from the start into `received`. */
  async function bindQueue(): Promise<{ exchange: string; received: ConsumeMessage[] }> {
    const exchange = uniqueName("user-events");
    const queue = uniqueName("user-events-queue");
    admin.track({ queues: [queue], exchanges: [exchange] });
    await admin.channel.assertExchange(exchange, "topic", { durable: true });
    await admin.channel.assertQueue(queue, { durable: false });
    await admin.channel.bindQueue(queue, exchange, "user.*");
    const received: ConsumeMessage[] = [];
    await admin.channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return { exchange, received };
  }

  function startPublisher(exchange: string, url = brokerUrl): EventPublisher {
    const publisher = createAmqpPublisher({
      url,
      exchanges: [{ name: exchange, type: "topic" }],
      logger: recordingLogger(),
      reconnectDelayMs: fastRetry,
    });
    cleanups.push(() => publisher.close());
    return publisher;
  }

  function startRelay(options: Pick<OutboxRelayOptions, "publisher" | "exchange"> & Partial<OutboxRelayOptions>): OutboxRelay {
    const relay = createOutboxRelay({
      pool: db.pool,
      source,
      logger: recordingLogger(),
      pollIntervalMs: 200,
      retryDelayMs: { min: 20, max: 200 },
      ...options,
    });
    cleanups.push(() => relay.stop());
    relay.start();
    return relay;
  }

  /** Commits one transaction per event, as the user store does. */
  async function append(events: OutboxEvent[]): Promise<void> {
    for (const event of events) await withTransaction(db.pool, (client) => appendOutbox(client, event));
  }

  async function outboxRows(): Promise<OutboxRow[]> {
    const { rows } = await db.pool.query<OutboxRow>(
      "SELECT id, event_id, aggregate_id, routing_key, event_type, occurred_at, created_at, published_at FROM outbox ORDER BY id",
    );
    return rows;
  }

  async function unpublishedCount(): Promise<number> {
    const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL");
    return Number(rows[0].n);
  }

  /** Waits until `count` messages arrived and no row is left unpublished. */
  async function waitForAll(received: ConsumeMessage[], count: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => received.length >= count && (await unpublishedCount()) === 0, `${count} messages and every row marked`, timeoutMs);
  }

  /** Event ids of the received messages, in arrival order. */
  const eventIds = (received: ConsumeMessage[]) => received.map((message) => fromAmqpMessage(message).id);

  /** Several events per user, interleaved across users, with distinct times. */
  function registrations(users: string[], perUser: number): OutboxEvent[] {
    const start = Date.now();
    return Array.from({ length: perUser }, (_, round) =>
      users.map((user, i) => userRegisteredEvent(user, new Date(start + round * users.length + i))),
    ).flat();
  }

  it("publishes every pending row once, in id order, as a CloudEvent whose payload decodes with the generated type, marking it only after the broker confirmed", async () => {
    const { exchange, received } = await bindQueue();
    const users = [randomUUID(), randomUUID(), randomUUID()];
    const at = new Date("2030-02-03T04:05:06.789Z");
    await append([
      ...users.map((user) => userRegisteredEvent(user, at)),
      ...users.map((user) => userDeletedEvent(user, new Date(at.getTime() + 1000))),
    ]);
    const rows = await outboxRows();
    expect(rows).to.have.length(6);

    const publisher = startPublisher(exchange);
    // Reads the row at the moment the broker's confirm resolved publish(): it must still be unmarked.
    const markedAtConfirm: (Date | null)[] = [];
    const observed: Pick<EventPublisher, "publish"> = {
      async publish(target, routingKey, event) {
        await publisher.publish(target, routingKey, event);
        const { rows: [row] } = await db.pool.query<{ published_at: Date | null }>("SELECT published_at FROM outbox WHERE event_id = $1", [event.id]);
        markedAtConfirm.push(row.published_at);
      },
    };
    startRelay({ publisher: observed, exchange });
    await waitForAll(received, rows.length);
    await sleep(300);

    expect(received).to.have.length(rows.length);
    expect(markedAtConfirm).to.deep.equal(rows.map(() => null));
    expect(eventIds(received)).to.deep.equal(rows.map((row) => row.event_id));
    const marked = await outboxRows();
    for (const row of marked) {
      expect(row.published_at, `published_at of row ${row.id}`).to.be.instanceOf(Date);
      expect(row.published_at!.getTime()).to.be.at.least(row.created_at.getTime());
    }

    received.forEach((message, i) => {
      const row = rows[i];
      expect(message.fields.routingKey).to.equal(row.routing_key);
      expect(message.properties.headers).to.include({
        cloudEvents_specversion: "1.0",
        cloudEvents_id: row.event_id,
        cloudEvents_source: source,
        cloudEvents_type: row.event_type,
        cloudEvents_subject: row.aggregate_id,
        cloudEvents_time: row.occurred_at.toISOString(),
      });
      expect(message.properties.contentType).to.equal("application/protobuf");
      expect(message.properties.deliveryMode, "persistent").to.equal(2);

      const event = fromAmqpMessage(message);
      expect(event).to.include({ id: row.event_id, source, type: row.event_type, subject: row.aggregate_id, dataContentType: "application/protobuf" });
      expect(event.time.toISOString()).to.equal(row.occurred_at.toISOString());
      if (row.routing_key === "user.registration") {
        expect(row.event_type).to.equal("usermesh.user.v1.registered");
        const payload = fromBinary(UserRegisteredSchema, event.data);
        expect(payload.userId).to.equal(row.aggregate_id);
        expect(timestampDate(payload.registeredAt!).toISOString()).to.equal(at.toISOString());
      } else {
        expect(row).to.include({ routing_key: "user.delete", event_type: "usermesh.user.v1.deleted" });
        const payload = fromBinary(UserDeletedSchema, event.data);
        expect(payload.userId).to.equal(row.aggregate_id);
        expect(timestampDate(payload.deletedAt!).getTime()).to.equal(at.getTime() + 1000);
      }
    });
  });

  it("keeps every row while the broker is unreachable and, once it is back, delivers each exactly once and in order per user", async () => {
    const { exchange, received } = await bindQueue();
    const proxy = await startTcpProxy(brokerPort, { startCut: true });
    cleanups.push(() => proxy.close());
    const publisher = startPublisher(exchange, brokerUrlOnPort(proxy.port));
    const relay = startRelay({ publisher, exchange });
    const users = Array.from({ length: 5 }, () => randomUUID());
    await append(registrations(users, 6));

    await waitFor(() => relay.leading, "the relay to lead");
    await sleep(1000); // many failed passes at a 20..200 ms backoff
    expect(publisher.connected).to.equal(false);
    expect(received).to.have.length(0);
    expect(await unpublishedCount()).to.equal(30);

    proxy.restore();
    await waitForAll(received, 30, 20_000);
    await sleep(500);

    const rows = await outboxRows();
    const ids = eventIds(received);
    expect(ids).to.have.length(30);
    expect([...countOf(ids).values()].every((n) => n === 1), "every event id once").to.equal(true);
    expect(new Set(ids)).to.deep.equal(new Set(rows.map((row) => row.event_id)));
    for (const user of users) {
      const arrived = received.map((message) => fromAmqpMessage(message)).filter((event) => event.subject === user).map((event) => event.id);
      expect(arrived, `order of user ${user}`).to.deep.equal(rows.filter((row) => row.aggregate_id === user).map((row) => row.event_id));
    }
  });

  it("lets one of two relays on the same database lead and publish 50 rows exactly once; the other takes over when it stops", async () => {
    const { exchange, received } = await bindQueue();
    const otherPool = createPgPool(db.url, { max: 5, applicationName: "test-outbox-relay-b", logger: quiet });
    cleanups.push(() => otherPool.end());
    const published = [0, 0];
    const counters = (i: number) => ({ published: { inc: () => published[i]++ }, failures: { inc: () => {} } });
    const relays = [
      startRelay({ publisher: startPublisher(exchange), exchange, counters: counters(0) }),
      startRelay({ pool: otherPool, publisher: startPublisher(exchange), exchange, counters: counters(1) }),
    ];
    const users = Array.from({ length: 10 }, () => randomUUID());
    await append(registrations(users, 5));
    await waitForAll(received, 50);
    await sleep(500);

    expect(received).to.have.length(50);
    expect(new Set(eventIds(received)).size).to.equal(50);
    expect(relays.map((relay) => relay.leading).filter(Boolean), "leaders").to.have.length(1);
    const leaderIndex = relays[0].leading ? 0 : 1;
    const standbyIndex = 1 - leaderIndex;
    expect(published[leaderIndex]).to.equal(50);
    expect(published[standbyIndex]).to.equal(0);

    await relays[leaderIndex].stop();
    expect(relays[leaderIndex].leading).to.equal(false);
    await waitFor(() => relays[standbyIndex].leading, "the standby to take over");
    await append(registrations(users, 1));
    await waitForAll(received, 60);
    await sleep(500);

    const ids = eventIds(received);
    expect(ids).to.have.length(60);
    expect(new Set(ids)).to.deep.equal(new Set((await outboxRows()).map((row) => row.event_id)));
    expect(published[standbyIndex]).to.equal(10);
  });

  it("never publishes a row whose transaction rolled back, and wakes on NOTIFY for a committed one long before the poll interval", async () => {
    const { exchange, received } = await bindQueue();
    const publisher = startPublisher(exchange);
    await publisher.waitUntilConnected(5000);
    const relay = startRelay({ publisher, exchange, pollIntervalMs: 10_000 });
    await waitFor(() => relay.leading, "the relay to lead");
    await sleep(300); // its first pass found nothing: it now sleeps for the poll interval

    const rolledBack = randomUUID();
    const abort = new Error("rolled back on purpose");
    const outcome = await withTransaction(db.pool, async (client) => {
      await appendOutbox(client, userRegisteredEvent(rolledBack, new Date()));
      throw abort;
    }).catch((error: unknown) => error);
    expect(outcome).to.equal(abort);

    const committed = randomUUID();
    const started = Date.now();
    await append([userRegisteredEvent(committed, new Date())]);
    await waitFor(() => received.length >= 1, "the committed row", 2000);
    expect(Date.now() - started).to.be.below(2000);
    await sleep(500);

    expect(received.map((message) => fromAmqpMessage(message).subject)).to.deep.equal([committed]);
    expect((await outboxRows()).map((row) => row.aggregate_id)).to.deep.equal([committed]);
  });

  it("wakes for a row committed while it was publishing another, instead of waiting for the poll interval", async () => {
    const { exchange, received } = await bindQueue();
    const publisher = startPublisher(exchange);
    await publisher.waitUntilConnected(5000);
    await append([userRegisteredEvent(randomUUID(), new Date())]);
    const late = randomUUID();
    let first = true;
    const observed: Pick<EventPublisher, "publish"> = {
      async publish(target, routingKey, event) {
        await publisher.publish(target, routingKey, event);
        if (!first) return;
        first = false;
        // Committed mid-pass, after the pass read its rows: only the NOTIFY can bring it in soon.
        await append([userRegisteredEvent(late, new Date())]);
        await sleep(200);
      },
    };
    startRelay({ publisher: observed, exchange, pollIntervalMs: 10_000 });
    await waitFor(() => received.length >= 1, "the first row");
    await waitFor(() => received.length >= 2, "the row committed mid-pass", 2000);
    expect(fromAmqpMessage(received[1]).subject).to.equal(late);
  });

  it("leads again on a fresh connection when its leader connection is killed, and leaves no connection checked out", async () => {
    const { exchange, received } = await bindQueue();
    const pool = createPgPool(db.url, { max: 3, applicationName: "test-outbox-relay-killed", logger: quiet });
    cleanups.push(() => pool.end());
    const publisher = startPublisher(exchange);
    await publisher.waitUntilConnected(5000);
    const relay = startRelay({ pool, publisher, exchange, pollIntervalMs: 10_000 });

    const leaderPid = async (): Promise<number | undefined> => {
      const { rows } = await db.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      return rows[0]?.pid;
    };
    await waitFor(() => relay.leading, "the relay to lead");
    const killed = await leaderPid();
    expect(killed).to.be.a("number");
    await db.pool.query("SELECT pg_terminate_backend($1)", [killed]);

    await waitFor(async () => relay.leading && ![undefined, killed].includes(await leaderPid()), "leadership on a new connection", 5000);
    await append([userRegisteredEvent(randomUUID(), new Date())]);
    await waitFor(() => received.length >= 1, "the row, woken by NOTIFY on the new connection", 2000);

    await relay.stop();
    expect(relay.leading).to.equal(false);
    expect(await leaderPid()).to.equal(undefined);
    expect(pool.totalCount - pool.idleCount, "connections still checked out").to.equal(0);
  });
});
