// The PostgreSQL user store against a real PostgreSQL: a fresh database per run, migrated from
// services/user/migrations; the domain runs over it where a whole operation's atomicity is the point.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { reasonOf } from "../../../internal/errors/errors.js";
import { createPgPool } from "../../../internal/stores/postgres.js";
import { runMigrations } from "../../../internal/stores/migrations.js";
import { UserDeletedSchema, UserRegisteredSchema } from "../../../gen/usermesh/events/v1/events_pb.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/pg.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { userRegisteredEvent } from "../outbox.js";
import { createPgUserStore } from "../pg-user-store.js";
import { createUsers, type NewUser, type UserStore } from "../users.js";
import {
  createFakeHasher,
  createFakeProfileCache,
  createFakeSessionClient,
  createFakeThrottle,
} from "./fakes.js";

const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

interface OutboxRow {
  event_id: string;
  aggregate_id: string;
  routing_key: string;
  event_type: string;
  payload: Buffer;
  occurred_at: Date;
  published_at: Date | null;
}

describe("postgres user store (real PostgreSQL)", function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let store: UserStore;

  before(async () => {
    db = await createTestDatabase("user_store");
    const { applied } = await runMigrations(db.pool, { dir: migrationsDir });
    expect(applied).to.deep.equal(["0001_users.sql", "0002_outbox.sql"]);
    store = createPgUserStore(db.pool);
  });
  after(async () => {
    await db?.drop();
  });

  const newUser = (overrides: Partial<NewUser> = {}): NewUser => ({
    id: randomUUID(),
    email: `user-${randomUUID()}@Example.com`,
    name: "Ada",
    passwordHash: "$2b$04$not-a-real-hash",
    createdAt: new Date("2030-01-01T00:00:00.123Z"),
    ...overrides,
  });

  const outboxOf = async (userId: string) =>
    (await db.pool.query<OutboxRow>("SELECT * FROM outbox WHERE aggregate_id = $1 ORDER BY id", [userId])).rows;

  const countUsersWithEmail = async (email: string) =>
    Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE lower(email) = lower($1)", [email])).rows[0].n);

  it("applies its migrations once: a second run is a no-op", async () => {
    expect((await runMigrations(db.pool, { dir: migrationsDir })).applied).to.deep.equal([]);
  });

  it("inserts, finds (by id and by email in any case), updates and deletes a user", async () => {
    const user = newUser({ email: "Grace.Hopper@Example.com" });
    const inserted = await store.transaction((tx) => tx.insertUser(user));
    expect(inserted).to.deep.equal({ ...user, updatedAt: user.createdAt });

    expect(await store.findById(user.id)).to.deep.equal(inserted);
    expect(await store.findByEmail("grace.hopper@example.COM")).to.deep.equal(inserted);
    expect(await store.findById(randomUUID())).to.equal(undefined);
    expect(await store.findByEmail("nobody@example.com")).to.equal(undefined);

    const updatedAt = new Date("2030-02-01T00:00:00.000Z");
    const renamed = await store.transaction((tx) => tx.updateUser(user.id, { name: "Grace", updatedAt }));
    expect(renamed).to.deep.equal({ ...inserted, name: "Grace", updatedAt });
    const rehashed = await store.transaction((tx) =>
      tx.updateUser(user.id, { email: "grace@example.com", passwordHash: "$2b$04$other", updatedAt }),
    );
    expect(rehashed).to.deep.include({ name: "Grace", email: "grace@example.com", passwordHash: "$2b$04$other" });
    expect(await store.transaction((tx) => tx.updateUser(randomUUID(), { name: "x", updatedAt }))).to.equal(undefined);

    expect(await store.transaction((tx) => tx.deleteUser(user.id))).to.equal(true);
    expect(await store.transaction((tx) => tx.deleteUser(user.id))).to.equal(false);
    expect(await store.findById(user.id)).to.equal(undefined);
  });

  it("keeps emails unique whatever their letter case: ALREADY_EXISTS EMAIL_TAKEN", async () => {
    const first = newUser();
    await store.transaction((tx) => tx.insertUser(first));
    const error = await rejectionOf(store.transaction((tx) => tx.insertUser(newUser({ email: first.email.toUpperCase() }))));
    expect(error.code).to.equal(Code.AlreadyExists);
    expect(reasonOf(error)).to.equal("EMAIL_TAKEN");

    const other = newUser();
    await store.transaction((tx) => tx.insertUser(other));
    const moved = await rejectionOf(
      store.transaction((tx) => tx.updateUser(other.id, { email: first.email.toLowerCase(), updatedAt: new Date() })),
    );
    expect(moved.code).to.equal(Code.AlreadyExists);
    expect(reasonOf(moved)).to.equal("EMAIL_TAKEN");
  });

  it("lets exactly one of 20 parallel inserts of one email (in different cases) succeed", async () => {
    const email = `abcdefghijklmnopqrst-${randomUUID()}@example.com`;
    // Twenty distinct spellings: variant i capitalises letter i.
    const variants = Array.from({ length: 20 }, (_, i) => email.slice(0, i) + email[i].toUpperCase() + email.slice(i + 1));
    expect(new Set(variants).size).to.equal(20);
    const results = await Promise.allSettled(
      variants.map((email) =>
        store.transaction(async (tx) => {
          const user = await tx.insertUser(newUser({ email }));
          await tx.appendEvent(userRegisteredEvent(user.id, user.createdAt));
          return user;
        }),
      ),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    expect(won).to.have.length(1);
    expect(lost).to.have.length(19);
    for (const error of lost) {
      expect(error).to.be.instanceOf(ConnectError);
      expect((error as ConnectError).code).to.equal(Code.AlreadyExists);
      expect(reasonOf(error as ConnectError)).to.equal("EMAIL_TAKEN");
    }
    expect(await countUsersWithEmail(email)).to.equal(1);
    const { rows } = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM outbox o JOIN users u ON u.id = o.aggregate_id WHERE lower(u.email) = lower($1)",
      [email],
    );
    expect(rows[0].n).to.equal("1");
  });

  it("leaves neither the user nor its outbox row when the transaction rolls back", async () => {
    const user = newUser();
    const failure = new Error("something after the writes failed");
    let thrown: unknown;
    try {
      await store.transaction(async (tx) => {
        await tx.insertUser(user);
        await tx.appendEvent(userRegisteredEvent(user.id, user.createdAt));
        throw failure;
      });
    } catch (error) {
      thrown = error;
    }
    // The caller's own error comes back unchanged.
    expect(thrown).to.equal(failure);
    expect(await store.findById(user.id)).to.equal(undefined);
    expect(await outboxOf(user.id)).to.deep.equal([]);
  });

  describe("under the account domain", () => {
    function domain() {
      const sessions = createFakeSessionClient();
      const users = createUsers({
        store,
        hasher: createFakeHasher(),
        sessions,
        cache: createFakeProfileCache(),
        throttle: createFakeThrottle(),
        logger: { warn: () => {} },
      });
      return { users, sessions };
    }

    it("commits a registration with exactly one user.registration outbox row whose payload decodes", async () => {
      const { users } = domain();
      const { user } = await users.register({
        email: `reg-${randomUUID()}@example.com`,
        password: "correct horse",
        name: "Ada",
        ip: "",
        userAgent: "",
      });
      const rows = await outboxOf(user.id);
      expect(rows).to.have.length(1);
      const [row] = rows;
      expect(row).to.include({ routing_key: "user.registration", event_type: "usermesh.user.v1.registered", published_at: null });
      expect(row.event_id).to.match(/^[0-9a-f-]{36}$/);
      const payload = fromBinary(UserRegisteredSchema, row.payload);
      expect(payload.userId).to.equal(user.id);
      expect(timestampDate(payload.registeredAt!).getTime()).to.equal(user.createdAt.getTime());
      expect(row.occurred_at.getTime()).to.equal(user.createdAt.getTime());
    });

    it("writes nothing when the session service fails during registration", async () => {
      const { users, sessions } = domain();
      sessions.failing.add("createSession");
      const outboxSize = async () => (await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM outbox")).rows[0].n;
      const before = await outboxSize();
      const email = `nosession-${randomUUID()}@example.com`;
      const error = await rejectionOf(users.register({ email, password: "correct horse", name: "Ada", ip: "", userAgent: "" }));
      expect(error.code).to.equal(Code.Unavailable);
      expect(await countUsersWithEmail(email)).to.equal(0);
      expect(await outboxSize()).to.equal(before);
    });

    it("deletes an account together with a user.delete outbox row", async () => {
      const { users } = domain();
      const { user, session } = await users.register({
        email: `del-${randomUUID()}@example.com`,
        password: "correct horse",
        name: "Ada",
        ip: "",
        userAgent: "",
      });
      await users.deleteAccount({ userId: user.id, password: "correct horse", sessionToken: session.token });
      expect(await store.findById(user.id)).to.equal(undefined);
      const rows = await outboxOf(user.id);
      expect(rows.map((r) => r.routing_key)).to.deep.equal(["user.registration", "user.delete"]);
      expect(fromBinary(UserDeletedSchema, rows[1].payload).userId).to.equal(user.id);
    });
  });

  it("answers UNAVAILABLE when PostgreSQL cannot be reached", async () => {
    const pool = createPgPool("postgres://127.0.0.1:1/nowhere", {
      max: 1,
      applicationName: "test-unreachable",
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const unreachable = createPgUserStore(pool);
      expect((await rejectionOf(unreachable.findById(randomUUID()))).code).to.equal(Code.Unavailable);
      expect((await rejectionOf(unreachable.transaction((tx) => tx.deleteUser(randomUUID())))).code).to.equal(
        Code.Unavailable,
      );
    } finally {
      await pool.end();
    }
  });
});
