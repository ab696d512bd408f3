// deploy/k8s/base, checked without a cluster: every object valid against the Kubernetes schemas (unknown
// fields included), the kustomization complete, and each Deployment consistent with the code (entry
// point, ports, gRPC/HTTP health, USERMESH_* variables, writable paths) and with its Service, PDB and HPA.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { kubernetesProblems } from "./kubernetes-schema.js";
import {
  effectiveConfig,
  isWritten,
  meshProcesses,
  parseYamlDocuments,
  portsOf,
  processConfig,
  processForCommand,
  readYamlDocuments,
  repoRoot,
  unknownEnvNames,
  valueAt,
  type MeshProcess,
} from "./mesh-config.js";

interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  [field: string]: unknown;
}
interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number;
    strategy?: { type?: string };
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: Metadata;
      spec: {
        containers: Container[];
        securityContext?: Record<string, unknown>;
        terminationGracePeriodSeconds?: number;
        volumes?: { name: string }[];
      };
    };
  };
}

const baseDir = join(repoRoot, "deploy/k8s/base");
const kustomization = readYamlDocuments(join(baseDir, "kustomization.yaml"))[0] as {
  namespace?: string;
  resources?: string[];
};
const manifestFiles = (kustomization.resources ?? []).map((file) => join(baseDir, file));
const objects = manifestFiles.flatMap((file) => readYamlDocuments(file) as K8sObject[]);

const ofKind = <T extends K8sObject = K8sObject>(kind: string) => objects.filter((o) => o.kind === kind) as T[];
const named = <T extends K8sObject = K8sObject>(kind: string, name: string) => ofKind<T>(kind).find((o) => o.metadata.name === name);
const deployments = ofKind<Deployment>("Deployment");

function deploymentFor(process: MeshProcess): { deployment: Deployment; container: Container } {
  for (const deployment of deployments) {
    const container = deployment.spec.template.spec.containers.find((c) => processForCommand(c.command) === process);
    if (container) return { deployment, container };
  }
  throw new Error(`no Deployment runs ${process.entry}`);
}

/** The environment the container gets, Secret values included (optional keys that are absent left out). */
function environmentOf(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, configMapData(source.configMapRef.name));
    if (source.secretRef) Object.assign(env, secretData(source.secretRef.name));
  }
  for (const variable of container.env ?? []) {
    const secretRef = variable.valueFrom?.secretKeyRef;
    const configMapRef = variable.valueFrom?.configMapKeyRef;
    const value = secretRef
      ? secretData(secretRef.name)[secretRef.key]
      : configMapRef
        ? configMapData(configMapRef.name)[configMapRef.key]
        : variable.value;
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}

function configMapData(name: string): Record<string, string> {
  const configMap = named("ConfigMap", name);
  if (!configMap) throw new Error(`no ConfigMap ${name}`);
  return (configMap.data ?? {}) as Record<string, string>;
}

function secretData(name: string): Record<string, string> {
  const secret = named("Secret", name);
  if (!secret) throw new Error(`no Secret ${name}`);
  return (secret.stringData ?? {}) as Record<string, string>;
}

/** Every variable name the container may get: its env entries and the keys of the ConfigMaps it loads. */
function variableNames(container: Container): string[] {
  const fromConfigMaps = (container.envFrom ?? []).flatMap((s) => (s.configMapRef ? Object.keys(configMapData(s.configMapRef.name)) : []));
  return [...fromConfigMaps, ...(container.env ?? []).map((v) => v.name)];
}

/** A probe's port as a number: named ports resolve through the container's ports. */
function probePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

function hasKubectl(): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function skipUnlessWritten(context: Mocha.Context, process: MeshProcess): void {
  if (!isWritten(process)) {
    console.warn(`      (skipped: ${process.dir} has no main.ts/config.ts/config.yml yet)`);
    context.skip();
  }
}

