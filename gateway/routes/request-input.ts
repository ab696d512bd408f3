// Reading what a REST request carries (path ids, query, JSON fields) into typed values, with every
// problem reported at once as a 400 problem with errors[]. Deeper rules (email syntax, password
// length) belong to the services, which answer INVALID_ARGUMENT with field violations.
import type { Request } from "express";
import type { ProblemFieldError } from "../http-problem.js";
import { httpProblem } from "../middleware/problem-response.js";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Largest page a list route asks for (the services' own maximum). */
export const maxPageSize = 100;

/** Collects field errors and throws them together. */
export class InputErrors {
  readonly #errors: ProblemFieldError[] = [];

  add(field: string, message: string): void {
    this.#errors.push({ field, message });
  }

  /** Throws HttpProblem 400 listing every error added, if any. */
  throwIfAny(detail = "the request has invalid fields"): void {
    if (this.#errors.length) throw httpProblem(400, detail, { errors: this.#errors });
  }
}

/**
 * The named path parameters as lowercase UUIDs (the services compare ids as strings).
 * Throws HttpProblem 400 naming each parameter that is not a UUID.
 */
export function uuidParams<K extends string>(req: Request, ...names: K[]): Record<K, string> {
  const errors = new InputErrors();
  const ids = {} as Record<K, string>;
  for (const name of names) {
    const value = (req.params as Record<string, string | undefined>)[name] ?? "";
    if (!uuidPattern.test(value)) errors.add(name, "must be a UUID");
    ids[name] = value.toLowerCase();
  }
  errors.throwIfAny("a path parameter is not a valid id");
  return ids;
}

export interface PageQuery {
  /** 0 lets the service choose its default. */
  readonly pageSize: number;
  readonly pageToken: string;
}

/** ?pageSize (1..100) and ?pageToken; throws HttpProblem 400 for a malformed one. */
export function pageQuery(req: Request): PageQuery {
  const errors = new InputErrors();
  const query = req.query as Record<string, unknown>;
  let pageSize = 0;
  const size = query["pageSize"];
  if (size !== undefined) {
    pageSize = typeof size === "string" && /^\d{1,3}$/.test(size) ? Number(size) : NaN;
    if (!(pageSize >= 1 && pageSize <= maxPageSize)) errors.add("pageSize", `must be an integer from 1 to ${maxPageSize}`);
  }
  const token = query["pageToken"];
  if (token !== undefined && typeof token !== "string") errors.add("pageToken", "must be given once");
  errors.throwIfAny("invalid query parameters");
  return { pageSize, pageToken: typeof token === "string" ? token : "" };
}

/** Typed access to a parsed JSON body's fields; type errors collect in `errors`. */
export interface JsonFields {
  /** A string the request must carry. */
  required(name: string): string;
  /** A string the request may leave out (undefined when absent). */
  optional(name: string): string | undefined;
  readonly errors: InputErrors;
}

/**
 * Wraps req.body (set by the jsonBody middleware). Throws HttpProblem 400 when the body is not a JSON
 * object; field errors are thrown by `errors.throwIfAny()` once every field has been read.
 */
export function jsonFields(req: Request): JsonFields {
  const body: unknown = req.body;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw httpProblem(400, "the request body must be a JSON object");
  }
  const record = body as Record<string, unknown>;
  const errors = new InputErrors();
  const optional = (name: string): string | undefined => {
    const value = record[name];
    if (value === undefined) return undefined;
    if (typeof value !== "string") {
      errors.add(name, "must be a string");
      return undefined;
    }
    return value;
  };
  return {
    errors,
    optional,
    required(name) {
      const present = name in record && record[name] !== undefined;
      const value = optional(name);
      if (!present) errors.add(name, "is required");
      return value ?? "";
    },
  };
}
