// What the deploy files are checked against: the mesh's processes as the code defines them (entry
// point, zod config schema, config.yml) and the USERMESH_* variables each schema accepts.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import YAML from "yaml";
import type { z } from "zod";
import { configKeyPaths, envNameFor, loadConfig } from "../../internal/config/load-config.js";
import { repoRoot } from "../support/service-process.js";

export { repoRoot };

export type ProcessName = "session" | "user" | "photo" | "logs" | "gateway";

export interface MeshProcess {
  readonly name: ProcessName;
  /** Folder holding main.ts, config.ts and config.yml, relative to the repository root. */
  readonly dir: string;
  /** The compiled entry point the image runs (relative to its working directory, /app). */
  readonly entry: string;
  /** gRPC services are probed through grpc.health.v1; the gateway over HTTP. */
  readonly kind: "grpc" | "http";
  /** Stateless processes get a PodDisruptionBudget and a HorizontalPodAutoscaler; logs keeps files. */
  readonly stateless: boolean;
}

export const meshProcesses: readonly MeshProcess[] = [
  { name: "session", dir: "services/session", entry: "dist/services/session/main.js", kind: "grpc", stateless: true },
  { name: "user", dir: "services/user", entry: "dist/services/user/main.js", kind: "grpc", stateless: true },
  { name: "photo", dir: "services/photo", entry: "dist/services/photo/main.js", kind: "grpc", stateless: true },
  { name: "logs", dir: "services/logs", entry: "dist/services/logs/main.js", kind: "grpc", stateless: false },
  { name: "gateway", dir: "gateway", entry: "dist/gateway/main.js", kind: "http", stateless: true },
];

export function meshProcess(name: string): MeshProcess {
  const found = meshProcesses.find((p) => p.name === name);
  if (!found) throw new Error(`no mesh process called ${name}`);
  return found;
}

/** The process whose compiled entry point `command` runs (["node", "dist/…/main.js"]). */
export function processForCommand(command: unknown): MeshProcess | undefined {
  if (!Array.isArray(command)) return undefined;
  return meshProcesses.find((p) => command.length === 2 && command[0] === "node" && command[1] === p.entry);
}

/**
 * Whether the process's code is there yet (main.ts, config.ts, config.yml). A process still being
 * written is skipped by the checks that need its config, with a message saying so.
 */
export function isWritten(process: MeshProcess): boolean {
  return ["main.ts", "config.ts", "config.yml"].every((file) => existsSync(join(repoRoot, process.dir, file)));
}

export interface ProcessConfig {
  readonly schema: z.ZodObject;
  /** Absolute path of the process's config.yml. */
  readonly file: string;
  /** config.yml as parsed. */
  readonly yml: Record<string, unknown>;
  /** Every variable the schema reads, to the dotted key it sets (USERMESH_GRPC__PORT → grpc.port). */
  readonly envKeys: ReadonlyMap<string, string>;
}

const configs = new Map<ProcessName, Promise<ProcessConfig>>();

/** Loads the process's config schema from its config.ts (the exported object schema with an admin section). */
export function processConfig(process: MeshProcess): Promise<ProcessConfig> {
  let config = configs.get(process.name);
  if (!config) {
    config = readProcessConfig(process);
    configs.set(process.name, config);
  }
  return config;
}

async function readProcessConfig(process: MeshProcess): Promise<ProcessConfig> {
  const module = (await import(pathToFileURL(join(repoRoot, process.dir, "config.ts")).href)) as Record<string, unknown>;
  const candidates = Object.entries(module).filter(
    ([, value]) => isZodObject(value) && "admin" in (value._zod.def as z.core.$ZodObjectDef).shape,
  );
  const [, schema] = candidates.find(([name]) => name.endsWith("ConfigSchema")) ?? candidates[0] ?? [];
  if (!isZodObject(schema)) throw new Error(`${process.dir}/config.ts exports no config schema with an admin section`);
  const file = join(repoRoot, process.dir, "config.yml");
  const yml = YAML.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  const envKeys = new Map(configKeyPaths(schema).map((path) => [envNameFor(path), path.join(".")]));
  return { schema, file, yml, envKeys };
}

/**
 * The effective config of the process with `env` as its environment: config.yml, then the variables,
 * validated by the process's own loadConfig. Throws the ConfigError naming every bad key.
 */
export function effectiveConfig(config: ProcessConfig, env: Record<string, string>): Record<string, unknown> {
  return loadConfig(config.schema, { file: config.file, env });
}

/** The value at a dotted key of a config object (or of config.yml). */
export function valueAt(config: unknown, dotted: string): unknown {
  let current = config;
  for (const key of dotted.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** The ports the process listens on, from an (effective) config: gRPC or HTTP, and admin. */
export function portsOf(process: MeshProcess, config: unknown): { serving: number; admin: number } {
  const serving = valueAt(config, process.kind === "grpc" ? "grpc.port" : "http.port");
  const admin = valueAt(config, "admin.port");
  if (typeof serving !== "number" || typeof admin !== "number") throw new Error(`${process.name}: no ports in its config`);
  return { serving, admin };
}

/** The USERMESH_* names in `names` that no key of the schema reads (they would be silently ignored). */
export function unknownEnvNames(config: ProcessConfig, names: Iterable<string>): string[] {
  return [...names].filter((name) => name.startsWith("USERMESH_") && !config.envKeys.has(name));
}

function isZodObject(value: unknown): value is z.ZodObject {
  const zod = (value as { _zod?: { def?: { type?: string } } } | null)?._zod;
  return zod?.def?.type === "object";
}

/** Every YAML document of a file (multi-document manifests), empty ones left out. */
export function readYamlDocuments(file: string): unknown[] {
  return parseYamlDocuments(readFileSync(file, "utf8"), file);
}

/** Every YAML document of a text; throws naming `source` on a syntax error. */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  return YAML.parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return doc.toJS() as unknown;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

/** A YAML file with compose's merge keys (`<<: *anchor`) applied. */
export function readYamlWithMerges(file: string): unknown {
  return YAML.parse(readFileSync(file, "utf8"), { merge: true });
}
