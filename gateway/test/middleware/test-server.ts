// Test support: a real Express app on an ephemeral port, and a logger that records its lines.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { Express } from "express";
import type { LogFields, Logger, LogLevel } from "../../../internal/logging/logger.js";

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 port 0; close() drops kept-alive connections so tests end promptly. */
export async function serve(app: Express): Promise<TestServer> {
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, "127.0.0.1", (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface LogLine {
  readonly level: LogLevel;
  readonly msg: string;
  readonly fields: LogFields;
}

export interface RecordingLogger extends Logger {
  readonly lines: LogLine[];
}

export function recordingLogger(bound: LogFields = {}, lines: LogLine[] = []): RecordingLogger {
  const record = (level: LogLevel) => (msg: string, fields: LogFields = {}) => {
    lines.push({ level, msg, fields: { ...bound, ...fields } });
  };
  return {
    lines,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
    child: (fields) => recordingLogger({ ...bound, ...fields }, lines),
  };
}

/** Resolves after ms milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until check() holds or timeoutMs passes (response-end observers run after the client has its answer). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await sleep(10);
  }
}
