// Cancels what is done for a request once its client has gone: a per-request signal in the call
// scope, aborted when the connection closes before the response has finished.
import type { RequestHandler } from "express";
import { Code, ConnectError } from "@connectrpc/connect";
import { currentScope, runInScope } from "../../internal/trace/call-scope.js";
import { newTraceId } from "../../internal/trace/trace-id.js";
import { onResponseEnd } from "./response-end.js";

/**
 * Runs the rest of the chain in a call scope (the outer scope's fields kept) whose signal aborts, with
 * a CANCELLED ConnectError as its reason, when the client closes the connection before the response
 * has finished: the gRPC transport cancels every call made for the request, and each service cancels
 * the calls it made for those in turn. A response that finished (a 504 included: calls still in flight
 * end on their deadline, the same instant) never aborts it. Mount it after the trace middleware.
 */
export function createDisconnectMiddleware(): RequestHandler {
  return (_req, res, next) => {
    const controller = new AbortController();
    onResponseEnd(res, ({ aborted }) => {
      if (aborted) controller.abort(new ConnectError("the client closed the request", Code.Canceled));
    });
    const scope = currentScope() ?? { traceId: newTraceId() };
    // An outer signal (none today) keeps applying; only then is a combined signal worth its cost.
    const signal = scope.signal ? AbortSignal.any([scope.signal, controller.signal]) : controller.signal;
    runInScope({ ...scope, signal }, () => next());
  };
}
