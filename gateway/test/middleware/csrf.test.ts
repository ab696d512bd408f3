import { expect } from "chai";
import { create } from "@bufbuild/protobuf";
import cookieParser from "cookie-parser";
import express from "express";
import { ValidateSessionResponseSchema } from "../../../gen/usermesh/session/v1/session_pb.js";
import { createAuthMiddleware } from "../../middleware/auth.js";
import { createCsrfMiddleware } from "../../middleware/csrf.js";
import { createProblemHandler } from "../../middleware/problem.js";
import { recordingLogger, serve, type TestServer } from "./test-server.js";

describe("CSRF middleware", () => {
  let server: TestServer;

  before(async () => {
    const app = express();
    app.use(cookieParser());
    app.use(
      createAuthMiddleware({
        sessions: { validateSession: async () => create(ValidateSessionResponseSchema, { userId: "u", sessionId: "s" }) },
        cookieName: "session",
      }),
    );
    app.use(createCsrfMiddleware({ allowedOrigins: ["https://api.example.com"] }));
    app.all("/me/update", (req, res) => {
      res.json({ method: req.method });
    });
    app.use(createProblemHandler({ logger: recordingLogger() }));
    server = await serve(app);
  });
  after(() => server.close());

  const send = (method: string, headers: Record<string, string>) =>
    fetch(`${server.url}/me/update`, { method, headers });
  const cookie = { cookie: "session=t" };

  it("refuses a cookie-authenticated POST with neither Sec-Fetch-Site nor Origin", async () => {
    const res = await send("POST", cookie);

    expect(res.status).to.equal(403);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(await res.json()).to.include({ status: 403, title: "Forbidden" });
  });

  it("refuses a cookie-authenticated unsafe request from another site", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await send(method, { ...cookie, "sec-fetch-site": "cross-site", origin: "https://api.example.com" });
      expect(res.status, method).to.equal(403);
    }
    expect((await send("POST", { ...cookie, "sec-fetch-site": "same-site" })).status).to.equal(403);
  });

  it("accepts a cookie-authenticated POST with Sec-Fetch-Site: same-origin", async () => {
    const res = await send("POST", { ...cookie, "sec-fetch-site": "same-origin" });

    expect(res.status).to.equal(200);
  });

  it("accepts an Origin from the configured origins when Sec-Fetch-Site is absent", async () => {
    expect((await send("PATCH", { ...cookie, origin: "https://api.example.com" })).status).to.equal(200);
    expect((await send("PATCH", { ...cookie, origin: "https://evil.example" })).status).to.equal(403);
    expect((await send("PATCH", { ...cookie, origin: "null" })).status).to.equal(403);
  });

  it("accepts an Origin equal to the request's own scheme and host", async () => {
    const res = await send("DELETE", { ...cookie, origin: server.url });

    expect(res.status).to.equal(200);
  });

  it("lets a bearer-authenticated POST through without any origin header", async () => {
    const res = await send("POST", { authorization: "Bearer t", "sec-fetch-site": "cross-site" });

    expect(res.status).to.equal(200);
  });

  it("lets safe methods through with the cookie", async () => {
    const res = await send("GET", { ...cookie, "sec-fetch-site": "cross-site" });

    expect(res.status).to.equal(200);
  });
});
