// docker-compose.yml, checked without Docker: valid against the Compose Specification's JSON schema,
// and consistent with the code (entry points, USERMESH_* variables, ports, health checks, volumes).
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Ajv } from "ajv";
import {
  effectiveConfig,
  isWritten,
  meshProcess,
  meshProcesses,
  portsOf,
  processConfig,
  processForCommand,
  readYamlWithMerges,
  repoRoot,
  unknownEnvNames,
  valueAt,
  type MeshProcess,
} from "./mesh-config.js";

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  command?: unknown;
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: unknown };
  stop_grace_period?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const composeFile = join(repoRoot, "docker-compose.yml");
const compose = readYamlWithMerges(composeFile) as ComposeFile;

/** The compose-spec JSON schema (draft-07) as shipped in the dclint package. */
function composeSpecValidator() {
  const require = createRequire(import.meta.url);
  const schemaFile = join(dirname(require.resolve("dclint/package.json")), "schemas", "compose.schema.json");
  const { $schema, ...schema } = JSON.parse(readFileSync(schemaFile, "utf8")) as Record<string, unknown>;
  // The file names draft-07 by its https URL, which Ajv registers as http://json-schema.org/draft-07/schema#.
  expect($schema).to.match(/draft-07/);
  // strict: false because the official schema uses union types and keywords Ajv's strict mode frowns on.
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

function serviceFor(process: MeshProcess): [string, ComposeService] {
  const found = Object.entries(compose.services).find(([, service]) => processForCommand(service.command) === process);
  if (!found) throw new Error(`no compose service runs ${process.entry}`);
  return found;
}

function environmentOf(service: ComposeService): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, String(value)]));
}

/** The service's named-volume mounts: container path → volume name. */
function namedMounts(service: ComposeService): Map<string, string> {
  return new Map(
    (service.volumes ?? [])
      .map((spec) => spec.split(":"))
      .filter(([source]) => source in (compose.volumes ?? {}))
      .map(([source, target]) => [target, source]),
  );
}

/** "127.0.0.1:9092:9092" or "8080:8080" → the container port. */
function targetPort(mapping: string): number {
  return Number(mapping.split(":").at(-1)?.split("/")[0]);
}

/** Compose durations: "15s", "1m30s", "500ms". */
function durationMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  expect(parts.map((p) => p[0]).join(""), `duration ${text}`).to.equal(text);
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * units[unit], 0);
}

/** The compose services an environment value points at: redis://redis:6379, session:50052, … */
function servicesNamedIn(value: string): string[] {
  const hosts = [...value.matchAll(/(?:^|\/\/(?:[^@/]*@)?)([a-z][a-z0-9-]*):\d+/g)].map((m) => m[1]);
  return hosts.filter((host) => host in compose.services);
}

function skipUnlessWritten(context: Mocha.Context, process: MeshProcess): void {
  if (!isWritten(process)) {
    console.warn(`      (skipped: ${process.dir} has no main.ts/config.ts/config.yml yet)`);
    context.skip();
  }
}

