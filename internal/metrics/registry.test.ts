import { expect } from "chai";
import { Gauge, register } from "prom-client";
import { createDomainCounter, createMetricsRegistry } from "./registry.js";

describe("createMetricsRegistry", () => {
  it("exposes the process default metrics, each labelled with the service", async () => {
    const registry = createMetricsRegistry({ service: "session" });
    const text = await registry.metrics();

    expect(text).to.match(/^process_cpu_seconds_total\{service="session"\} /m);
    expect(text).to.include("nodejs_eventloop_lag_seconds");
  });

  it("gives each call its own registry and leaves the global one alone", () => {
    const a = createMetricsRegistry({ service: "a" });
    const b = createMetricsRegistry({ service: "b" });

    expect(a).not.to.equal(b);
    expect(a).not.to.equal(register);
    createDomainCounter(a, "only_in_a_total", "test");
    expect(b.getSingleMetric("only_in_a_total")).to.equal(undefined);
    expect(register.getSingleMetric("only_in_a_total")).to.equal(undefined);
  });

  it("refuses an empty service name", () => {
    expect(() => createMetricsRegistry({ service: "" })).to.throw(/service/);
  });
});

describe("createDomainCounter", () => {
  it("returns the counter already registered under the name instead of a second one", async () => {
    const registry = createMetricsRegistry({ service: "session" });
    const first = createDomainCounter(registry, "sessions_created_total", "Sessions created.", ["outcome"]);
    const again = createDomainCounter(registry, "sessions_created_total", "Sessions created.", ["outcome"]);
    first.inc({ outcome: "ok" });
    again.inc({ outcome: "ok" });

    expect(again).to.equal(first);
    expect(await registry.getSingleMetricAsString("sessions_created_total")).to.include(
      'sessions_created_total{outcome="ok",service="session"} 2',
    );
  });

  it("refuses a name taken by another metric type or with other labels", () => {
    const registry = createMetricsRegistry({ service: "session" });
    new Gauge({ name: "queue_depth", help: "test", registers: [registry] });
    createDomainCounter(registry, "events_published_total", "test", ["routing_key"]);

    expect(() => createDomainCounter(registry, "queue_depth", "test")).to.throw(/not as a counter/);
    expect(() => createDomainCounter(registry, "events_published_total", "test", ["queue"])).to.throw(/labels/);
  });
});
