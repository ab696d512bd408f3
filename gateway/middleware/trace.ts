// Gives every request a trace id and runs the rest of its chain inside the call scope that log lines
// and outgoing gRPC calls read.
import type { RequestHandler } from "express";
import { runInScope } from "../../internal/trace/call-scope.js";
import { traceIdFrom } from "../../internal/trace/trace-id.js";

/**
 * Takes the trace id from `traceparent` (W3C), else a well-formed `x-request-id`, else makes a new one;
 * echoes it as the `x-request-id` response header; then calls the rest of the chain inside
 * runInScope({ traceId }), so every later middleware, handler and whatever they await sees it through
 * currentScope(). Mount it first.
 */
export function createTraceMiddleware(): RequestHandler {
  return (req, res, next) => {
    const traceId = traceIdFrom({ get: (name) => req.get(name) });
    res.setHeader("x-request-id", traceId);
    runInScope({ traceId }, () => next());
  };
}
