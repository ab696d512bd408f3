// The user event handler behind the real consumer: real PostgreSQL (a fresh database with the photo
// migrations), real RabbitMQ (an exchange, queue and dead-letter pair unique to each test), events
// published as the user service's relay does; a fake blob store records the deletes.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConsumeMessage } from "amqplib";
import { UserDeletedSchema, UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { createAmqpConsumer, type Consumer } from "../../../internal/events/amqp-consumer.js";
import { createAmqpPublisher, type EventPublisher } from "../../../internal/events/amqp-publisher.js";
import { toAmqpMessage, type CloudEvent } from "../../../internal/events/cloudevents.js";
import {
  brokerUrl,
  fastRetry,
  openBrokerAdmin,
  recordingLogger,
  uniqueName,
  waitFor,
  type BrokerAdmin,
} from "../../../internal/events/test-fixtures/broker.js";
import { unavailable } from "../../../internal/errors/errors.js";
import { runMigrations } from "../../../internal/stores/migrations.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/pg.js";
import { createPgPhotoStore, type PgPhotoStore } from "../pg-photo-store.js";
import { createPhotos } from "../photos.js";
import { createUserEventHandler, userEventTypes, type DeadLetterReason, type UserEventsDeps } from "../user-events.js";
import {
  createFakeBlobStore,
  createFakePhotoListCache,
  createRecordingLogger,
  spooledPhoto,
  type FakeBlobStore,
  type FakePhotoListCache,
} from "./fakes.js";

const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

function registered(userId: string, id: string = randomUUID()): CloudEvent {
  const at = new Date();
  return {
    id,
    source: "//usermesh/user",
    type: userEventTypes.registered,
    time: at,
    subject: userId,
    dataContentType: "application/protobuf",
    data: toBinary(UserRegisteredSchema, create(UserRegisteredSchema, { userId, registeredAt: timestampFromDate(at) })),
  };
}

function deleted(userId: string, id: string = randomUUID()): CloudEvent {
  const at = new Date();
  return {
    id,
    source: "//usermesh/user",
    type: userEventTypes.deleted,
    time: at,
    subject: userId,
    dataContentType: "application/protobuf",
    data: toBinary(UserDeletedSchema, create(UserDeletedSchema, { userId, deletedAt: timestampFromDate(at) })),
  };
}

/** Counters as prom-client's, recording each increment. */
function recordingCounters() {
  const consumed: string[] = [];
  const deadLettered: DeadLetterReason[] = [];
  return {
    consumed,
    deadLettered,
    counters: {
      consumed: { inc: (labels: { type: string }) => void consumed.push(labels.type) },
      deadLettered: { inc: (labels: { reason: DeadLetterReason }) => void deadLettered.push(labels.reason) },
    },
  };
}

describe("user events (real PostgreSQL and RabbitMQ)", function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let store: PgPhotoStore;
  let admin: BrokerAdmin;
  let cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    db = await createTestDatabase("photo_user_events");
    await runMigrations(db.pool, { dir: migrationsDir });
    store = createPgPhotoStore(db.pool);
    admin = await openBrokerAdmin();
  });
  after(async () => {
    await admin?.cleanup();
    await db?.drop();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
  });

  interface Running {
    readonly exchange: string;
    readonly deadLetterQueue: string;
    readonly publisher: EventPublisher;
    readonly blobs: FakeBlobStore;
    readonly cache: FakePhotoListCache;
    readonly consumed: string[];
    readonly deadLettered: DeadLetterReason[];
    publish(routingKey: string, event: CloudEvent): Promise<void>;
  }

  /** A consumer on a fresh queue bound to a fresh exchange, with the handler over the real store. */
  async function start(): Promise<Running> {
    const exchange = uniqueName("usermesh.user");
    const queue = uniqueName("photo.user-events");
    const deadLetter = { exchange: uniqueName("photo.user-events.dlx"), queue: uniqueName("photo.user-events.dlq") };
    admin.track({ exchanges: [exchange, deadLetter.exchange], queues: [queue, deadLetter.queue] });

    const blobs = createFakeBlobStore();
    const cache = createFakePhotoListCache();
    const { consumed, deadLettered, counters } = recordingCounters();
    const consumer: Consumer = createAmqpConsumer({
      url: brokerUrl,
      queue,
      bindings: [
        { exchange, exchangeType: "topic", routingKey: "user.registration" },
        { exchange, exchangeType: "topic", routingKey: "user.delete" },
      ],
      prefetch: 10,
      deadLetter,
      logger: recordingLogger(),
      reconnectDelayMs: fastRetry,
    });
    cleanups.push(() => consumer.close(2000));
    await consumer.start(
      createUserEventHandler({ users: store, deletions: store, blobs, cache, logger: createRecordingLogger(), counters }),
    );
    const publisher = createAmqpPublisher({
      url: brokerUrl,
      exchanges: [{ name: exchange, type: "topic" }],
      logger: recordingLogger(),
      reconnectDelayMs: fastRetry,
    });
    cleanups.push(() => publisher.close());
    await publisher.waitUntilConnected(5000);
    return {
      exchange,
      deadLetterQueue: deadLetter.queue,
      publisher,
      blobs,
      cache,
      consumed,
      deadLettered,
      publish: (routingKey, event) => publisher.publish(exchange, routingKey, event),
    };
  }

  const userExists = async (userId: string) => (await db.pool.query("SELECT 1 FROM users WHERE id = $1", [userId])).rowCount === 1;
  const photoCount = async (userId: string) =>
    Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM photos WHERE user_id = $1", [userId])).rows[0].n);

  it("registration then delete removes the user's metadata and blobs", async () => {
    const run = await start();
    const userId = randomUUID();
    await run.publish("user.registration", registered(userId));
    await waitFor(() => run.consumed.length === 1, "the registration");
    expect(await userExists(userId)).to.equal(true);

    const photos = createPhotos({
      store,
      users: store,
      deletions: store,
      blobs: run.blobs,
      cache: run.cache,
      pagination: { defaultPageSize: 20, maxPageSize: 100 },
      logger: createRecordingLogger(),
    });
    const added = [
      await photos.addPhoto(userId, "a.png", spooledPhoto()),
      await photos.addPhoto(userId, "b.png", spooledPhoto()),
    ];
    await photos.listPhotos(userId, 0, "");
    expect(run.blobs.blobs.size).to.equal(2);

    await run.publish("user.delete", deleted(userId));
    await waitFor(() => run.consumed.length === 2, "the deletion");
    expect(run.consumed).to.deep.equal([userEventTypes.registered, userEventTypes.deleted]);
    expect(await userExists(userId)).to.equal(false);
    expect(await photoCount(userId)).to.equal(0);
    expect([...run.blobs.deleted].sort()).to.deep.equal(added.map((p) => `${userId}/${p.id}`).sort());
    expect(run.blobs.blobs.size).to.equal(0);
    expect((await db.pool.query("SELECT 1 FROM blob_deletions WHERE storage_key LIKE $1", [`${userId}/%`])).rowCount).to.equal(0);
    expect(run.cache.pages.size).to.equal(0);
  });

  it("takes the same registration, and the same delete, delivered twice without harm", async () => {
    const run = await start();
    const userId = randomUUID();
    const registration = registered(userId);
    await run.publish("user.registration", registration);
    await run.publish("user.registration", registration);
    await waitFor(() => run.consumed.length === 2, "both registrations");
    expect((await db.pool.query("SELECT 1 FROM users WHERE id = $1", [userId])).rowCount).to.equal(1);

    const deletion = deleted(userId);
    await run.publish("user.delete", deletion);
    await run.publish("user.delete", deletion);
    await waitFor(() => run.consumed.length === 4, "both deletions");
    expect(await userExists(userId)).to.equal(false);
    expect((await db.pool.query("SELECT 1 FROM deleted_users WHERE id = $1", [userId])).rowCount).to.equal(1);
    expect(run.deadLettered).to.deep.equal([]);
    expect((await admin.channel.checkQueue(run.deadLetterQueue)).messageCount).to.equal(0);
  });

  it("does not bring a user back when its registration arrives after its deletion", async () => {
    const run = await start();
    const userId = randomUUID();
    await run.publish("user.delete", deleted(userId));
    await waitFor(() => run.consumed.length === 1, "the deletion");
    await run.publish("user.registration", registered(userId));
    await waitFor(() => run.consumed.length === 2, "the late registration");
    expect(await userExists(userId)).to.equal(false);
    expect(await store.admitUser(userId)).to.equal(false);
  });

  it("dead-letters garbage (not a CloudEvent, undecodable payload, unknown type) and keeps handling the next message", async () => {
    const run = await start();
    // Not a CloudEvent at all: no attributes.
    admin.channel.publish(run.exchange, "user.delete", Buffer.from("garbage"), { persistent: true });
    // A CloudEvent whose payload is not a UserDeleted (a truncated varint).
    const undecodable = toAmqpMessage({ ...deleted(randomUUID()), data: new Uint8Array([0x0a, 0xff]) });
    admin.channel.publish(run.exchange, "user.delete", undecodable.content, undecodable.options);
    // Decodes, but the user id is no UUID.
    const noUser = toAmqpMessage({ ...registered(randomUUID()), data: new Uint8Array() });
    admin.channel.publish(run.exchange, "user.registration", noUser.content, noUser.options);
    const unknown = toAmqpMessage({ ...registered(randomUUID()), type: "usermesh.user.v1.renamed" });
    admin.channel.publish(run.exchange, "user.registration", unknown.content, unknown.options);

    const userId = randomUUID();
    await run.publish("user.registration", registered(userId));
    await waitFor(() => run.consumed.length === 1 && run.deadLettered.length === 4, "the good event after the garbage");
    expect(await userExists(userId)).to.equal(true);
    expect([...run.deadLettered].sort()).to.deep.equal([
      "invalid_cloudevent",
      "undecodable_payload",
      "undecodable_payload",
      "unknown_type",
    ]);
    await waitFor(
      async () => (await admin.channel.checkQueue(run.deadLetterQueue)).messageCount === 4,
      "four messages in the dead-letter queue",
    );
    const first = await admin.channel.get(run.deadLetterQueue, { noAck: true });
    expect(first && first.content.length).to.be.greaterThan(0);
  });

  it("answers retry on a store outage instead of dead-lettering, so the consumer holds and requeues the event", async () => {
    const { counters, deadLettered } = recordingCounters();
    const down = () => Promise.reject(unavailable("photo store unavailable"));
    const deps: UserEventsDeps = {
      users: { admitUser: down, deleteUser: down },
      deletions: store,
      blobs: createFakeBlobStore(),
      cache: createFakePhotoListCache(),
      logger: createRecordingLogger(),
      counters,
    };
    const handle = createUserEventHandler(deps);
    for (const event of [registered(randomUUID()), deleted(randomUUID())]) {
      const { content, options } = toAmqpMessage(event);
      const message = {
        content,
        fields: { deliveryTag: 1, redelivered: false, exchange: "x", routingKey: "user.delete", consumerTag: "t" },
        properties: { headers: options.headers as unknown, contentType: options.contentType, messageId: options.messageId },
      } as unknown as ConsumeMessage;
      expect(await handle(message)).to.equal("retry");
    }
    expect(deadLettered).to.deep.equal([]);
  });
});
