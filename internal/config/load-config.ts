// Loads a process's config once at start: schema defaults, then config.yml, then environment overrides,
// validated by the schema into a deep-frozen object.
/**
 * Environment overrides. Every key of the schema, nested ones included, can be set by an environment
 * variable named: the prefix (`USERMESH_`), then each key of the path in UPPER_SNAKE_CASE, the keys
 * joined by a DOUBLE underscore.
 *
 *     grpc.port          -> USERMESH_GRPC__PORT
 *     session.ttlSeconds -> USERMESH_SESSION__TTL_SECONDS
 *     redis.url          -> USERMESH_REDIS__URL
 *
 * A value is read as a YAML scalar: "5000" is a number, "true" a boolean, "[a, b]" a list. When that
 * reading does not fit the key's type but the raw text does (a password "123456" for a string key), or
 * YAML cannot parse it, the raw text is used.
 */
import { readFileSync } from "node:fs";
import YAML from "yaml";
import { z } from "zod";

export { redactConfig } from "./redact-config.js";

/** The config could not be loaded; the message names every bad key (and its env var), one per line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface LoadConfigOptions {
  /** Path of the YAML file holding the values. Undefined means no file; a path that does not exist is an error. */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to "USERMESH_". */
  envPrefix?: string;
}

const defaultPrefix = "USERMESH_";

/**
 * Builds the process's config from `schema`'s defaults, the YAML file and the environment, and returns it
 * deep-frozen.
 *
 * Throws ConfigError when the file is missing, unreadable or not a YAML mapping, or when validation
 * fails; the message then holds one line per problem naming the dotted key (and the env var when the
 * value came from the environment). Unknown keys are rejected only where the schema uses strict objects.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, options: LoadConfigOptions = {}): Readonly<z.infer<S>> {
  const prefix = options.envPrefix ?? defaultPrefix;
  const env = options.env ?? process.env;
  const raw = options.file === undefined ? {} : readYamlFile(options.file);
  const { leaves, objects } = mapSchema(schema);

  const envSources = new Map<string, string>();
  for (const leaf of leaves) {
    const name = envNameFor(leaf.path, prefix);
    const text = env[name];
    if (text === undefined) continue;
    setAt(raw, leaf.path, envValue(text, leaf.schema));
    envSources.set(leaf.path.join("."), name);
  }
  // A required section absent from the file becomes {} so its defaults apply and a missing leaf is
  // reported by its own key ("grpc.port") rather than as a missing section.
  for (const object of objects) {
    const parent = getAt(raw, object.path.slice(0, -1));
    if (object.required && isRecord(parent) && parent[object.path.at(-1)!] === undefined) {
      parent[object.path.at(-1)!] = {};
    }
  }

  const result = z.safeParse(schema, raw);
  if (!result.success) {
    const leafPaths = new Set(leaves.map((leaf) => leaf.path.join(".")));
    const lines = result.error.issues.flatMap((issue) =>
      describeIssue(issue, { raw, envSources, leafPaths, prefix, file: options.file }),
    );
    throw new ConfigError(lines.join("\n"));
  }
  return deepFreeze(result.data);
}

/**
 * The environment variable that overrides the key at `path`: `envNameFor(["session", "ttlSeconds"])` is
 * "USERMESH_SESSION__TTL_SECONDS". Characters other than letters and digits become "_".
 */
export function envNameFor(path: readonly string[], prefix: string = defaultPrefix): string {
  return prefix + path.map(upperSnake).join("__");
}

