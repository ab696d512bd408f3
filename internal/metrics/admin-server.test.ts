import { expect } from "chai";
import { createServer } from "node:net";
import type { Registry } from "prom-client";
import { startAdminServer } from "./admin-server.js";
import type { AdminServer, DependencyCheck } from "./admin-server.js";
import { createDomainCounter, createMetricsRegistry } from "./registry.js";

const up = (name: string): DependencyCheck => ({ name, check: () => Promise.resolve(true) });

describe("admin server", () => {
  let registry: Registry;
  let server: AdminServer | undefined;
  const url = (path: string) => `http://127.0.0.1:${server?.port}${path}`;
  const start = async (dependencies: DependencyCheck[] = [], checkTimeoutMs?: number) => {
    server = await startAdminServer({ host: "127.0.0.1", port: 0, registry, dependencies, checkTimeoutMs });
    return server;
  };

  beforeEach(() => {
    registry = createMetricsRegistry({ service: "test" });
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves the registry on /metrics with Prometheus' content type", async () => {
    createDomainCounter(registry, "sessions_created_total", "Sessions created.").inc(3);
    await start();

    const res = await fetch(url("/metrics"));
    const body = await res.text();

    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal(registry.contentType);
    expect(body).to.match(/^process_cpu_seconds_total\{service="test"\} /m);
    expect(body).to.include('sessions_created_total{service="test"} 3');
  });

  it("answers /healthz with ok while the process runs", async () => {
    await start([{ name: "redis", check: () => Promise.resolve(false) }]);

    const res = await fetch(url("/healthz"));

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "ok" });
  });

  it("answers /readyz 200 with every dependency up", async () => {
    await start([up("redis"), up("postgres")]);

    const res = await fetch(url("/readyz"));

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "ready", dependencies: { redis: "up", postgres: "up" } });
  });

  it("answers /readyz 200 when the process has no dependencies", async () => {
    await start();

    const res = await fetch(url("/readyz"));

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "ready", dependencies: {} });
  });

  it("answers /readyz 503 naming the dependency whose check returns false", async () => {
    await start([up("redis"), { name: "postgres", check: () => Promise.resolve(false) }]);

    const res = await fetch(url("/readyz"));

    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: "not_ready", dependencies: { redis: "up", postgres: "down" } });
  });

  it("counts a check that throws, synchronously or not, as down without crashing", async () => {
    await start([
      { name: "rabbitmq", check: () => Promise.reject(new Error("ECONNREFUSED")) },
      {
        name: "redis",
        check: () => {
          throw new Error("not connected");
        },
      },
    ]);

    const res = await fetch(url("/readyz"));

    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: "not_ready", dependencies: { rabbitmq: "down", redis: "down" } });
    expect((await fetch(url("/healthz"))).status).to.equal(200);
  });

  it("counts a check slower than checkTimeoutMs as down and answers without waiting for it", async () => {
    await start([up("redis"), { name: "mega", check: () => new Promise<boolean>(() => undefined) }], 50);

    const began = performance.now();
    const res = await fetch(url("/readyz"));
    const elapsed = performance.now() - began;

    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: "not_ready", dependencies: { redis: "up", mega: "down" } });
    expect(elapsed).to.be.below(1000);
  });

  it("answers 404 on an unknown path and 405 on a non-GET method", async () => {
    await start();

    const missing = await fetch(url("/nope"));
    const posted = await fetch(url("/metrics"), { method: "POST" });

    expect(missing.status).to.equal(404);
    expect(posted.status).to.equal(405);
    expect(posted.headers.get("allow")).to.equal("GET, HEAD");
  });

  it("ignores the query string when routing", async () => {
    await start();

    expect((await fetch(url("/healthz?verbose=1"))).status).to.equal(200);
  });

  it("releases its port on close(), idle keep-alive connections included", async () => {
    const admin = await start();
    const { port } = admin;
    await (await fetch(url("/healthz"))).text(); // leaves a pooled keep-alive connection open

    await admin.close();
    await admin.close();
    server = undefined;

    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(port, "127.0.0.1", resolve);
    });
    await new Promise((resolve) => probe.close(resolve));
  });

  it("rejects when the port is taken", async () => {
    const admin = await start();

    let caught: unknown;
    await startAdminServer({ host: "127.0.0.1", port: admin.port, registry }).catch((err: unknown) => (caught = err));

    expect((caught as NodeJS.ErrnoException | undefined)?.code).to.equal("EADDRINUSE");
  });

  it("refuses two dependencies with the same name", async () => {
    let caught: unknown;
    await startAdminServer({ host: "127.0.0.1", port: 0, registry, dependencies: [up("redis"), up("redis")] }).catch(
      (err: unknown) => (caught = err),
    );

    expect(caught).to.be.instanceOf(Error);
  });
});
