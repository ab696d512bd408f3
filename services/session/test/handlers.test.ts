// The SessionService handlers called directly, as an RPC host calls them (request message + handler
// context, response built from the returned init shape), over the real Redis store.
import { expect } from "chai";
import { rejectionOf } from "../../../test/support/rejection.js";
import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  Code,
  createHandlerContext,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { fieldViolationsOf } from "../../../internal/errors/errors.js";
import {
  CreateSessionRequestSchema,
  CreateSessionResponseSchema,
  DeleteSessionRequestSchema,
  DeleteSessionResponseSchema,
  DeleteUserSessionsRequestSchema,
  DeleteUserSessionsResponseSchema,
  ListSessionsRequestSchema,
  ListSessionsResponseSchema,
  SessionService,
  ValidateSessionRequestSchema,
  ValidateSessionResponseSchema,
} from "../../../gen/usermesh/session/v1/session_pb.js";
import { createSessionHandlers } from "../handlers.js";
import { createRedisSessionStore } from "../redis-session-store.js";
import { createSessions } from "../sessions.js";
import { createRedisTestKeys, type RedisTestKeys } from "../../../test/support/redis-test-keys.js";

const hour = 3_600_000;

function contextFor(name: keyof typeof SessionService.method): HandlerContext {
  const method = SessionService.method[name];
  return createHandlerContext({
    service: SessionService,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://127.0.0.1/${SessionService.typeName}/${method.name}`,
  });
}


function ms(timestamp: Timestamp | undefined): number {
  expect(timestamp).to.not.equal(undefined);
  return timestampMs(timestamp!);
}

