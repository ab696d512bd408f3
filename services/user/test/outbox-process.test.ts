// The user process as operators run it, black box: real session and user processes, a fresh database,
// and RabbitMQ reached through a TCP proxy the test cuts, so the broker is "down" for this process only.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { ConsumeMessage } from "amqplib";
import type pg from "pg";
import { UserDeletedSchema, UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { fromAmqpMessage } from "../../../internal/events/cloudevents.js";
import { brokerUrl, openBrokerAdmin, sleep, uniqueName, waitFor, type BrokerAdmin } from "../../../internal/events/test-fixtures/broker.js";
import { createPgPool } from "../../../internal/stores/postgres.js";
import { dropTestDatabase, testDatabaseUrl, uniqueDatabaseName } from "../../../test/support/pg.js";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";
import { startServiceProcess, type ServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";
import { startTcpProxy, type TcpProxy } from "../../../test/support/tcp-proxy.js";

const pkg = loadStockPackage(["usermesh/user/v1/user.proto"]);
const brokerPort = Number(new URL(brokerUrl).port || 5672);
const source = "//usermesh/user";

interface RegisterResponse {
  user: { id: string; email: string };
  session: { sessionId: string; token: string };
}

interface OutboxRow {
  event_id: string;
  aggregate_id: string;
  routing_key: string;
  published_at: Date | null;
}

describe("user process: lifecycle events through the outbox (real processes, PostgreSQL, RabbitMQ)", function () {
  this.timeout(90_000);
  const databaseName = uniqueDatabaseName("user_outbox_process");
  const exchange = uniqueName("usermesh.user");
  const queue = uniqueName("usermesh.user.events");
  const password = "correct horse battery";
  const received: ConsumeMessage[] = [];
  let admin: BrokerAdmin;
  let proxy: TcpProxy;
  let sessionKeys: RedisTestKeys;
  let userKeys: RedisTestKeys;
  let session: ServiceProcess | undefined;
  let user: ServiceProcess | undefined;
  let client: grpc.Client;
  let pool: pg.Pool;

  before(async () => {
    // Bound before anything can be published, so the queue sees every message the process sends.
    admin = await openBrokerAdmin();
    admin.track({ queues: [queue], exchanges: [exchange] });
    await admin.channel.assertExchange(exchange, "topic", { durable: true });
    await admin.channel.assertQueue(queue, { durable: false });
    await admin.channel.bindQueue(queue, exchange, "user.*");
    await admin.channel.consume(queue, (message) => message && received.push(message), { noAck: true });

    proxy = await startTcpProxy(brokerPort, { startCut: true });
    sessionKeys = createRedisTestKeys("user-outbox-session");
    userKeys = createRedisTestKeys("user-outbox-user");
    session = await startServiceProcess("services/session/main.ts", {
      USERMESH_REDIS__KEY_PREFIX: sessionKeys.keyPrefix,
      USERMESH_LOG__TO_BROKER: "false",
    });
    const proxiedBroker = new URL(brokerUrl);
    proxiedBroker.port = String(proxy.port);
    user = await startServiceProcess("services/user/main.ts", {
      USERMESH_POSTGRES__URL: testDatabaseUrl(databaseName),
      USERMESH_AMQP__URL: proxiedBroker.toString(),
      USERMESH_EVENTS__EXCHANGE: exchange,
      USERMESH_HASHING__BCRYPT_COST: "4",
      USERMESH_LOG__TO_BROKER: "false",
      USERMESH_REDIS__KEY_PREFIX: userKeys.keyPrefix,
      USERMESH_SESSION__ADDRESS: `127.0.0.1:${session.grpcPort}`,
    });
    client = stockClient(pkg, "usermesh.user.v1.UserService", `127.0.0.1:${user.grpcPort}`);
    // The process created and migrated the database (ensureDatabase) before it reported serving.
    pool = createPgPool(testDatabaseUrl(databaseName), { max: 2, applicationName: "test-user-outbox-process", logger: { warn: () => {}, error: () => {} } });
  });

  after(async () => {
    client?.close();
    const exitCodes = { user: await user?.stop(), session: await session?.stop() };
    await proxy?.close();
    await pool?.end();
    await dropTestDatabase(databaseName);
    await admin?.cleanup();
    await userKeys?.close();
    await sessionKeys?.close();
    expect(exitCodes).to.deep.equal({ user: 0, session: 0 });
  });

  const register = (email: string) =>
    callUnary<RegisterResponse>(client, "register", { email, password, name: "Outbox Tester", ip: "203.0.113.7", userAgent: "outbox-test" }, { deadlineMs: 15_000 });

  async function outboxRows(): Promise<OutboxRow[]> {
    return (await pool.query<OutboxRow>("SELECT event_id, aggregate_id, routing_key, published_at FROM outbox ORDER BY id")).rows;
  }

  it("with RabbitMQ unreachable, 50 registrations succeed; when it is back, exactly 50 user.registration messages arrive, each once per outbox row, with valid CloudEvents headers and a payload that decodes with the generated type", async () => {
    const run = randomUUID();
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => register(`outbox-${i}-${run}@example.com`)));
    const userIds = responses.map((response) => response.user.id);
    expect(new Set(userIds).size).to.equal(50);
    expect(responses.every((response) => response.session.token.length > 0)).to.equal(true);

    await sleep(1000);
    expect(received, "messages while the broker is unreachable").to.have.length(0);
    const pending = await outboxRows();
    expect(pending).to.have.length(50);
    expect(pending.every((row) => row.published_at === null && row.routing_key === "user.registration")).to.equal(true);
    expect(new Set(pending.map((row) => row.aggregate_id))).to.deep.equal(new Set(userIds));

    proxy.restore();
    await waitFor(() => received.length >= 50, "50 messages once the broker is back", 45_000);
    await sleep(1500);
    expect(received, "no message beyond the 50").to.have.length(50);

    const rows = await outboxRows();
    expect(rows.every((row) => row.published_at instanceof Date), "every row marked published").to.equal(true);
    const events = received.map((message) => {
      expect(message.fields.routingKey).to.equal("user.registration");
      expect(message.properties.deliveryMode, "persistent").to.equal(2);
      expect(message.properties.headers).to.have.property("cloudEvents_specversion", "1.0");
      const event = fromAmqpMessage(message);
      expect(event).to.include({ source, type: "usermesh.user.v1.registered", dataContentType: "application/protobuf" });
      const payload = fromBinary(UserRegisteredSchema, event.data);
      expect(payload.userId).to.equal(event.subject);
      expect(payload.registeredAt, "registered_at").to.not.equal(undefined);
      return event;
    });
    expect(new Set(events.map((event) => event.subject))).to.deep.equal(new Set(userIds));
    const ids = events.map((event) => event.id);
    expect(new Set(ids).size, "distinct event ids").to.equal(50);
    expect(new Set(ids)).to.deep.equal(new Set(rows.map((row) => row.event_id)));
  });

  it("publishes user.delete when an account is deleted with its password and session token", async () => {
    const { user: account, session: issued } = await register(`outbox-delete-${randomUUID()}@example.com`);
    await waitFor(() => received.some((message) => message.fields.routingKey === "user.registration" && fromAmqpMessage(message).subject === account.id), "its user.registration", 20_000);

    await callUnary(client, "deleteAccount", { userId: account.id, password, sessionToken: issued.token }, { deadlineMs: 15_000 });
    const deletions = () => received.filter((message) => message.fields.routingKey === "user.delete");
    await waitFor(() => deletions().length >= 1, "the user.delete message", 20_000);
    await sleep(500);

    expect(deletions()).to.have.length(1);
    const event = fromAmqpMessage(deletions()[0]);
    expect(event).to.include({ source, type: "usermesh.user.v1.deleted", subject: account.id, dataContentType: "application/protobuf" });
    expect(fromBinary(UserDeletedSchema, event.data).userId).to.equal(account.id);
    const row = (await outboxRows()).find((r) => r.event_id === event.id);
    expect(row).to.include({ aggregate_id: account.id, routing_key: "user.delete" });
    expect(row?.published_at).to.be.instanceOf(Date);
  });
});
