// Turns arbitrary log field values into plain JSON-safe data: errors spelled out, BigInt as text,
// cycles and runaway depth cut, throwing getters contained, so serialising a log line cannot throw.
import { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** How an Error appears in a log line. */
export interface LoggedError {
  name: string;
  message: string;
  stack?: string;
  /** Node/system codes ("ECONNREFUSED"), driver codes ("23505"), or a ConnectError's code name ("not_found"). */
  code?: string | number;
  /** The error's cause, one level deep: a cause's own cause is not followed. */
  cause?: unknown;
}

// Deep enough for any sensible field, shallow enough that a pathological one cannot stall a request.
const maxDepth = 10;

/**
 * A JSON-safe copy of value: what JSON.stringify would write, except that Errors keep name, message,
 * stack, code and cause; BigInt becomes its decimal string; Map becomes an object and Set an array;
 * byte arrays become "<n bytes>"; repeated ancestors become "[Circular]" and nesting past 10 levels
 * "[Truncated]"; a part that throws while being read becomes "[Unserializable: reason]".
 * Returns undefined where JSON would omit the value (undefined, functions, symbols). Never throws.
 */
export function toLoggable(value: unknown): unknown {
  return convert(value, [], 0);
}

function convert(value: unknown, ancestors: object[], depth: number): unknown {
  try {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        return Number.isFinite(value) ? value : String(value);
      case "bigint":
        return value.toString();
      case "undefined":
      case "function":
      case "symbol":
        return undefined;
    }
    if (value === null) return null;
    const obj = value as object;
    if (ancestors.includes(obj)) return "[Circular]";
    if (depth >= maxDepth) return "[Truncated]";
    if (obj instanceof Error) return errorShape(obj, ancestors, depth, true);
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
    if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer) return `<${obj.byteLength} bytes>`;

    ancestors.push(obj);
    try {
      return convertContainer(obj, ancestors, depth + 1);
    } finally {
      ancestors.pop();
    }
  } catch (err) {
    return `[Unserializable: ${reasonOf(err)}]`;
  }
}

function convertContainer(obj: object, ancestors: object[], depth: number): unknown {
  if (Array.isArray(obj)) return obj.map((item) => convert(item, ancestors, depth) ?? null);
  if (obj instanceof Set) return [...obj].map((item) => convert(item, ancestors, depth) ?? null);
  if (obj instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of obj) setField(out, String(key), convert(item, ancestors, depth));
    return out;
  }
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    const replaced: unknown = toJSON.call(obj);
    // A toJSON returning its own object would recurse forever; treat it as a plain object instead.
    if (replaced !== obj) return convert(replaced, ancestors, depth);
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    let item: unknown;
    try {
      item = (obj as Record<string, unknown>)[key];
    } catch (err) {
      // One throwing getter costs its own field, not the whole object.
      item = `[Unserializable: ${reasonOf(err)}]`;
    }
    setField(out, key, convert(item, ancestors, depth));
  }
  return out;
}

function errorShape(err: Error, ancestors: object[], depth: number, withCause: boolean): LoggedError {
  const out: LoggedError = { name: safeString(() => err.name), message: safeString(() => err.message) };
  const stack = safeRead(() => err.stack);
  if (typeof stack === "string") out.stack = stack;
  const code = safeRead(() =>
    err instanceof ConnectError ? codeToString(err.code) : (err as { code?: unknown }).code,
  );
  if (typeof code === "string" || typeof code === "number") out.code = code;
  const cause = withCause ? safeRead(() => err.cause) : undefined;
  if (cause !== undefined) {
    ancestors.push(err);
    try {
      out.cause =
        cause instanceof Error && !ancestors.includes(cause)
          ? errorShape(cause, ancestors, depth + 1, false)
          : convert(cause, ancestors, depth + 1);
    } finally {
      ancestors.pop();
    }
  }
  return out;
}

/** Assigns an own enumerable property, so a key such as "__proto__" stays data, never a prototype. */
export function setField(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) return;
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function safeRead(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function safeString(read: () => unknown): string {
  const text = safeRead(() => {
    const value = read();
    switch (typeof value) {
      case "string":
        return value;
      case "number":
      case "boolean":
      case "bigint":
      case "symbol":
        return String(value);
      default:
        return value === undefined || value === null ? "" : Object.prototype.toString.call(value);
    }
  });
  return typeof text === "string" ? text : "";
}

function reasonOf(err: unknown): string {
  return safeString(() => (err instanceof Error ? err.message : String(err)));
}