describe("session handlers", () => {
  let fixture: RedisTestKeys;
  let created = 0;
  // Typed as the RPC host sees it: a request and a context in, a response init shape out.
  let handlers: ServiceImpl<typeof SessionService>;

  before(() => {
    fixture = createRedisTestKeys();
    const store = createRedisSessionStore(fixture.redis, { keyPrefix: fixture.keyPrefix });
    const sessions = createSessions({
      store,
      settings: { ttlMs: hour, slidingExpiry: true, absoluteMaxMs: 24 * hour, maxSessionsPerUser: 100 },
    });
    handlers = createSessionHandlers({ sessions, sessionsCreated: { inc: () => void created++ } });
  });
  after(async () => {
    await fixture.close();
  });

  const rpc = {
    createSession: async (init: MessageInitShape<typeof CreateSessionRequestSchema>) =>
      create(
        CreateSessionResponseSchema,
        await handlers.createSession(create(CreateSessionRequestSchema, init), contextFor("createSession")),
      ),
    validateSession: async (init: MessageInitShape<typeof ValidateSessionRequestSchema>) =>
      create(
        ValidateSessionResponseSchema,
        await handlers.validateSession(create(ValidateSessionRequestSchema, init), contextFor("validateSession")),
      ),
    deleteSession: async (init: MessageInitShape<typeof DeleteSessionRequestSchema>) =>
      create(
        DeleteSessionResponseSchema,
        await handlers.deleteSession(create(DeleteSessionRequestSchema, init), contextFor("deleteSession")),
      ),
    listSessions: async (init: MessageInitShape<typeof ListSessionsRequestSchema>) =>
      create(
        ListSessionsResponseSchema,
        await handlers.listSessions(create(ListSessionsRequestSchema, init), contextFor("listSessions")),
      ),
    deleteUserSessions: async (init: MessageInitShape<typeof DeleteUserSessionsRequestSchema>) =>
      create(
        DeleteUserSessionsResponseSchema,
        await handlers.deleteUserSessions(
          create(DeleteUserSessionsRequestSchema, init),
          contextFor("deleteUserSessions"),
        ),
      ),
  };

  const newUser = () => `user-${randomUUID()}`;
  const createFor = (userId: string, userAgent = "mocha") =>
    rpc.createSession({ userId, ip: "192.0.2.10", userAgent });

  it("CreateSession returns a session id, a token and its expiry, and counts the session", async () => {
    const before = created;
    const started = Date.now();
    const response = await createFor(newUser());
    expect(response.sessionId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(response.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(ms(response.expiresAt)).to.be.within(started + hour, Date.now() + hour);
    expect(created).to.equal(before + 1);
  });

  it("ValidateSession resolves a token to its user, session and expiry", async () => {
    const userId = newUser();
    const session = await createFor(userId);
    const response = await rpc.validateSession({ token: session.token });
    expect(response).to.include({ userId, sessionId: session.sessionId });
    expect(ms(response.expiresAt)).to.equal(ms(session.expiresAt));
  });

  it("ValidateSession answers UNAUTHENTICATED for a malformed or unknown token", async () => {
    for (const token of ["x", Buffer.alloc(32).toString("base64url")]) {
      expect((await rejectionOf(rpc.validateSession({ token }))).code).to.equal(Code.Unauthenticated);
    }
  });

  it("DeleteSession ends a session named by its token", async () => {
    const session = await createFor(newUser());
    await rpc.deleteSession({ target: { case: "token", value: session.token } });
    const error = await rejectionOf(rpc.validateSession({ token: session.token }));
    expect(error.code).to.equal(Code.Unauthenticated);
  });

  it("DeleteSession ends a session named by its owner and id", async () => {
    const userId = newUser();
    const session = await createFor(userId);
    await rpc.deleteSession({ target: { case: "session", value: { userId, sessionId: session.sessionId } } });
    const error = await rejectionOf(rpc.validateSession({ token: session.token }));
    expect(error.code).to.equal(Code.Unauthenticated);
  });

  it("DeleteSession answers NOT_FOUND for another user's session, which stays valid", async () => {
    const session = await createFor(newUser());
    const error = await rejectionOf(
      rpc.deleteSession({ target: { case: "session", value: { userId: newUser(), sessionId: session.sessionId } } }),
    );
    expect(error.code).to.equal(Code.NotFound);
    expect((await rpc.validateSession({ token: session.token })).sessionId).to.equal(session.sessionId);
  });

  it("ListSessions lists a user's sessions newest first, with their details", async () => {
    const userId = newUser();
    const first = await createFor(userId, "first");
    const second = await createFor(userId, "second");
    const { sessions } = await rpc.listSessions({ userId });
    expect(sessions.map((s) => s.sessionId)).to.have.members([first.sessionId, second.sessionId]);
    expect(ms(sessions[0]?.createdAt)).to.be.at.least(ms(sessions[1]?.createdAt));
    const listed = sessions.find((s) => s.sessionId === second.sessionId);
    expect(listed).to.include({ userId, ip: "192.0.2.10", userAgent: "second" });
    expect(ms(listed?.createdAt)).to.be.at.most(Date.now());
    expect(ms(listed?.lastSeenAt)).to.equal(ms(listed?.createdAt));
    expect(ms(listed?.expiresAt)).to.equal(ms(second.expiresAt));
  });

  it("DeleteUserSessions ends every session but the excepted one and says how many", async () => {
    const userId = newUser();
    const keep = await createFor(userId);
    await createFor(userId);
    await createFor(userId);
    const response = await rpc.deleteUserSessions({ userId, exceptSessionId: keep.sessionId });
    expect(response.deletedCount).to.equal(2);
    expect((await rpc.listSessions({ userId })).sessions.map((s) => s.sessionId)).to.deep.equal([keep.sessionId]);
    expect((await rpc.deleteUserSessions({ userId })).deletedCount).to.equal(1);
  });

  it("answers INVALID_ARGUMENT with BadRequest field violations for empty ids", async () => {
    const cases: [() => Promise<unknown>, string[]][] = [
      [() => createFor(""), ["userId"]],
      [() => rpc.listSessions({ userId: "" }), ["userId"]],
      [() => rpc.deleteUserSessions({ userId: "" }), ["userId"]],
      [
        () => rpc.deleteSession({ target: { case: "session", value: { userId: "", sessionId: "" } } }),
        ["session.userId", "session.sessionId"],
      ],
      [() => rpc.deleteSession({ target: { case: "token", value: "" } }), ["token"]],
    ];
    for (const [call, fields] of cases) {
      const error = await rejectionOf(call());
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(fields);
    }
  });

  it("answers INVALID_ARGUMENT when DeleteSession names neither a token nor a session", async () => {
    const error = await rejectionOf(rpc.deleteSession({}));
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(error).map((v) => v.field)).to.deep.equal(["token", "session"]);
  });
});
