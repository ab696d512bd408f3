import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { startMesh, type Mesh } from "../support/mesh.js";
import { startServiceProcess, type ServiceProcess } from "../support/service-process.js";
import { pixelBombPng, png } from "../../services/photo/upload/test/test-images.js";
import { createApi, type Api } from "./api-client.js";

// Every error the REST contract names, produced once through the gateway of a real mesh, each
// answered as application/problem+json (and validated against the OpenAPI document by the client).

interface Problem { status: number; title: string; detail: string; traceId: string; errors?: { field: string; message: string }[] }

const uploadLimit = 256 * 1024;

describe("e2e: every error through HTTP", function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let api: Api;
  let token: string;
  let userId: string;
  const email = `err-${randomUUID()}@example.com`;
  const password = "correct horse battery";

  const expectProblem = (res: { status: number; headers: Headers; json: unknown }, status: number) => {
    expect(res.status).to.equal(status);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    const problem = res.json as Problem;
    expect(problem.status).to.equal(status);
    expect(problem.traceId).to.equal(res.headers.get("x-request-id"));
    return problem;
  };

  before(async () => {
    mesh = await startMesh({
      gatewayEnv: { USERMESH_UPLOAD__MAX_BYTES: String(uploadLimit) },
      photoEnv: { USERMESH_UPLOAD__MAX_BYTES: String(uploadLimit) },
    });
    api = createApi(mesh.baseUrl);
    const registered = await api<{ user: { id: string }; session: { token: string } }>("POST", "/auth/register", { json: { email, password, name: "Err" } });
    token = registered.json.session.token;
    userId = registered.json.user.id;
  });

  after(async () => {
    const codes = await mesh?.stop();
    expect(codes).to.deep.equal({ gateway: 0, photo: 0, user: 0, session: 0 });
  });

  it("400: malformed JSON, and invalid fields with errors[]", async () => {
    expectProblem(await api("POST", "/auth/login", { body: "{\"email\":", headers: { "content-type": "application/json" } }), 400);
    const invalid = expectProblem(await api("POST", "/auth/register", { json: { email: "nope", password: "short", name: "" } }), 400);
    expect(invalid.errors?.map((e) => e.field).sort()).to.deep.equal(["email", "name", "password"]);
  });

  it("401: no credentials, a dead token, and bad credentials", async () => {
    const missing = await api("GET", "/me");
    expectProblem(missing, 401);
    expect(missing.headers.get("www-authenticate")).to.match(/^Bearer/);
    expectProblem(await api("GET", "/me", { token: "A".repeat(43) }), 401);
    expectProblem(await api("POST", "/auth/login", { json: { email, password: "wrong password!" } }), 401);
  });

  it("403: a cookie-authenticated unsafe request from another site", async () => {
    const photo = await api<{ photo: { id: string } }>("POST", "/me/photos", { token, body: png(10, 10), headers: { "content-type": "image/png" } });
    const res = await api("DELETE", `/me/photos/${photo.json.photo.id}`, {
      cookie: `session=${token}`,
      headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    });
    expectProblem(res, 403);
    expect((await api("GET", `/me/photos/${photo.json.photo.id}`, { token })).status).to.equal(200);
  });

  it("404: an unknown route and an unknown user", async () => {
    expectProblem(await api("GET", "/no/such/route", { token, undocumented: true }), 404);
    expectProblem(await api("GET", `/users/${randomUUID()}`, { token }), 404);
  });

  it("405: a known path with a method it does not serve, with Allow", async () => {
    const res = await api("PUT", "/me", { token, json: {}, undocumented: true });
    expectProblem(res, 405);
    expect(res.headers.get("allow")).to.include("GET");
  });

  it("409: an email that is taken", async () => {
    expectProblem(await api("POST", "/auth/register", { json: { email: email.toUpperCase(), password, name: "Again" } }), 409);
  });

  it("413: a JSON body over 16 KiB and a photo over the limit", async () => {
    expectProblem(await api("POST", "/auth/login", { json: { email, password: "x".repeat(20_000) } }), 413);
    const big = Buffer.concat([png(10, 10), Buffer.alloc(uploadLimit)]);
    expectProblem(await api("POST", "/me/photos", { token, body: big, headers: { "content-type": "image/png" } }), 413);
  });

  it("415: a body of the wrong type, and bytes that are not an image whatever their label", async () => {
    expectProblem(await api("POST", "/auth/login", { body: "email=a", headers: { "content-type": "text/plain" } }), 415);
    expectProblem(await api("POST", "/me/photos", { token, body: "hello", headers: { "content-type": "text/plain" } }), 415);
    expectProblem(await api("POST", "/me/photos", { token, body: Buffer.from("%PDF-1.7 not an image"), headers: { "content-type": "image/png" } }), 415);
  });

  it("422: a pixel bomb, and an email change without the current password", async () => {
    expectProblem(await api("POST", "/me/photos", { token, body: pixelBombPng(), headers: { "content-type": "image/png" } }), 422);
    expectProblem(await api("PATCH", "/me/update", { token, json: { email: `new-${randomUUID()}@example.com` } }), 422);
  });

  describe("with a second gateway on tight limits", () => {
    let strict: ServiceProcess;
    let strictApi: Api;

    before(async () => {
      strict = await startServiceProcess("gateway/main.ts", {
        ...mesh.envOf.gateway,
        USERMESH_RATE_LIMIT__AUTH_PER_IP__POINTS: "3",
        USERMESH_RATE_LIMIT__AUTH_PER_IP__DURATION_SECONDS: "2",
        USERMESH_DEADLINES__DEFAULT_MS: "150",
        USERMESH_REDIS__KEY_PREFIX: `test:strict:${randomUUID()}:`,
      });
      strictApi = createApi(`http://127.0.0.1:${strict.httpPort}`);
      // Serving starts before Redis is connected (limits fail open meanwhile): wait for readiness.
      const until = Date.now() + 10_000;
      while ((await strictApi("GET", "/readyz")).status !== 200) {
        if (Date.now() > until) throw new Error("the strict gateway never became ready");
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    after(async () => {
      expect(await strict?.stop()).to.equal(0);
    });

    it("429: the auth rate limit is reached with Retry-After, then recovers", async () => {
      const attempt = () => strictApi("POST", "/auth/login", { json: { email, password } });
      for (let i = 0; i < 3; i++) {
        const ok = await attempt();
        expect(ok.status).to.equal(200);
        expect(ok.headers.get("ratelimit-limit")).to.not.equal(null);
      }
      const limited = await attempt();
      expectProblem(limited, 429);
      const retryAfter = Number(limited.headers.get("retry-after"));
      expect(retryAfter).to.be.within(1, 2);
      await new Promise((r) => setTimeout(r, retryAfter * 1000 + 200));
      expect((await attempt()).status).to.equal(200);
    });

    it("504: a request that outlives its deadline", async () => {
      const pauser = new Redis("redis://127.0.0.1:6379");
      try {
        // Every Redis command (session check, rate limit) now waits: the 150 ms budget runs out.
        await pauser.call("CLIENT", "PAUSE", "800", "ALL");
        expectProblem(await strictApi("GET", "/me", { token }), 504);
      } finally {
        await pauser.call("CLIENT", "UNPAUSE").catch(() => {});
        await pauser.quit();
      }
    });
  });

  it("503: a downstream service stopped, then recovery without restarting the gateway", async () => {
    expect(await mesh.photo.stop()).to.equal(0);
    expectProblem(await api("GET", "/me/photos", { token }), 503);
    const ready = await api<{ status: string; dependencies: Record<string, string> }>("GET", "/readyz");
    expect(ready.status).to.equal(503);
    expect(ready.json.dependencies.photo).to.equal("down");

    await mesh.restart("photo");
    const until = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < until && status !== 200) {
      status = (await api("GET", "/me/photos", { token })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).to.equal(200);
    expect((await api("GET", "/readyz")).status).to.equal(200);
    expect(userId).to.be.a("string");
  });
});
