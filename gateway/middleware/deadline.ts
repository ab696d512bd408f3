// A time budget per request: it becomes the deadline of every gRPC call made for it, and a 504 when
// it runs out before the response starts.
import type { Request, RequestHandler, Response } from "express";
import { currentScope, runInScope } from "../../internal/trace/call-scope.js";
import { newTraceId } from "../../internal/trace/trace-id.js";
import { httpProblem, sendProblem } from "./problem-response.js";

export interface DeadlineOptions {
  /** Budget of a request whose route has no override, in milliseconds. */
  readonly defaultMs: number;
  /** A route's own budget (e.g. 60 s for uploads), or undefined (or a non-positive number) for the default. */
  readonly overrides?: (req: Request) => number | undefined;
}

interface DeadlineLocals {
  timedOut?: boolean;
}

/**
 * Gives the request a deadline of now + budget and runs the rest of the chain in a call scope that
 * carries it (the trace scope's fields kept), so the gRPC client transport uses what is left of it as
 * each call's deadline. When the budget runs out before the response has started, answers 504 with a
 * problem body and marks the request timed out (hasTimedOut); a handler that writes afterwards gets
 * ERR_HTTP_HEADERS_SENT, which the problem handler drops silently. A response already streaming when
 * the budget runs out is left alone. The timer is cleared when the response finishes or the
 * connection closes. Throws at creation if defaultMs is not a positive number.
 */
export function createDeadlineMiddleware(options: DeadlineOptions): RequestHandler {
  if (!(options.defaultMs > 0)) throw new Error("createDeadlineMiddleware: defaultMs must be positive");
  return (req, res, next) => {
    const override = options.overrides?.(req);
    const budgetMs = override !== undefined && override > 0 ? override : options.defaultMs;
    const scope = currentScope() ?? { traceId: newTraceId() };
    // An outer deadline (none today) is never extended.
    const deadline = Math.min(Date.now() + budgetMs, scope.deadline ?? Infinity);
    const timer = setTimeout(() => {
      if (res.headersSent || res.writableEnded) return;
      (res.locals as DeadlineLocals).timedOut = true;
      sendProblem(res, httpProblem(504, `the request did not complete within ${budgetMs} ms`));
    }, budgetMs);
    const clear = () => clearTimeout(timer);
    res.once("finish", clear);
    res.once("close", clear);
    runInScope({ ...scope, deadline }, () => next());
  };
}

/** True when the deadline middleware already answered 504 for this request. */
export function hasTimedOut(res: Response): boolean {
  return (res.locals as DeadlineLocals).timedOut === true;
}
