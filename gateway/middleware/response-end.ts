// Calls back once when a response is over: fully sent, or cut short because the client went away.
import type { Response } from "express";

/** nginx's code for "the client closed the connection before a response was sent". */
export const clientClosedRequest = 499;

export interface ResponseEnd {
  /** The status sent, or 499 when the client left before the headers went out. */
  readonly status: number;
  /** True when the connection closed before the response finished. */
  readonly aborted: boolean;
}

/**
 * Runs `done` exactly once, on the response's `finish` or, if the connection closes first, on
 * `close`. Never throws into the response's event emitter: a throwing callback is swallowed.
 */
export function onResponseEnd(res: Response, done: (end: ResponseEnd) => void): void {
  let called = false;
  const call = (aborted: boolean) => {
    if (called) return;
    called = true;
    const status = aborted && !res.headersSent ? clientClosedRequest : res.statusCode;
    try {
      done({ status, aborted });
    } catch {
      // Observers (logs, metrics) must never break the response; they have their own failure reports.
    }
  };
  res.once("finish", () => call(false));
  res.once("close", () => call(!res.writableFinished));
}
