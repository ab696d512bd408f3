import { expect } from "chai";
import express from "express";
import {
  Code,
  ConnectError,
  internal,
  invalidArgument,
  reasonedError,
  resourceExhausted,
} from "../../../internal/errors/errors.js";
import { HttpProblem } from "../../http-problem.js";
import { createNotFoundHandler, createProblemHandler, methodNotAllowed } from "../../middleware/problem.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { recordingLogger, serve, type RecordingLogger, type TestServer } from "./test-server.js";

/** The code's name as gRPC spells it: Code.InvalidArgument → INVALID_ARGUMENT. */
const grpcName = (code: Code) => Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();

describe("problem handler", () => {
  let server: TestServer;
  let logger: RecordingLogger;
  let toThrow: unknown;

  before(async () => {
    logger = recordingLogger();
    const app = express();
    app.use(createTraceMiddleware());
    app.get("/fail", async () => {
      await Promise.resolve();
      throw toThrow;
    });
    app.get("/half-sent", (_req, res, next) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("partial");
      setTimeout(() => next(new Error("stream broke")), 20);
    });
    app.route("/me").get((_req, res) => {
      res.json({});
    }).all(methodNotAllowed(["GET", "PATCH"]));
    app.use(createNotFoundHandler());
    app.use(createProblemHandler({ logger }));
    server = await serve(app);
  });
  after(() => server.close());
  beforeEach(() => {
    logger.lines.length = 0;
  });

  const fail = async (error: unknown) => {
    toThrow = error;
    const res = await fetch(`${server.url}/fail`, { headers: { "x-request-id": "problem-1" } });
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    return { res, body: (await res.json()) as Record<string, unknown> };
  };

  const table: [Code, number][] = [
    [Code.InvalidArgument, 400],
    [Code.Unauthenticated, 401],
    [Code.PermissionDenied, 403],
    [Code.NotFound, 404],
    [Code.AlreadyExists, 409],
    [Code.FailedPrecondition, 422],
    [Code.ResourceExhausted, 429],
    [Code.Unavailable, 503],
    [Code.DeadlineExceeded, 504],
    [Code.Internal, 500],
    [Code.Unknown, 500],
    [Code.DataLoss, 500],
  ];
  for (const [code, status] of table) {
    it(`answers ${status} for gRPC ${grpcName(code)}`, async () => {
      const { res, body } = await fail(new ConnectError("boom", code));

      expect(res.status).to.equal(status);
      expect(body).to.include({ type: "about:blank", status });
    });
  }

  it("renders an RFC 9457 body with the reason phrase as title and the trace id", async () => {
    const { body } = await fail(new ConnectError("no such user", Code.NotFound));

    expect(body).to.deep.equal({
      type: "about:blank",
      title: "Not Found",
      status: 404,
      detail: "no such user",
      traceId: "problem-1",
    });
  });

  for (const [reason, status] of [
    ["PHOTO_TOO_LARGE", 413],
    ["UNSUPPORTED_MEDIA_TYPE", 415],
    ["TOO_MANY_PIXELS", 422],
  ] as const) {
    it(`answers ${status} for an upload refused with reason ${reason}`, async () => {
      const { res, body } = await fail(reasonedError(Code.InvalidArgument, "photo refused", reason));

      expect(res.status).to.equal(status);
      expect(body).to.include({ status, detail: "photo refused" });
    });
  }

  it("lists BadRequest field violations in errors[]", async () => {
    const { res, body } = await fail(
      invalidArgument("invalid registration", [
        { field: "email", description: "must be an email address", reason: "INVALID_FORMAT" },
        { field: "password", description: "must be at least 8 characters" },
      ]),
    );

    expect(res.status).to.equal(400);
    expect(body.errors).to.deep.equal([
      { field: "email", message: "must be an email address" },
      { field: "password", message: "must be at least 8 characters" },
    ]);
  });

  it("hides the message of INTERNAL and logs its cause at error", async () => {
    const { res, body } = await fail(internal(new Error("duplicate key in users_pkey")));

    expect(res.status).to.equal(500);
    expect(body.detail).to.equal("internal error");
    expect(JSON.stringify(body)).to.not.include("users_pkey");
    const errors = logger.lines.filter((l) => l.level === "error");
    expect(errors).to.have.length(1);
    expect(String((errors[0].fields.err as Error).message)).to.include("users_pkey");
  });

  it("hides the message of UNAVAILABLE behind a generic detail", async () => {
    const { body } = await fail(new ConnectError("connect ECONNREFUSED 10.1.2.3:50051", Code.Unavailable));

    expect(body.detail).to.equal("a service is unavailable");
  });

  it("answers anything that is not a known error as an opaque 500, logged with its cause", async () => {
    const { res, body } = await fail(new TypeError("cannot read properties of undefined (reading 'rows')"));

    expect(res.status).to.equal(500);
    expect(body).to.include({ title: "Internal Server Error", detail: "internal error" });
    expect(logger.lines.filter((l) => l.level === "error")).to.have.length(1);
  });

  it("sets Retry-After from RetryInfo on 429, rounded up to whole seconds", async () => {
    const { res, body } = await fail(resourceExhausted("too many login attempts", 2500));

    expect(res.status).to.equal(429);
    expect(res.headers.get("retry-after")).to.equal("3");
    expect(body.detail).to.equal("too many login attempts");
  });

  it("logs client errors at info, never at error", async () => {
    await fail(new ConnectError("wrong password", Code.Unauthenticated));

    expect(logger.lines.map((l) => l.level)).to.deep.equal(["info"]);
  });

  it("renders an HttpProblem with its own status, title, detail, errors and headers", async () => {
    const { res, body } = await fail(
      new HttpProblem(422, "Unprocessable Content", "bad photo", [{ field: "photo", message: "empty" }], { "X-Extra": "1" }),
    );

    expect(res.status).to.equal(422);
    expect(res.headers.get("x-extra")).to.equal("1");
    expect(body).to.deep.equal({
      type: "about:blank",
      title: "Unprocessable Content",
      status: 422,
      detail: "bad photo",
      traceId: "problem-1",
      errors: [{ field: "photo", message: "empty" }],
    });
  });

  it("answers 404 with a problem body for unknown routes", async () => {
    const res = await fetch(`${server.url}/no/such/route`);

    expect(res.status).to.equal(404);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(await res.json()).to.include({ status: 404, title: "Not Found" });
  });

  it("answers 405 with an Allow header for another method on a known path", async () => {
    const res = await fetch(`${server.url}/me`, { method: "DELETE" });

    expect(res.status).to.equal(405);
    expect(res.headers.get("allow")).to.equal("GET, PATCH, HEAD");
    expect(await res.json()).to.include({ status: 405, title: "Method Not Allowed" });
  });

  it("cuts the connection when the response had already started", async () => {
    const res = await fetch(`${server.url}/half-sent`);

    expect(res.status).to.equal(200);
    let failed = false;
    try {
      await res.text();
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    expect(logger.lines.filter((l) => l.level === "error")).to.have.length(1);
  });
});