describe("docker-compose.yml", () => {
  it("is valid against the Compose Specification JSON schema", () => {
    const validate = composeSpecValidator();
    const valid = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).to.deep.equal([]);
    expect(valid).to.equal(true);
  });

  it("is checked by a validator that rejects a misspelt key and a wrongly typed value", () => {
    const validate = composeSpecValidator();
    const misspelt = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    misspelt.services.session.helthcheck = { test: ["CMD", "true"] };
    expect(validate(misspelt)).to.equal(false);
    const mistyped = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    mistyped.services.session.depends_on = { redis: { condition: "when_it_feels_like_it" } };
    expect(validate(mistyped)).to.equal(false);
  });

  it("runs PostgreSQL 15, Redis 7 and RabbitMQ 3 with the management UI, each with a health check", () => {
    const { postgres, redis, rabbitmq } = compose.services;
    expect(postgres?.image).to.equal("postgres:15");
    expect(redis?.image).to.equal("redis:7");
    expect(rabbitmq?.image).to.equal("rabbitmq:3-management");
    expect((rabbitmq?.ports ?? []).map(targetPort)).to.include(15672);
    for (const store of [postgres, redis, rabbitmq]) expect(store?.healthcheck?.test).to.be.an("array");
  });

  it("runs each of the five processes from the one image built by deploy/Dockerfile", () => {
    for (const process of meshProcesses) {
      const [, service] = serviceFor(process);
      expect(service.build, process.name).to.deep.equal({ context: ".", dockerfile: "deploy/Dockerfile" });
      expect(service.image, process.name).to.equal("usermesh:latest");
    }
    expect(existsSync(join(repoRoot, "deploy/Dockerfile"))).to.equal(true);
    const usermeshServices = Object.values(compose.services).filter((s) => s.image === "usermesh:latest");
    expect(usermeshServices.map((s) => processForCommand(s.command)?.name)).to.have.members(meshProcesses.map((p) => p.name));
  });

  it("starts every process after the services its environment points at are healthy", () => {
    for (const process of meshProcesses) {
      const [name, service] = serviceFor(process);
      const needed = new Set(Object.values(environmentOf(service)).flatMap(servicesNamedIn));
      expect(needed.size, `${name} points at no store`).to.be.greaterThan(0);
      for (const dependency of needed) {
        expect(service.depends_on?.[dependency]?.condition, `${name} → ${dependency}`).to.equal("service_healthy");
      }
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dependency], `${name} depends on unknown ${dependency}`).to.not.equal(undefined);
        if (condition === "service_healthy") expect(compose.services[dependency].healthcheck, dependency).to.not.equal(undefined);
      }
    }
  });

  for (const process of meshProcesses) {
    describe(process.name, () => {
      it("sets only USERMESH_* variables its config schema reads, and its config loads with them", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const [, service] = serviceFor(process);
        const env = environmentOf(service);
        expect(unknownEnvNames(config, Object.keys(env))).to.deep.equal([]);
        expect(() => effectiveConfig(config, env)).to.not.throw();
      });

      it("publishes the ports of its config.yml and is healthy when its admin /readyz answers 200", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const [, service] = serviceFor(process);
        const defaults = portsOf(process, config.yml);
        const effective = portsOf(process, effectiveConfig(config, environmentOf(service)));
        expect(effective, "compose must not move a port away from config.yml").to.deep.equal(defaults);
        expect((service.ports ?? []).map(targetPort)).to.have.members([defaults.serving, defaults.admin]);
        const test = service.healthcheck?.test;
        expect(test).to.be.an("array");
        const script = (test as string[]).join(" ");
        expect(script).to.include(`http://127.0.0.1:${defaults.admin}/readyz`);
        expect(script).to.match(/process\.exit\(r\.ok\?0:1\)/);
      });

      it("runs on a read-only root filesystem, every directory its config names on a volume or tmpfs", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const [name, service] = serviceFor(process);
        expect(service.read_only, name).to.equal(true);
        const mounts = [...(service.volumes ?? []).map((spec) => spec.split(":")[1]), ...(service.tmpfs ?? [])];
        const effective = effectiveConfig(config, environmentOf(service));
        for (const key of config.envKeys.values()) {
          if (!/dir$/i.test(key)) continue;
          if (key === "storage.local.dir" && valueAt(effective, "storage.backend") !== "local") continue;
          const dir = valueAt(effective, key) as string;
          expect(
            mounts.some((m) => dir === m || dir.startsWith(`${m}/`)),
            `${name}: ${key} = ${dir} is not on a volume (mounts: ${mounts.join(", ")})`,
          ).to.equal(true);
        }
      });

      it("is given longer to stop than its shutdown grace period", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const [, service] = serviceFor(process);
        const graceMs = valueAt(effectiveConfig(config, environmentOf(service)), "shutdown.graceMs");
        expect(service.stop_grace_period).to.be.a("string");
        expect(durationMs(service.stop_grace_period!)).to.be.greaterThan(graceMs as number);
      });
    });
  }

  it("keeps the photo blobs and the log files on named volumes, where the config points", async () => {
    const persistent = [
      { process: meshProcess("photo"), key: "storage.local.dir" },
      { process: meshProcess("logs"), key: "storage.dir" },
    ];
    for (const { process, key } of persistent.filter((p) => isWritten(p.process))) {
      const [name, service] = serviceFor(process);
      const effective = effectiveConfig(await processConfig(process), environmentOf(service));
      if (process.name === "photo") expect(valueAt(effective, "storage.backend")).to.equal("local");
      const dir = valueAt(effective, key) as string;
      expect(namedMounts(service).get(dir), `${name}: ${key} = ${dir} is not a named volume's mount point`).to.be.a("string");
    }
  });

  it("runs Prometheus v2.42 on deploy/prometheus.yml and Grafana provisioned from deploy/grafana", () => {
    const { prometheus, grafana } = compose.services;
    expect(prometheus?.image).to.equal("prom/prometheus:v2.42.0");
    expect(prometheus?.volumes).to.include("./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro");
    expect(grafana?.image).to.match(/^grafana\/grafana:/);
    expect(grafana?.volumes).to.include("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro");
    for (const service of Object.values(compose.services)) {
      for (const [source] of (service.volumes ?? []).map((spec) => spec.split(":"))) {
        if (source.startsWith(".")) expect(existsSync(join(repoRoot, source)), source).to.equal(true);
      }
    }
  });

  it("declares every named volume it mounts", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [source] of (service.volumes ?? []).map((spec) => spec.split(":"))) {
        if (!source.startsWith(".") && !source.startsWith("/")) expect(compose.volumes, `${name}: ${source}`).to.have.property(source);
      }
    }
  });
});
