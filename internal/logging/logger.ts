// The process logger: one JSON object per line on stdout (and on any extra winston transport), stamped
// with the current call's trace id; a log call never throws and never waits.
import { Writable } from "node:stream";
import winston from "winston";
import { currentScope } from "../trace/call-scope.js";
import { setField, toLoggable } from "./loggable.js";
import { settleWithin } from "../lifecycle/timing.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds fields to every line; fields given at the call win over these. */
  child(fields: LogFields): Logger;
}

export interface RootLogger extends Logger {
  /**
   * Stops accepting lines, lets every transport finish what it holds and closes it, then waits
   * (briefly) for stdout to drain. Never rejects; lines logged afterwards are discarded.
   */
  close(): Promise<void>;
}

export interface LoggerOptions {
  /** Written as "service" on every line. */
  service: string;
  /** Lines below this level are discarded before any work is done. */
  level: LogLevel;
  /** Extra destinations (e.g. the AMQP transport); each receives the same info object as stdout. */
  transports?: winston.transport[];
  /** Where lines are written; default process.stdout. It is never ended by close(). */
  stdout?: NodeJS.WritableStream;
}

// winston's own symbol for the finished line (triple-beam's MESSAGE), shared through the global registry.
const messageKey = Symbol.for("message");
const levels: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
// Keys the logger owns: a field with one of these names is dropped rather than allowed to forge them.
const reservedKeys = new Set(["ts", "level", "service", "msg"]);
const transportCloseMs = 5000;
const stdoutDrainMs = 1000;

/**
 * A root logger writing one JSON object per line: {"ts","level","service","msg","traceId"?,...fields}.
 * traceId comes from fields.traceId when given, otherwise from the current call scope, and is omitted
 * outside any call. Field values are copied JSON-safe (see toLoggable): Errors keep name, message,
 * stack, code and cause; cycles and BigInt cannot make a call throw. A failing transport never
 * surfaces to the caller; it gets one notice on stderr.
 */
export function createLogger(options: LoggerOptions): RootLogger {
  const stdout = options.stdout ?? process.stdout;
  const extra = options.transports ?? [];
  const sink = winston.createLogger({
    levels,
    level: options.level,
    // Lines are built before they reach winston (the trace id must be read in the caller's context);
    // the format only has to leave them alone.
    format: winston.format((info) => info)(),
    exitOnError: false,
    transports: [new winston.transports.Stream({ stream: stdout }), ...extra],
  });
  const complained = new Set<unknown>();
  sink.on("error", (err: unknown, transport: unknown) => {
    if (complained.has(transport)) return;
    complained.add(transport);
    process.stderr.write(`logging: a log transport failed and its lines may be lost: ${describe(err)}\n`);
  });

  let closing: Promise<void> | undefined;

  function write(level: LogLevel, msg: string, bound: LogFields, fields: LogFields | undefined): void {
    if (closing || !sink.isLevelEnabled(level)) return;
    try {
      const record = buildRecord(options.service, level, msg, bound, fields);
      sink.log({ ...record, level, message: record.msg, [messageKey]: stringify(record) });
    } catch {
      // Logging must never break the caller; there is nowhere sensible left to report this.
    }
  }

  function loggerWith(bound: LogFields): Logger {
    return {
      debug: (msg, fields) => write("debug", msg, bound, fields),
      info: (msg, fields) => write("info", msg, bound, fields),
      warn: (msg, fields) => write("warn", msg, bound, fields),
      error: (msg, fields) => write("error", msg, bound, fields),
      child: (fields) => loggerWith({ ...bound, ...fields }),
    };
  }

  async function shutdown(): Promise<void> {
    await settleWithin(
      new Promise<void>((resolve) => {
        sink.once("finish", () => resolve());
        sink.end();
      }),
      transportCloseMs,
    );
    await Promise.all(extra.map((transport) => settleWithin(closeTransport(transport), transportCloseMs)));
    await drained(stdout, stdoutDrainMs);
  }

  return {
    ...loggerWith({}),
    close() {
      closing ??= shutdown().catch(() => undefined);
      return closing;
    },
  };
}

function buildRecord(
  service: string,
  level: LogLevel,
  msg: string,
  bound: LogFields,
  fields: LogFields | undefined,
): Record<string, unknown> & { msg: string } {
  const record: Record<string, unknown> & { msg: string } = {
    ts: new Date().toISOString(),
    level,
    service,
    msg: typeof msg === "string" ? msg : String(toLoggable(msg)),
  };
  const given = fields && "traceId" in fields ? fields.traceId : bound.traceId;
  const traceId = given ?? currentScope()?.traceId;
  setField(record, "traceId", toLoggable(traceId));
  for (const source of [bound, fields ?? {}]) {
    for (const key of Object.keys(source)) {
      if (reservedKeys.has(key) || key === "traceId") continue;
      setField(record, key, toLoggable(source[key]));
    }
  }
  return record;
}

function stringify(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record);
  } catch (err) {
    // toLoggable leaves nothing JSON.stringify can choke on; this is the belt to its braces.
    return JSON.stringify({ ts: record.ts, level: record.level, service: record.service, msg: record.msg, logError: describe(err) });
  }
}

async function closeTransport(transport: winston.transport): Promise<void> {
  // winston types close() as void; ours (and some others) return a promise worth waiting for.
  const result: unknown = transport.close?.();
  if (result instanceof Promise) await result;
}

function drained(stream: NodeJS.WritableStream, ms: number): Promise<void> {
  if (!(stream instanceof Writable) || stream.writableLength === 0) return Promise.resolve();
  return settleWithin(new Promise((resolve) => stream.once("drain", resolve)), ms);
}

function describe(err: unknown): string {
  const loggable = toLoggable(err);
  if (loggable && typeof loggable === "object" && "message" in loggable) return String(loggable.message);
  return String(loggable);
}
