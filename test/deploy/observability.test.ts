// Prometheus and Grafana as deployed by docker-compose: prometheus.yml valid (promtool) and scraping every
// admin port of the mesh; the Grafana provisioning wired to it; every metric the dashboard queries one the
// code registers.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { extname, join, relative } from "node:path";
import { createServerMetricsInterceptor } from "../../internal/metrics/grpc-metrics.js";
import { createMetricsRegistry } from "../../internal/metrics/registry.js";
import { createHttpMetricsMiddleware } from "../../gateway/middleware/http-metrics.js";
import { meshProcesses, portsOf, processConfig, processForCommand, readYamlDocuments, readYamlWithMerges, repoRoot } from "./mesh-config.js";

const prometheusFile = join(repoRoot, "deploy/prometheus.yml");
const dashboardsDir = join(repoRoot, "deploy/grafana/dashboards");
const provisioningDir = join(repoRoot, "deploy/grafana/provisioning");
const compose = readYamlWithMerges(join(repoRoot, "docker-compose.yml")) as {
  services: Record<string, { command?: unknown; volumes?: string[]; ports?: string[] }>;
};

/**
 * Metrics registered in the processes' main.ts files (wiring that cannot be imported without starting a
 * process) or in modules that need a live connection: each must appear as a string in the source tree.
 */
const wiredMetrics: Record<string, readonly string[]> = {
  sessions_created_total: [],
  events_published_total: [],
  outbox_relay_failures_total: [],
  events_consumed_total: ["type"],
  photo_events_dead_lettered_total: ["reason"],
  photo_blobs_deleted_total: [],
  photo_blob_delete_failures_total: [],
  logs_published_total: [],
  logs_dropped_total: ["reason"],
  rate_limit_fail_open_total: ["limiter"],
  logs_ingested_total: ["service", "level"],
  logs_malformed_total: ["reason"],
  logs_duplicates_total: [],
  logs_write_seconds: [],
  logs_queue_lag_seconds: [],
  logs_tail_dropped_total: [],
  password_hashes_refused_total: ["reason"],
};
/** Series Prometheus makes itself, and labels every scraped series gets from the scrape config. */
const prometheusSeries = ["up", "scrape_duration_seconds"];
const targetLabels = ["job", "instance", "process", "service", "le"];

/** Metrics the code registers on a live registry: process defaults, gRPC server and HTTP metrics. */
async function liveMetrics(): Promise<Map<string, readonly string[]>> {
  const registry = createMetricsRegistry({ service: "dashboard-check" });
  createServerMetricsInterceptor(registry);
  createHttpMetricsMiddleware(registry);
  const metrics = new Map<string, readonly string[]>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const labelNames = (registry.getSingleMetric(metric.name) as { labelNames?: readonly string[] } | undefined)?.labelNames ?? [];
    metrics.set(metric.name, labelNames);
  }
  return metrics;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "test" || entry.name === "node_modules" ? [] : sourceFiles(path);
    return extname(entry.name) === ".ts" && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Metric names in a PromQL expression: an identifier right before a selector `{` or a range `[`. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)].map((m) => m[1]);
}

/** Label names in `by (…)` / `without (…)` clauses and in `{label=…}` matchers. */
function labelsIn(expr: string): string[] {
  const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1].split(",").map((l) => l.trim()));
  const matched = [...expr.matchAll(/[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]);
  return [...grouped, ...matched].filter(Boolean);
}

/** histogram_quantile reads name_bucket, name_sum, name_count: the metric is `name`. */
function baseName(metric: string): string {
  return metric.replace(/_(bucket|sum|count)$/, "");
}

