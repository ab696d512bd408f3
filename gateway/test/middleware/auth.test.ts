import { expect } from "chai";
import { create } from "@bufbuild/protobuf";
import cookieParser from "cookie-parser";
import express from "express";
import { Code, ConnectError } from "../../../internal/errors/errors.js";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { ValidateSessionResponseSchema } from "../../../gen/usermesh/session/v1/session_pb.js";
import { createAuthMiddleware, type AuthOptions } from "../../middleware/auth.js";
import { createProblemHandler } from "../../middleware/problem.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { authOf } from "../../request-context.js";
import { recordingLogger, serve, type TestServer } from "./test-server.js";

const tokens: Record<string, { userId: string; sessionId: string }> = {
  "bearer-token": { userId: "user-b", sessionId: "session-b" },
  "cookie-token": { userId: "user-c", sessionId: "session-c" },
};

describe("auth middleware", () => {
  let server: TestServer;
  let failWith: Code | undefined;
  const asked: string[] = [];

  // A fake SessionService client: the middleware only needs validateSession.
  const sessions: AuthOptions["sessions"] = {
    validateSession: async (request) => {
      const token = request.token ?? "";
      asked.push(token);
      if (failWith !== undefined) throw new ConnectError("session store: connection refused 10.0.0.7", failWith);
      const session = tokens[token];
      if (!session) throw new ConnectError("session expired or unknown", Code.Unauthenticated);
      return create(ValidateSessionResponseSchema, session);
    },
  };

  before(async () => {
    const app = express();
    app.use(createTraceMiddleware());
    app.use(cookieParser());
    app.use(createAuthMiddleware({ sessions, cookieName: "session" }));
    app.get("/me", async (_req, res) => {
      await Promise.resolve();
      res.json({ ...authOf(res), scopeUserId: currentScope()?.userId });
    });
    app.use(createProblemHandler({ logger: recordingLogger() }));
    server = await serve(app);
  });
  after(() => server.close());
  beforeEach(() => {
    failWith = undefined;
    asked.length = 0;
  });

  const me = (headers: Record<string, string> = {}) => fetch(`${server.url}/me`, { headers });

  it("answers 401 with a Bearer challenge and a problem body when there is no token", async () => {
    const res = await me();

    expect(res.status).to.equal(401);
    expect(res.headers.get("www-authenticate")).to.equal("Bearer");
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(await res.json()).to.include({ status: 401, title: "Unauthorized" });
    expect(asked).to.deep.equal([]);
  });

  it("accepts a bearer token and puts the user on the request and the call scope", async () => {
    const res = await me({ authorization: "Bearer bearer-token" });

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({
      userId: "user-b",
      sessionId: "session-b",
      token: "bearer-token",
      via: "bearer",
      scopeUserId: "user-b",
    });
  });

  it("accepts the session cookie", async () => {
    const res = await me({ cookie: "theme=dark; session=cookie-token" });

    expect(res.status).to.equal(200);
    expect(await res.json()).to.include({ userId: "user-c", via: "cookie" });
  });

  it("prefers the bearer token over the cookie", async () => {
    const res = await me({ authorization: "bearer bearer-token", cookie: "session=cookie-token" });

    expect(await res.json()).to.include({ userId: "user-b", via: "bearer" });
    expect(asked).to.deep.equal(["bearer-token"]);
  });

  it("answers 401 when the session service says UNAUTHENTICATED", async () => {
    const res = await me({ authorization: "Bearer expired-token" });

    expect(res.status).to.equal(401);
    expect(res.headers.get("www-authenticate")).to.equal("Bearer");
    expect(await res.json()).to.include({ status: 401 });
  });

  it("ignores an Authorization header of another scheme", async () => {
    const res = await me({ authorization: "Basic dXNlcjpwYXNz" });

    expect(res.status).to.equal(401);
    expect(asked).to.deep.equal([]);
  });

  it("fails closed with 503 when the session service is UNAVAILABLE", async () => {
    failWith = Code.Unavailable;

    const res = await me({ authorization: "Bearer bearer-token" });

    expect(res.status).to.equal(503);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).to.include({ status: 503, title: "Service Unavailable" });
    expect(JSON.stringify(body)).to.not.include("10.0.0.7");
  });

  it("answers 504, not access, when the session check runs out of time", async () => {
    failWith = Code.DeadlineExceeded;

    const res = await me({ authorization: "Bearer bearer-token" });

    expect(res.status).to.equal(504);
  });

  it("passes any other session service error to the problem handler as an opaque 500", async () => {
    failWith = Code.Internal;

    const res = await me({ authorization: "Bearer bearer-token" });

    expect(res.status).to.equal(500);
    expect(await res.json()).to.include({ detail: "internal error" });
  });
});
