import { expect } from "chai";
import { randomBytes } from "node:crypto";
import express, { type RequestHandler } from "express";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { createProblemHandler } from "../../middleware/problem.js";
import { byClientIp, byUserId, createRateLimiter, type RateLimiterOptions } from "../../middleware/rate-limit.js";
import { setAuth } from "../../request-context.js";
import { createTraceMiddleware } from "../../middleware/trace.js";
import { recordingLogger, serve, sleep, type RecordingLogger, type TestServer } from "./test-server.js";

describe("rate limit middleware (real Redis)", () => {
  const runPrefix = `usermesh-test:rl:${randomBytes(6).toString("hex")}`;
  let redis: Redis;
  let server: TestServer | undefined;
  let registry: Registry;
  let logger: RecordingLogger;

  before(async () => {
    redis = new Redis("redis://127.0.0.1:6379", { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    await redis.ping();
  });
  after(async () => {
    const keys = await redis.keys(`${runPrefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  beforeEach(() => {
    registry = new Registry();
    logger = recordingLogger();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const limiter = (overrides: Partial<RateLimiterOptions> = {}): RequestHandler =>
    createRateLimiter({
      redis,
      keyPrefix: runPrefix,
      points: 3,
      durationSeconds: 1,
      key: (req) => req.get("x-client") ?? "anonymous",
      name: `ip-${randomBytes(3).toString("hex")}`,
      registry,
      logger,
      ...overrides,
    });

  const start = async (...limiters: RequestHandler[]) => {
    const app = express();
    app.use(createTraceMiddleware());
    app.use(...limiters);
    app.get("/", (_req, res) => {
      res.json({ ok: true });
    });
    app.use(createProblemHandler({ logger }));
    server = await serve(app);
    return server;
  };
  const hit = (client = "a") => fetch(`${server?.url}/`, { headers: { "x-client": client } });

  it("sets RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on allowed requests", async () => {
    await start(limiter());

    const first = await hit();
    const second = await hit();

    expect(first.status).to.equal(200);
    expect(first.headers.get("ratelimit-limit")).to.equal("3");
    expect(first.headers.get("ratelimit-remaining")).to.equal("2");
    expect(first.headers.get("ratelimit-reset")).to.equal("1");
    expect(first.headers.get("ratelimit-policy")).to.equal("3;w=1");
    expect(second.headers.get("ratelimit-remaining")).to.equal("1");
  });

  it("answers 429 with a problem body and Retry-After once the limit is spent", async () => {
    await start(limiter());

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await hit()).status);
    const limited = await hit();

    expect(statuses).to.deep.equal([200, 200, 200]);
    expect(limited.status).to.equal(429);
    expect(limited.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(limited.headers.get("retry-after")).to.equal("1");
    expect(limited.headers.get("ratelimit-remaining")).to.equal("0");
    const body = (await limited.json()) as Record<string, unknown>;
    expect(body).to.include({ status: 429, title: "Too Many Requests" });
    expect(body.traceId).to.equal(limited.headers.get("x-request-id"));
  });

  it("lets requests through again once the window has passed", async () => {
    await start(limiter({ points: 1 }));

    expect((await hit()).status).to.equal(200);
    expect((await hit()).status).to.equal(429);
    await sleep(1100);

    const recovered = await hit();
    expect(recovered.status).to.equal(200);
    expect(recovered.headers.get("ratelimit-remaining")).to.equal("0");
  });

  it("counts each key separately", async () => {
    await start(limiter({ points: 1 }));

    expect((await hit("a")).status).to.equal(200);
    expect((await hit("a")).status).to.equal(429);
    expect((await hit("b")).status).to.equal(200);
  });

  it("lets a request with no key through uncounted", async () => {
    await start(limiter({ points: 1, key: () => undefined }));

    const responses = [await hit(), await hit()];

    expect(responses.map((r) => r.status)).to.deep.equal([200, 200]);
    expect(responses[1].headers.has("ratelimit-limit")).to.equal(false);
  });

  it("shows the headers of the limiter with the fewest requests left when several apply", async () => {
    await start(limiter({ points: 10 }), limiter({ points: 2 }), limiter({ points: 5 }));

    const res = await hit();

    expect(res.headers.get("ratelimit-limit")).to.equal("2");
    expect(res.headers.get("ratelimit-remaining")).to.equal("1");
  });

  it("keys by client address with byClientIp", async () => {
    await start(limiter({ points: 1, key: byClientIp }));

    expect((await hit("a")).status).to.equal(200);
    expect((await hit("b")).status).to.equal(429);
  });

  it("keys by authenticated user with byUserId and lets anonymous requests pass uncounted", async () => {
    const authenticate: RequestHandler = (req, res, next) => {
      const user = req.get("x-user");
      if (user) setAuth(res, { userId: user, sessionId: "s", token: "t", via: "bearer" });
      next();
    };
    await start(authenticate, limiter({ points: 1, key: byUserId }));
    const as = (user?: string) => fetch(`${server?.url}/`, { headers: user ? { "x-user": user } : {} });

    expect((await as("u1")).status).to.equal(200);
    expect((await as("u1")).status).to.equal(429);
    expect((await as("u2")).status).to.equal(200);
    expect([(await as()).status, (await as()).status]).to.deep.equal([200, 200]);
  });

  describe("when Redis is down", () => {
    let deadRedis: Redis;

    beforeEach(() => {
      deadRedis = new Redis({ host: "127.0.0.1", port: 1, enableOfflineQueue: false, lazyConnect: false, retryStrategy: () => 200 });
      deadRedis.on("error", () => undefined);
    });
    afterEach(() => deadRedis.disconnect());

    it("fails open, counts each request let through and warns once per outage", async () => {
      await start(limiter({ redis: deadRedis, name: "ip", points: 1 }));

      const statuses = [(await hit()).status, (await hit()).status, (await hit()).status];

      expect(statuses).to.deep.equal([200, 200, 200]);
      const text = await registry.metrics();
      expect(text).to.include('rate_limit_fail_open_total{limiter="ip"} 3');
      expect(logger.lines.filter((l) => l.level === "warn")).to.have.length(1);
      expect(logger.lines[0].fields).to.include({ limiter: "ip" });
    });

    it("warns again for a new outage after Redis came back", async () => {
      const flaky = new Redis("redis://127.0.0.1:6379", { enableOfflineQueue: false, lazyConnect: true });
      flaky.on("error", () => undefined);
      try {
        await start(limiter({ redis: flaky, name: "flaky", points: 100 }));
        const warnings = () => logger.lines.filter((l) => l.level === "warn").length;

        await hit();
        await hit();
        expect(warnings()).to.equal(1);
        await flaky.connect();
        const back = await hit();
        expect(back.headers.get("ratelimit-remaining")).to.equal("99");
        flaky.disconnect();
        await hit();

        expect(warnings()).to.equal(2);
        expect(logger.lines.map((l) => l.msg)).to.include("rate limiter back on redis");
      } finally {
        flaky.disconnect();
      }
    });
  });
});
