import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as amqp from "amqplib";
import pg from "pg";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { toAmqpMessage } from "../../../internal/events/cloudevents.js";
import { callClientStream } from "../../../test/support/client-stream.js";
import { dropTestDatabase, testDatabaseUrl, uniqueDatabaseName } from "../../../test/support/pg.js";
import { startServiceProcess, type ServiceProcess } from "../../../test/support/service-process.js";
import { callUnary, loadStockPackage, stockClient } from "../../../test/support/stock-grpc.js";
import { startUserMesh, type UserMesh } from "../../../test/support/user-mesh.js";
import { png } from "../upload/test/test-images.js";

// User lifecycle events end to end: the real user process publishes, the real photo process consumes.

const pkg = loadStockPackage(["usermesh/photo/v1/photo.proto", "usermesh/user/v1/user.proto"]);
const amqpUrl = "amqp://guest:guest@127.0.0.1:5672";

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("user lifecycle events (real user, session and photo processes)", function () {
  this.timeout(60_000);
  const photoDatabase = uniqueDatabaseName("photo_events");
  const queue = `test.photo.${randomUUID()}`;
  const deadLetterQueue = `test.photo.dlq.${randomUUID()}`;
  const deadLetterExchange = `test.photo.dlx.${randomUUID()}`;
  let storageDir: string;
  let mesh: UserMesh;
  let photo: ServiceProcess;
  let users: grpc.Client;
  let photos: grpc.Client;
  let db: pg.Pool;
  let broker: amqp.ChannelModel;
  let channel: amqp.Channel;

  const knownUser = async (id: string) => (await db.query("SELECT 1 FROM users WHERE id = $1", [id])).rowCount === 1;

  before(async () => {
    storageDir = await mkdtemp(join(tmpdir(), "photo-events-"));
    mesh = await startUserMesh();
    photo = await startServiceProcess("services/photo/main.ts", {
      USERMESH_POSTGRES__URL: testDatabaseUrl(photoDatabase),
      USERMESH_REDIS__KEY_PREFIX: mesh.keyPrefix,
      USERMESH_STORAGE__LOCAL__DIR: storageDir,
      USERMESH_EVENTS__EXCHANGE: mesh.exchange,
      USERMESH_EVENTS__QUEUE: queue,
      USERMESH_EVENTS__DEAD_LETTER_QUEUE: deadLetterQueue,
      USERMESH_EVENTS__DEAD_LETTER_EXCHANGE: deadLetterExchange,
      USERMESH_LOG__TO_BROKER: "false",
    });
    users = stockClient(pkg, "usermesh.user.v1.UserService", `127.0.0.1:${mesh.user.grpcPort}`);
    photos = stockClient(pkg, "usermesh.photo.v1.PhotoService", `127.0.0.1:${photo.grpcPort}`);
    db = new pg.Pool({ connectionString: testDatabaseUrl(photoDatabase) });
    broker = await amqp.connect(amqpUrl);
    channel = await broker.createChannel();
    // The consumer declares its queue in the background: wait for it before publishing by hand. Each
    // check on a probe channel of its own: a check that finds no queue gets the channel closed.
    const queueExists = async () => {
      const probe = await broker.createChannel();
      probe.on("error", () => undefined);
      return probe.checkQueue(queue).then(
        () => probe.close().then(() => true),
        () => false,
      );
    };
    await waitFor(queueExists, "the photo queue");
  });

  after(async () => {
    users?.close();
    photos?.close();
    await db?.end();
    const photoExit = await photo?.stop();
    expect(await mesh?.stop()).to.deep.equal([0, 0]);
    expect(photoExit).to.equal(0);
    const cleanup = await broker.createChannel();
    for (const q of [queue, deadLetterQueue]) await cleanup.deleteQueue(q).catch(() => {});
    for (const x of [mesh.exchange, deadLetterExchange]) await cleanup.deleteExchange(x).catch(() => {});
    await broker.close();
    await dropTestDatabase(photoDatabase);
    await rm(storageDir, { recursive: true, force: true });
  });

  it("learns of a registration, then removes the user's photos and blobs when the account is deleted", async () => {
    const email = `u-${randomUUID()}@example.com`;
    const { user, session } = await callUnary<{ user: { id: string }; session: { token: string } }>(users, "register", { email, password: "correct horse battery", name: "Ada" });
    await waitFor(() => knownUser(user.id), "the registration to reach photo");

    for (let i = 0; i < 2; i++) {
      const { error } = await callClientStream(photos, "loadPhoto", [{ header: { userId: user.id } }, { chunk: png(20, 20) }]);
      expect(error).to.equal(undefined);
    }
    expect(await readdir(join(storageDir, user.id))).to.have.length(2);

    await callUnary(users, "deleteAccount", { userId: user.id, password: "correct horse battery", sessionToken: session.token });
    await waitFor(async () => !(await knownUser(user.id)), "the deletion to reach photo");
    expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM photos WHERE user_id = $1", [user.id])).rows[0]?.n).to.equal(0);
    await waitFor(async () => (await readdir(join(storageDir, user.id)).catch(() => [])).length === 0, "the blobs to go");
    const upload = await callClientStream(photos, "loadPhoto", [{ header: { userId: user.id } }, { chunk: png(20, 20) }]);
    expect(upload.error?.code, "a deleted user cannot upload again").to.equal(grpc.status.FAILED_PRECONDITION);
  });

  it("treats the same event delivered twice as once", async () => {
    const userId = randomUUID();
    const event = {
      id: randomUUID(),
      source: "//usermesh/user",
      type: "usermesh.user.v1.registered",
      time: new Date(),
      subject: userId,
      dataContentType: "application/protobuf",
      data: toBinary(UserRegisteredSchema, create(UserRegisteredSchema, { userId, registeredAt: timestampNow() })),
    };
    const { content, options } = toAmqpMessage(event);
    channel.publish(mesh.exchange, "user.registration", content, options);
    channel.publish(mesh.exchange, "user.registration", content, options);
    await waitFor(() => knownUser(userId), "the registration");
    await waitFor(async () => (await channel.checkQueue(queue)).messageCount === 0, "the queue to drain");
    expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE id = $1", [userId])).rows[0]?.n).to.equal(1);
  });

  it("dead-letters a garbage message and keeps consuming", async () => {
    channel.publish(mesh.exchange, "user.delete", Buffer.from("not a cloud event"), { contentType: "text/plain" });
    const userId = randomUUID();
    const { content, options } = toAmqpMessage({
      id: randomUUID(),
      source: "//usermesh/user",
      type: "usermesh.user.v1.registered",
      time: new Date(),
      dataContentType: "application/protobuf",
      data: toBinary(UserRegisteredSchema, create(UserRegisteredSchema, { userId })),
    });
    channel.publish(mesh.exchange, "user.registration", content, options);
    await waitFor(() => knownUser(userId), "the event after the garbage");
    await waitFor(async () => (await channel.checkQueue(deadLetterQueue)).messageCount === 1, "the garbage in the dead-letter queue");
  });
});
