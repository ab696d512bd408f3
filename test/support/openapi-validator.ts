// Checks HTTP responses against the gateway's OpenAPI 3.1 document: the route and status must be
// documented, the content type listed, and a JSON body must match its schema (ajv, JSON Schema 2020-12).
import { readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";

export interface OpenApiValidator {
  /**
   * The documented path template (e.g. "/users/{id}") that serves `method` on `concretePath` (query and
   * fragment ignored; HEAD falls back to GET). Literal segments win over parameters. Undefined if none.
   */
  matchRoute(method: string, concretePath: string): string | undefined;
  /**
   * Throws an Error naming the route, status and every mismatch when the response is not what the
   * document promises: undocumented route or status, a body where none is documented, an unlisted
   * content type, or a JSON body (object, string or Buffer) that fails its schema. Bodies of other
   * media types (images, HTML) are checked for their content type only.
   */
  validateResponse(
    method: string,
    pathTemplateOrConcretePath: string,
    status: number,
    contentType: string | null | undefined,
    body: unknown,
  ): void;
}

type Json = Record<string, unknown>;

const componentsId = "urn:usermesh:openapi:components";

/** Loads the document (YAML or JSON) now; schemas compile on first use and are cached. */
export function createOpenApiValidator(documentPath: string): OpenApiValidator {
  const document = parse(readFileSync(documentPath, "utf8")) as Json;
  const paths = (document["paths"] ?? {}) as Record<string, Json>;

  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormatsModule.default(ajv);
  // The OpenAPI 3.1 dialect's own keywords, which carry no validation.
  ajv.addVocabulary(["discriminator", "xml", "externalDocs", "example"]);
  const schemas = ((document["components"] as Json | undefined)?.["schemas"] ?? {}) as Json;
  ajv.addSchema({ $id: componentsId, $defs: rewriteRefs(schemas) });
  // Compile the components now, so a schema ajv cannot read fails here rather than mid-test.
  ajv.getSchema(componentsId);

  const routes = Object.keys(paths)
    .map((template) => ({ template, pattern: templatePattern(template), literals: literalSegments(template) }))
    .sort((a, b) => b.literals - a.literals);

  const compiled = new Map<string, ValidateFunction>();
  const validatorFor = (key: string, schema: unknown): ValidateFunction => {
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(rewriteRefs(schema) as Json);
      compiled.set(key, validate);
    }
    return validate;
  };

  const operationOf = (template: string, method: string): Json | undefined => {
    const item = paths[template];
    const lower = method.toLowerCase();
    return (item?.[lower] ?? (lower === "head" ? item?.["get"] : undefined)) as Json | undefined;
  };

  function matchRoute(method: string, concretePath: string): string | undefined {
    const path = concretePath.split(/[?#]/, 1)[0];
    return routes.find((r) => r.pattern.test(path) && operationOf(r.template, method))?.template;
  }

  function validateResponse(
    method: string,
    pathTemplateOrConcretePath: string,
    status: number,
    contentType: string | null | undefined,
    body: unknown,
  ): void {
    const template = paths[pathTemplateOrConcretePath] ? pathTemplateOrConcretePath : matchRoute(method, pathTemplateOrConcretePath);
    const where = `${method.toUpperCase()} ${template ?? pathTemplateOrConcretePath} → ${status}`;
    if (!template) throw new Error(`${where}: no documented route matches`);
    const operation = operationOf(template, method);
    if (!operation) throw new Error(`${where}: the route documents no ${method.toUpperCase()} operation`);

    const responses = (operation["responses"] ?? {}) as Json;
    const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => k in responses);
    if (!key) throw new Error(`${where}: status not documented (documented: ${Object.keys(responses).join(", ")}); body: ${preview(body)}`);
    const response = resolve(document, responses[key]) as Json;
    const content = response["content"] as Record<string, Json> | undefined;

    const empty = isEmptyBody(body);
    if (!content) {
      if (!empty) throw new Error(`${where}: the document promises no body, got ${preview(body)}`);
      return;
    }
    if (empty && method.toUpperCase() === "HEAD") return;
    const mediaType = (contentType ?? "").split(";")[0].trim().toLowerCase();
    const mediaKey = Object.keys(content).find((k) => mediaTypeMatches(k.toLowerCase(), mediaType));
    if (!mediaKey) {
      throw new Error(`${where}: content type "${mediaType}" not documented (documented: ${Object.keys(content).join(", ")})`);
    }
    if (!isJsonMediaType(mediaType)) return;

    const schema = resolve(document, content[mediaKey])?.["schema"];
    if (schema === undefined) return;
    const data = jsonOf(body, where);
    const validate = validatorFor(`${template} ${method.toLowerCase()} ${key} ${mediaKey}`, schema);
    if (!validate(data)) {
      const problems = (validate.errors ?? []).map((e) => `  ${e.instancePath || "(body)"} ${e.message ?? "is invalid"}${paramsNote(e.params)}`);
      throw new Error(`${where} (${mediaType}): body does not match the documented schema:\n${problems.join("\n")}\nbody: ${preview(data)}`);
    }
  }

  return { matchRoute, validateResponse };
}

/** Replaces `#/components/schemas/X` references with references into the registered components. */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node as Json).map(([k, v]) =>
      k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")
        ? [k, `${componentsId}#/$defs/${v.slice("#/components/schemas/".length)}`]
        : [k, rewriteRefs(v)],
    ),
  );
}

/** Follows a local `$ref` (responses, media types) to the object it names. */
function resolve(document: Json, node: unknown): Json | undefined {
  let current = node as Json | undefined;
  for (let hops = 0; current && typeof current["$ref"] === "string" && hops < 16; hops++) {
    const pointer = current["$ref"];
    if (!pointer.startsWith("#/")) throw new Error(`unsupported $ref ${pointer}`);
    current = pointer
      .slice(2)
      .split("/")
      .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce<unknown>((at, part) => (at as Json | undefined)?.[part], document) as Json | undefined;
    if (!current) throw new Error(`dangling $ref ${pointer}`);
  }
  return current;
}

function templatePattern(template: string): RegExp {
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}/?$`);
}

function literalSegments(template: string): number {
  return template.split("/").filter((s) => s && !s.startsWith("{")).length;
}

function mediaTypeMatches(documented: string, actual: string): boolean {
  if (documented === actual || documented === "*/*") return true;
  return documented.endsWith("/*") && actual.startsWith(documented.slice(0, -1));
}

function isJsonMediaType(mediaType: string): boolean {
  return mediaType === "application/json" || mediaType.endsWith("+json");
}

function isEmptyBody(body: unknown): boolean {
  if (body === undefined || body === null || body === "") return true;
  return body instanceof Uint8Array && body.byteLength === 0;
}

function jsonOf(body: unknown, where: string): unknown {
  if (typeof body !== "string" && !(body instanceof Uint8Array)) return body;
  const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${where}: the body is not JSON: ${preview(text)}`);
  }
}

function paramsNote(params: Record<string, unknown>): string {
  const interesting = Object.entries(params).filter(([, v]) => v !== undefined);
  return interesting.length ? ` (${interesting.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ")})` : "";
}

function preview(body: unknown): string {
  const text = typeof body === "string" ? body : body instanceof Uint8Array ? `<${body.byteLength} bytes>` : JSON.stringify(body);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
