import { expect } from "chai";
import express from "express";
import { Registry } from "prom-client";
import { createHttpMetricsMiddleware } from "../../middleware/http-metrics.js";
import { setRoute } from "../../request-context.js";
import { eventually, serve, type TestServer } from "./test-server.js";

describe("HTTP metrics middleware", () => {
  let server: TestServer;
  let registry: Registry;

  beforeEach(async () => {
    registry = new Registry();
    const app = express();
    app.use(createHttpMetricsMiddleware(registry));
    app.get("/users/:id", (req, res) => {
      setRoute(res, "/users/:id");
      res.status(req.params.id === "missing" ? 404 : 200).json({});
    });
    server = await serve(app);
  });
  afterEach(() => server.close());

  /** The value of one series in the exposition text, 0 when absent. */
  const sample = async (series: string) => {
    const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
  const requests = (labels: string) => sample(`http_requests_total{${labels}}`);

  it("labels requests with the route template, never the raw path", async () => {
    await fetch(`${server.url}/users/123`);
    await fetch(`${server.url}/users/456?x=1`);
    await fetch(`${server.url}/users/missing`);

    await eventually(async () => (await requests('method="GET",route="/users/:id",status="404"')) === 1);
    expect(await requests('method="GET",route="/users/:id",status="200"')).to.equal(2);
    expect(await registry.metrics()).to.not.match(/123|456|missing/);
  });

  it("labels requests no route claimed as unmatched", async () => {
    await fetch(`${server.url}/nowhere/at/all`);

    await eventually(async () => (await requests('method="GET",route="unmatched",status="404"')) === 1);
    expect(await registry.metrics()).to.not.include("nowhere");
  });

  it("observes each request's duration in a histogram by method and route", async () => {
    await fetch(`${server.url}/users/1`);

    const series = 'http_request_duration_seconds_count{method="GET",route="/users/:id"}';
    await eventually(async () => (await sample(series)) === 1);
    expect(await sample('http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/users/:id"}')).to.equal(1);
  });

  it("reuses its metrics when created twice on one registry", () => {
    expect(() => createHttpMetricsMiddleware(registry)).to.not.throw();
  });
});
