import { expect } from "chai";
import { STATUS_CODES } from "node:http";
import express from "express";
import { currentScope } from "../../../internal/trace/call-scope.js";
import { createJsonBody } from "../../middleware/body.js";
import { createProblemHandler } from "../../middleware/problem.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { recordingLogger, serve, type TestServer } from "./test-server.js";

describe("JSON body middleware", () => {
  let server: TestServer;

  before(async () => {
    const app = express();
    app.use(createTraceMiddleware());
    app.post("/echo", createJsonBody({ limitBytes: 16384 }), (req, res) => {
      res.json({ body: (req.body as unknown) ?? null, traceId: currentScope()?.traceId });
    });
    app.use(createProblemHandler({ logger: recordingLogger() }));
    server = await serve(app);
  });
  after(() => server.close());

  const post = (body: string | undefined, contentType?: string) =>
    fetch(`${server.url}/echo`, {
      method: "POST",
      headers: { "x-request-id": "body-1", ...(contentType ? { "content-type": contentType } : {}) },
      body,
    });

  const expectProblem = async (res: Response, status: number) => {
    expect(res.status).to.equal(status);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem).to.include({ type: "about:blank", status, traceId: "body-1" });
    return problem;
  };

  it("parses a JSON object into req.body, keeping the request's scope", async () => {
    const res = await post(JSON.stringify({ name: "Ada" }), "application/json; charset=utf-8");

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ body: { name: "Ada" }, traceId: "body-1" });
  });

  it("lets a request without a body through with no req.body", async () => {
    const res = await post(undefined);

    expect(await res.json()).to.deep.equal({ body: null, traceId: "body-1" });
  });

  it("answers 415 for a body that is not application/json", async () => {
    const problem = await expectProblem(await post("name=Ada", "application/x-www-form-urlencoded"), 415);

    expect(problem.title).to.equal("Unsupported Media Type");
  });

  it("answers 400 for malformed JSON", async () => {
    const problem = await expectProblem(await post('{"name": "Ada"', "application/json"), 400);

    expect(problem.detail).to.equal("the request body is not valid JSON");
  });

  it("answers 400 for JSON that is not an object", async () => {
    await expectProblem(await post("[1, 2]", "application/json"), 400);
    await expectProblem(await post('"text"', "application/json"), 400);
  });

  it("answers 413 for a body over the limit", async () => {
    const problem = await expectProblem(await post(JSON.stringify({ name: "x".repeat(20_000) }), "application/json"), 413);

    expect(problem.title).to.equal(STATUS_CODES[413]);
  });

  it("answers 415 for a charset it cannot decode", async () => {
    await expectProblem(await post("{}", "application/json; charset=koi8-r-nope"), 415);
  });
});