interface Panel {
  title: string;
  type: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

function dashboards(): { file: string; json: { uid: string; title: string; panels: Panel[]; templating: { list: { name: string; type: string }[] } } }[] {
  return readdirSync(dashboardsDir)
    .filter((f) => f.endsWith(".json"))
    .map((file) => ({ file, json: JSON.parse(readFileSync(join(dashboardsDir, file), "utf8")) as ReturnType<typeof dashboards>[number]["json"] }));
}

function panelsOf(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

describe("deploy/prometheus.yml", () => {
  const prometheus = readYamlDocuments(prometheusFile)[0] as {
    scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
  };

  it("passes `promtool check config`", function () {
    const result = spawnSync("promtool", ["check", "config", prometheusFile], { encoding: "utf8" });
    if (result.error && "code" in result.error && result.error.code === "ENOENT") {
      console.warn("      (skipped: promtool is not installed; Debian's prometheus package provides it)");
      this.skip();
    }
    expect(result.status, `${result.stdout}\n${result.stderr}`).to.equal(0);
  });

  it("scrapes /metrics on the admin port of every process, by its compose service name, and nothing else", async () => {
    const job = prometheus.scrape_configs.find((c) => c.job_name === "usermesh");
    expect(job?.metrics_path ?? "/metrics").to.equal("/metrics");
    const expected: string[] = [];
    for (const process of meshProcesses) {
      const [name] = Object.entries(compose.services).find(([, s]) => processForCommand(s.command) === process) ?? [];
      expect(name, process.name).to.be.a("string");
      expected.push(`${name}:${portsOf(process, (await processConfig(process)).yml).admin}`);
    }
    expect(job?.static_configs.flatMap((c) => c.targets)).to.have.members(expected);
  });
});

describe("deploy/grafana", () => {
  it("provisions the compose Prometheus as its data source", () => {
    const [datasources] = readYamlDocuments(join(provisioningDir, "datasources/prometheus.yml")) as {
      datasources: { type: string; url: string; uid: string }[];
    }[];
    const [source] = datasources.datasources;
    expect(source.type).to.equal("prometheus");
    const url = new URL(source.url);
    expect(compose.services).to.have.property(url.hostname);
    expect(compose.services[url.hostname].ports?.map((p) => p.split(":").at(-1))).to.include(url.port);
  });

  it("loads dashboards from the folder compose mounts deploy/grafana/dashboards on", () => {
    const [provider] = readYamlDocuments(join(provisioningDir, "dashboards/usermesh.yml")) as {
      providers: { type: string; options: { path: string } }[];
    }[];
    const mount = compose.services.grafana?.volumes?.map((v) => v.split(":")).find(([source]) => source === "./deploy/grafana/dashboards");
    expect(mount?.[1]).to.equal(provider.providers[0].options.path);
  });

  it("has dashboards that parse, each panel querying the chosen Prometheus data source", () => {
    const found = dashboards();
    expect(found.map((d) => d.file)).to.include("usermesh.json");
    for (const { file, json } of found) {
      expect(json.uid, file).to.be.a("string");
      expect(json.templating.list.find((v) => v.type === "datasource")?.name, file).to.equal("datasource");
      for (const panel of panelsOf(json.panels).filter((p) => p.type !== "row")) {
        expect(panel.datasource?.uid, `${file}: ${panel.title}`).to.equal("${datasource}");
        expect(panel.targets ?? [], `${file}: ${panel.title}`).to.not.be.empty;
      }
    }
  });

  it("queries only metrics and labels the code registers", async () => {
    const live = await liveMetrics();
    const known = new Map<string, readonly string[]>([...live, ...Object.entries(wiredMetrics)]);
    const knownLabels = new Set([...targetLabels, ...[...known.values()].flat()]);
    for (const { file, json } of dashboards()) {
      for (const panel of panelsOf(json.panels)) {
        for (const { expr } of panel.targets ?? []) {
          const metrics = metricsIn(expr);
          expect(metrics, `${file}: ${panel.title}: ${expr}`).to.not.be.empty;
          for (const metric of metrics) {
            const ok = known.has(baseName(metric)) || prometheusSeries.includes(metric);
            expect(ok, `${file}: ${panel.title}: unknown metric ${metric}`).to.equal(true);
          }
          for (const label of labelsIn(expr)) expect(knownLabels.has(label), `${file}: ${panel.title}: unknown label ${label}`).to.equal(true);
        }
      }
    }
  });

  it("covers RED per route and per RPC, sessions, events and dropped log lines", () => {
    const exprs = dashboards().flatMap(({ json }) => panelsOf(json.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr)));
    const queried = new Set(exprs.flatMap(metricsIn));
    for (const metric of [
      "http_requests_total",
      "http_request_duration_seconds_bucket",
      "grpc_server_handled_total",
      "grpc_server_handling_seconds_bucket",
      "sessions_created_total",
      "events_published_total",
      "events_consumed_total",
      "logs_dropped_total",
    ]) {
      expect(queried.has(metric), metric).to.equal(true);
    }
    expect(exprs.some((e) => e.includes('status=~"5.."'))).to.equal(true);
    expect(exprs.some((e) => e.includes("histogram_quantile(0.99") && e.includes("http_request_duration_seconds_bucket"))).to.equal(true);
    expect(exprs.some((e) => e.includes("histogram_quantile(0.5") && e.includes("http_request_duration_seconds_bucket"))).to.equal(true);
    expect(exprs.some((e) => /by \(grpc_service, grpc_method, grpc_code\)/.test(e))).to.equal(true);
  });

  it("keeps its list of wired metric names true to the source tree", () => {
    const files = ["internal", "services", "gateway"].flatMap((dir) => sourceFiles(join(repoRoot, dir)));
    const sources = files.map((file) => ({ file: relative(repoRoot, file), text: readFileSync(file, "utf8") }));
    for (const metric of Object.keys(wiredMetrics)) {
      expect(
        sources.some(({ text }) => text.includes(`"${metric}"`)),
        `${metric} is not registered anywhere under internal/, services/ or gateway/`,
      ).to.equal(true);
    }
  });
});
