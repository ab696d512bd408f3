// Validates Kubernetes objects offline against the API's own schemas, as packaged by kubernetes-models
// (ajv validators generated from the Kubernetes OpenAPI document, one per kind and version).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

interface SchemaError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: unknown;
}
type ValidateFunction = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

const require = createRequire(import.meta.url);
const schemasDir = join(dirname(require.resolve("kubernetes-models/package.json")), "_schemas");

/** "apps/v1" + "Deployment" → IoK8sApiAppsV1Deployment; "v1" + "Service" → IoK8sApiCoreV1Service. */
export function schemaNameFor(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const groupName = group.replace(/\.k8s\.io$/, "").split(".")[0];
  const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  return `IoK8sApi${capital(groupName)}${capital(version)}${kind}`;
}

function validatorFor(apiVersion: string, kind: string): ValidateFunction {
  const file = join(schemasDir, `${schemaNameFor(apiVersion, kind)}.js`);
  if (!existsSync(file)) throw new Error(`no Kubernetes schema for ${apiVersion} ${kind} (looked for ${file})`);
  // The package's exports map hides _schemas/; the CommonJS file itself loads fine by path.
  return (require(file) as { validate: ValidateFunction }).validate;
}

/**
 * Everything wrong with `object` for its apiVersion and kind: schema violations (types, required
 * fields, enums, formats) and, like `kubectl --validate=strict`, fields the schema does not know.
 *
 * The generated validators allow unknown fields, so the object is wrapped in proxies that record
 * which keys the validator reads: a validator reads every field it knows (and iterates maps such as
 * labels), so a key it never touched is one the schema does not define.
 */
export function kubernetesProblems(object: { apiVersion?: unknown; kind?: unknown }): string[] {
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") return ["apiVersion and kind are required"];
  const validate = validatorFor(object.apiVersion, object.kind);
  // One proxy and one set of read keys per object, however often the validator reaches it.
  const tracked = new Map<object, { path: string; proxy: object; keys: Set<string> }>();
  const track = (value: unknown, path: string): unknown => {
    if (typeof value !== "object" || value === null) return value;
    const known = tracked.get(value);
    if (known) return known.proxy;
    const keys = new Set<string>();
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        const child: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== "string") return child;
        keys.add(key);
        return track(child, `${path}/${key}`);
      },
      ownKeys(target) {
        for (const key of Reflect.ownKeys(target)) if (typeof key === "string") keys.add(key);
        return Reflect.ownKeys(target);
      },
    });
    tracked.set(value, { path, proxy, keys });
    return proxy;
  };
  const valid = validate(track(object, ""));
  const problems = valid ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.keyword} ${JSON.stringify(e.params)}`);
  for (const [value, { path, keys }] of tracked) {
    if (Array.isArray(value)) continue;
    for (const key of Object.keys(value)) if (!keys.has(key)) problems.push(`${path}/${key}: unknown field`);
  }
  return problems;
}
