// One structured log line: the shape every process's logger writes, how a message body is checked and
// read into it, and the canonical JSON form the Logs service stores (one line per record).

export type Level = "debug" | "info" | "warn" | "error";

/** Levels ranked as the LogLevel enum numbers them (DEBUG = 1 … ERROR = 4): higher is more severe. */
export const levelRank: Readonly<Record<Level, number>> = { debug: 1, info: 2, warn: 3, error: 4 };

export interface LogRecord {
  /** Milliseconds since the epoch (the line's own ts, sub-millisecond digits dropped). */
  readonly tsMs: number;
  readonly level: Level;
  readonly service: string;
  readonly msg: string;
  /** "" when the line carries none. */
  readonly traceId: string;
  /** Every other key of the line, values as JSON gave them. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Why a message is not a log line: the `reason` label of logs_malformed_total. */
export type MalformedReason = "too_large" | "not_json" | "missing_field" | "bad_field" | "ts_out_of_range";

export type ParsedLine = { readonly record: LogRecord } | { readonly malformed: MalformedReason; readonly detail: string };

/** A body above this is refused; the shared logger's transport never sends one (its own cap is the same). */
export const maxLineBytes = 1024 * 1024;
/** Longest trace id kept as one (the call scope accepts 128); a longer one makes the line malformed. */
export const maxTraceIdLength = 256;

// Used as a directory name: no separators, no dot-only names, bounded.
const servicePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ownKeys = new Set(["ts", "level", "service", "msg", "traceId"]);

/** True for a name the store can use as a directory: 1..64 of [A-Za-z0-9._-], starting alphanumeric. */
export function isServiceName(name: string): boolean {
  return servicePattern.test(name);
}

/**
 * Reads a message body (UTF-8 JSON) into a record. Malformed when the body is over maxLineBytes, not a
 * JSON object, lacks a string ts/level/service/msg, or has a ts that does not parse, a level other than
 * debug/info/warn/error, a service that is not a valid name (isServiceName), or a traceId that is not a
 * string of at most maxTraceIdLength characters. Never throws.
 */
export function parseLogBody(body: Uint8Array): ParsedLine {
  if (body.byteLength > maxLineBytes) return { malformed: "too_large", detail: `${body.byteLength} bytes` };
  return parseLogText(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
}

/** parseLogBody for text already decoded (e.g. a stored line). Never throws. */
export function parseLogText(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { malformed: "not_json", detail: "not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { malformed: "not_json", detail: "not a JSON object" };
  }
  const line = value as Record<string, unknown>;
  for (const key of ["ts", "level", "service", "msg"] as const) {
    if (typeof line[key] !== "string") return { malformed: "missing_field", detail: `no string ${key}` };
  }
  const tsMs = Date.parse(line.ts as string);
  if (!Number.isFinite(tsMs)) return { malformed: "bad_field", detail: "ts is not a date" };
  const level = line.level as string;
  if (!Object.hasOwn(levelRank, level)) return { malformed: "bad_field", detail: "unknown level" };
  const service = line.service as string;
  if (!isServiceName(service)) return { malformed: "bad_field", detail: "service is not a valid name" };
  const traceId = line.traceId ?? "";
  if (typeof traceId !== "string" || traceId.length > maxTraceIdLength) {
    return { malformed: "bad_field", detail: "traceId is not a short string" };
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(line)) if (!ownKeys.has(key)) fields[key] = line[key];
  return { record: { tsMs, level: level as Level, service, msg: line.msg as string, traceId, fields } };
}

/**
 * The stored form: one JSON object with ts, level, service, traceId (when set) and msg first, then the
 * other fields; never holds a newline. The fixed head is what lets readLineHead skip a full parse.
 */
export function formatLogLine(record: LogRecord): string {
  const head: Record<string, unknown> = {
    ts: new Date(record.tsMs).toISOString(),
    level: record.level,
    service: record.service,
  };
  if (record.traceId !== "") head.traceId = record.traceId;
  head.msg = record.msg;
  return JSON.stringify(Object.assign(head, record.fields));
}

export interface LineHead {
  readonly tsMs: number;
  readonly level: Level;
  readonly traceId: string;
}

// The head formatLogLine writes; ts as toISOString makes it (years 0000..9999 only, which Date.parse reads).
const headPattern =
  /^\{"ts":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)","level":"(debug|info|warn|error)","service":"[A-Za-z0-9._-]+"(?:,"traceId":"((?:[^"\\]|\\.)*)")?,"msg":/;

/** Marks a line whose top-level traceId may sit anywhere: inside a JSON string a quote is always escaped. */
export const traceIdKey = '"traceId":';

/**
 * ts, level and trace id of a stored line, read from its fixed head without parsing the rest; falls
 * back to a full parse for a line in any other layout (the shared logger's puts traceId after msg).
 * Undefined when the text is not a log line.
 */
export function readLineHead(text: string): LineHead | undefined {
  const match = headPattern.exec(text);
  if (match && (match[3] !== undefined || !text.includes(traceIdKey))) {
    const raw = match[3];
    let traceId = raw ?? "";
    if (raw?.includes("\\")) {
      try {
        traceId = JSON.parse(`"${raw}"`) as string;
      } catch {
        return undefined;
      }
    }
    return { tsMs: Date.parse(match[1]), level: match[2] as Level, traceId };
  }
  const parsed = parseLogText(text);
  if (!("record" in parsed)) return undefined;
  const { tsMs, level, traceId } = parsed.record;
  return { tsMs, level, traceId };
}

const dayMs = 86_400_000;
let lastDay = { number: NaN, text: "" };

/** The UTC day of a timestamp, "YYYY-MM-DD": the day a line is filed under. */
export function utcDay(ms: number): string {
  // Lines come in ts order, mostly: remember the last day rather than format a date per line.
  const number = Math.floor(ms / dayMs);
  if (number !== lastDay.number) lastDay = { number, text: new Date(number * dayMs).toISOString().slice(0, 10) };
  return lastDay.text;
}