function upperSnake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .toUpperCase();
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const problem = code === "ENOENT" ? "not found" : `cannot be read (${code ?? String(cause)})`;
    throw new ConfigError(`config file "${file}" ${problem}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file "${file}" is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isRecord(parsed)) throw new ConfigError(`config file "${file}" must hold a mapping of keys at the top level`);
  return parsed;
}

function envValue(text: string, schema: z.core.$ZodType): unknown {
  let parsed: unknown;
  try {
    parsed = YAML.parse(text, { logLevel: "error" });
  } catch {
    return text;
  }
  if (z.safeParse(schema, parsed).success || !z.safeParse(schema, text).success) return parsed;
  return text;
}

/**
 * Every key path an environment variable can set: the schema's leaves, nested objects walked through
 * their wrappers (optional, default, prefault, pipe…) as loadConfig walks them.
 */
export function configKeyPaths(schema: z.core.$ZodType): string[][] {
  return mapSchema(schema).leaves.map((leaf) => leaf.path);
}

interface SchemaMap {
  /** Every key that is not itself an object, with its schema (wrappers included). */
  leaves: { path: string[]; schema: z.core.$ZodType }[];
  /** Every nested object, parents before children; required when no optional/default wrapper holds it. */
  objects: { path: string[]; required: boolean }[];
}

function mapSchema(root: z.core.$ZodType): SchemaMap {
  const map: SchemaMap = { leaves: [], objects: [] };
  const walk = (schema: z.core.$ZodType, path: string[]): void => {
    const { inner, required } = unwrap(schema);
    const def = inner._zod.def;
    if (def.type !== "object") {
      map.leaves.push({ path, schema });
      return;
    }
    if (path.length > 0) map.objects.push({ path, required });
    for (const [key, child] of Object.entries((def as z.core.$ZodObjectDef).shape)) walk(child, [...path, key]);
  };
  walk(root, []);
  return map;
}

/** Peels wrappers off a schema to reach the type that gives it its shape. */
function unwrap(schema: z.core.$ZodType): { inner: z.core.$ZodType; required: boolean } {
  let inner = schema;
  let required = true;
  for (;;) {
    const def = inner._zod.def;
    switch (def.type) {
      case "optional":
      case "nullable":
      case "default":
      case "prefault":
      case "catch":
        required = false;
        inner = (def as z.core.$ZodOptionalDef).innerType;
        break;
      case "readonly":
      case "nonoptional":
        inner = (def as z.core.$ZodReadonlyDef).innerType;
        break;
      case "pipe": {
        // z.preprocess(fn, schema) holds the shape on its output side, x.transform(fn) on its input side.
        const pipe = def as z.core.$ZodPipeDef;
        inner = pipe.in._zod.def.type === "transform" ? pipe.out : pipe.in;
        break;
      }
      default:
        return { inner, required };
    }
  }
}

interface IssueContext {
  raw: Record<string, unknown>;
  envSources: Map<string, string>;
  leafPaths: Set<string>;
  prefix: string;
  file: string | undefined;
}

function describeIssue(issue: z.core.$ZodIssue, context: IssueContext): string[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `config key "${[...path, key].join(".")}": unknown key, not in the schema`);
  }
  const key = path.join(".");
  return [`config key "${key || "(root)"}": ${issue.message}${sourceHint(path, context)}`];
}

function sourceHint(path: string[], context: IssueContext): string {
  // The value may sit inside one set from the environment (a list element, say): find that variable.
  for (let length = path.length; length > 0; length--) {
    const name = context.envSources.get(path.slice(0, length).join("."));
    if (name) return ` (set by ${name})`;
  }
  if (getAt(context.raw, path) === undefined && context.leafPaths.has(path.join("."))) {
    const envName = envNameFor(path, context.prefix);
    return context.file === undefined ? ` (set it with ${envName})` : ` (set it in ${context.file} or with ${envName})`;
  }
  return "";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function getAt(root: unknown, path: readonly string[]): unknown {
  let current = root;
  for (const key of path) {
    if (!isRecord(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** Sets a value deep in `root`, creating (or replacing non-object) parents on the way. */
function setAt(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let current = root;
  for (const key of path.slice(0, -1)) {
    const next = current[key];
    if (isRecord(next)) {
      current = next;
    } else {
      const created: Record<string, unknown> = {};
      current[key] = created;
      current = created;
    }
  }
  current[path.at(-1)!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