describe("deploy/k8s/base", () => {
  it("lists every manifest of the folder in its kustomization, and the namespace it declares", () => {
    const files = readdirSync(baseDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect(kustomization.resources).to.have.members(files);
    expect(named("Namespace", kustomization.namespace ?? "")).to.not.equal(undefined);
  });

  it("holds only objects valid against the Kubernetes schemas, with no unknown field", () => {
    expect(objects.length).to.be.greaterThan(20);
    for (const object of objects) {
      expect(kubernetesProblems(object), `${object.kind} ${object.metadata?.name}`).to.deep.equal([]);
    }
  });

  it("is checked by a validator that rejects a misspelt field and a wrongly typed value", () => {
    const deployment = structuredClone(deployments[0]) as unknown as { spec: Record<string, unknown> };
    deployment.spec.replica = 3;
    expect(kubernetesProblems(deployment as unknown as K8sObject)).to.deep.equal(["/spec/replica: unknown field"]);
    const mistyped = structuredClone(deployments[0]);
    mistyped.spec.template.spec.containers[0].ports![0].containerPort = "50052" as unknown as number;
    expect(kubernetesProblems(mistyped)).to.have.length(1);
  });

  it("renders with kustomize into the same valid objects, all in the usermesh namespace", function () {
    if (!hasKubectl()) {
      console.warn("      (skipped: kubectl is not installed, so `kubectl kustomize` cannot render the base)");
      this.skip();
    }
    const rendered = execFileSync("kubectl", ["kustomize", baseDir], { encoding: "utf8" });
    const docs = parseYamlDocuments(rendered, "kubectl kustomize") as K8sObject[];
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).to.have.members(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const doc of docs) {
      expect(kubernetesProblems(doc), `${doc.kind} ${doc.metadata.name}`).to.deep.equal([]);
      if (doc.kind !== "Namespace") expect(doc.metadata.namespace, `${doc.kind} ${doc.metadata.name}`).to.equal("usermesh");
    }
  });

  it("runs each of the five processes in its own Deployment, from the image built by deploy/Dockerfile", () => {
    expect(deployments.map((d) => processForCommand(d.spec.template.spec.containers[0].command)?.name)).to.have.members(
      meshProcesses.map((p) => p.name),
    );
    for (const deployment of deployments) {
      expect(deployment.spec.template.spec.containers.map((c) => c.image)).to.deep.equal(["usermesh"]);
      expect(selects(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels), deployment.metadata.name).to.equal(true);
    }
  });

  it("keeps credentials in one Secret whose values are all marked placeholders", () => {
    const secrets = ofKind("Secret");
    expect(secrets).to.have.length(1);
    const values = Object.values((secrets[0].stringData ?? {}) as Record<string, string>);
    expect(values).to.not.be.empty;
    for (const value of values) expect(value).to.include("CHANGE-ME");
    // No URL with credentials outside it.
    for (const configMap of ofKind("ConfigMap")) {
      for (const value of Object.values((configMap.data ?? {}) as Record<string, string>)) expect(value).to.not.match(/:\/\/[^/]*@/);
    }
  });

  it("points every Secret and ConfigMap reference at a key that exists (unless marked optional)", () => {
    for (const deployment of deployments) {
      for (const container of deployment.spec.template.spec.containers) {
        for (const source of container.envFrom ?? []) {
          if (source.configMapRef) expect(named("ConfigMap", source.configMapRef.name), source.configMapRef.name).to.not.equal(undefined);
          if (source.secretRef) expect(named("Secret", source.secretRef.name), source.secretRef.name).to.not.equal(undefined);
        }
        for (const variable of container.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
          if (!ref || ref.optional) continue;
          const data = variable.valueFrom?.secretKeyRef ? secretData(ref.name) : configMapData(ref.name);
          expect(data, `${deployment.metadata.name}: ${variable.name}`).to.have.property(ref.key);
        }
      }
    }
  });

  for (const process of meshProcesses) {
    describe(process.name, () => {
      it("sets only USERMESH_* variables its config schema reads, and its config loads with them", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { container } = deploymentFor(process);
        expect(unknownEnvNames(config, variableNames(container))).to.deep.equal([]);
        expect(() => effectiveConfig(config, environmentOf(container))).to.not.throw();
      });

      it("exposes the ports of its config.yml, through a Service of the same name", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { deployment, container } = deploymentFor(process);
        const defaults = portsOf(process, config.yml);
        expect(portsOf(process, effectiveConfig(config, environmentOf(container))), "no port moved away from config.yml").to.deep.equal(defaults);
        const servingName = process.kind === "grpc" ? "grpc" : "http";
        expect(container.ports?.map((p) => [p.name, p.containerPort])).to.have.deep.members([
          [servingName, defaults.serving],
          ["admin", defaults.admin],
        ]);
        const service = named("Service", deployment.metadata.name);
        expect(service, `Service ${deployment.metadata.name}`).to.not.equal(undefined);
        const spec = service!.spec as { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
        expect(selects(spec.selector, deployment.spec.template.metadata.labels)).to.equal(true);
        expect(spec.ports.map((p) => [p.port, probePort(container, p.targetPort)])).to.have.deep.members([
          [defaults.serving, defaults.serving],
          [defaults.admin, defaults.admin],
        ]);
      });

      it("is probed on its health endpoints: gRPC health (or /readyz) for readiness, /healthz for liveness", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { container } = deploymentFor(process);
        const ports = portsOf(process, config.yml);
        const { readinessProbe, livenessProbe, startupProbe } = container;
        if (process.kind === "grpc") {
          expect(readinessProbe?.grpc?.port).to.equal(ports.serving);
        } else {
          expect(readinessProbe?.httpGet?.path).to.equal("/readyz");
          expect(probePort(container, readinessProbe?.httpGet?.port)).to.be.oneOf([ports.admin, ports.serving]);
        }
        // Liveness must not follow the dependencies (gRPC health and /readyz do): /healthz on the admin port.
        for (const probe of [livenessProbe, startupProbe]) {
          expect(probe?.httpGet?.path).to.equal("/healthz");
          expect(probePort(container, probe?.httpGet?.port)).to.equal(ports.admin);
        }
      });

      it("has its metrics scraped from its admin port", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { deployment } = deploymentFor(process);
        expect(deployment.spec.template.metadata.annotations).to.deep.include({
          "prometheus.io/scrape": "true",
          "prometheus.io/port": String(portsOf(process, config.yml).admin),
          "prometheus.io/path": "/metrics",
        });
      });

      it("gets longer to stop than the preStop pause plus its shutdown grace period", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { deployment, container } = deploymentFor(process);
        const graceMs = valueAt(effectiveConfig(config, environmentOf(container)), "shutdown.graceMs") as number;
        const pause = container.lifecycle?.preStop?.exec?.command;
        const pauseMs = pause?.[0] === "sleep" ? Number(pause[1]) * 1000 : 0;
        expect((deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000).to.be.greaterThan(pauseMs + graceMs);
      });

      it("runs as non-root on a read-only root filesystem, writing only to mounted volumes", async function () {
        skipUnlessWritten(this, process);
        const config = await processConfig(process);
        const { deployment, container } = deploymentFor(process);
        const pod = deployment.spec.template.spec;
        expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 1000 });
        expect(container.securityContext).to.deep.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
        expect(container.securityContext?.capabilities?.drop).to.deep.equal(["ALL"]);
        // Every directory the config names (storage.local.dir, upload.tempDir, the logs directory…) must
        // sit on a mounted volume, or the process fails on its first write.
        const effective = effectiveConfig(config, environmentOf(container));
        const mounts = (container.volumeMounts ?? []).map((m) => m.mountPath);
        const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
        for (const mount of container.volumeMounts ?? []) expect(volumes.has(mount.name), mount.name).to.equal(true);
        for (const key of config.envKeys.values()) {
          if (!/dir$/i.test(key)) continue;
          if (key === "storage.local.dir" && valueAt(effective, "storage.backend") !== "local") continue;
          const dir = valueAt(effective, key);
          expect(dir, key).to.be.a("string");
          expect(
            mounts.some((m) => dir === m || (dir as string).startsWith(`${m}/`)),
            `${key} = ${String(dir)} is not on a volume (mounts: ${mounts.join(", ") || "none"})`,
          ).to.equal(true);
        }
      });

      it("requests and limits CPU and memory", () => {
        const { container } = deploymentFor(process);
        for (const section of [container.resources?.requests, container.resources?.limits]) {
          expect(section).to.have.all.keys("cpu", "memory");
        }
      });

      if (process.stateless) {
        it("is kept available by a PodDisruptionBudget and scaled by a HorizontalPodAutoscaler", () => {
          const { deployment } = deploymentFor(process);
          const labels = deployment.spec.template.metadata.labels;
          const pdb = ofKind("PodDisruptionBudget").find((o) =>
            selects((o.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, labels),
          );
          expect(pdb, "PodDisruptionBudget").to.not.equal(undefined);
          const hpa = ofKind("HorizontalPodAutoscaler").find(
            (o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === deployment.metadata.name,
          );
          expect(hpa, "HorizontalPodAutoscaler").to.not.equal(undefined);
          const { minReplicas, scaleTargetRef } = hpa!.spec as { minReplicas: number; scaleTargetRef: { kind: string } };
          expect(scaleTargetRef.kind).to.equal("Deployment");
          // A drain must be able to evict one pod: minAvailable stays below the smallest replica count.
          expect((pdb!.spec as { minAvailable: number }).minAvailable).to.be.below(minReplicas);
        });
      } else {
        it("runs as a single replica (Recreate) with no PodDisruptionBudget or autoscaler", () => {
          const { deployment } = deploymentFor(process);
          expect(deployment.spec.replicas).to.equal(1);
          expect(deployment.spec.strategy?.type).to.equal("Recreate");
          const labels = deployment.spec.template.metadata.labels;
          expect(
            ofKind("PodDisruptionBudget").filter((o) =>
              selects((o.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, labels),
            ),
          ).to.deep.equal([]);
          expect(
            ofKind("HorizontalPodAutoscaler").filter((o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === deployment.metadata.name),
          ).to.deep.equal([]);
        });
      }
    });
  }

  it("addresses every upstream (host:port in the config) by a Service that exposes that port", () => {
    for (const deployment of deployments) {
      for (const container of deployment.spec.template.spec.containers) {
        for (const value of Object.values(environmentOf(container))) {
          const match = /^([a-z0-9-]+):(\d+)$/.exec(value);
          if (!match) continue;
          const service = named("Service", match[1]);
          expect(service, `${deployment.metadata.name}: ${value}`).to.not.equal(undefined);
          const ports = (service!.spec as { ports: { port: number }[] }).ports.map((p) => p.port);
          expect(ports, `${deployment.metadata.name}: ${value}`).to.include(Number(match[2]));
        }
      }
    }
  });

  it("claims the volumes the Deployments mount", () => {
    for (const deployment of deployments) {
      for (const volume of deployment.spec.template.spec.volumes ?? []) {
        const claim = (volume as { persistentVolumeClaim?: { claimName: string } }).persistentVolumeClaim?.claimName;
        if (claim) expect(named("PersistentVolumeClaim", claim), claim).to.not.equal(undefined);
      }
    }
  });
});
