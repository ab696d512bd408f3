// The server-side interceptors every process installs, outermost first: call scope (trace id,
// deadline), one log line per call, and normalisation of whatever a handler throws.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { runInScope, type CallScope } from "../trace/call-scope.js";
import { traceIdFrom } from "../trace/trace-id.js";
import { codeName, isClientError, logLevelFor, toPublicError } from "../errors/errors.js";
import { deadlineKey, peerKey } from "./context-keys.js";
import { iterateWithin, observeStream } from "./stream-hooks.js";

/** The logger shape the RPC layer needs (satisfied by internal/logging's Logger). */
export interface RpcLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Establishes the call scope: trace id from traceparent / x-request-id (or a new one), the caller's
 * deadline and the call's signal (aborted when the caller cancels), visible to logs, queued work and
 * outgoing calls for the whole call, streams included.
 */
export function createScopeInterceptor(): Interceptor {
  return (next) => async (req) => {
    const scope: CallScope = { traceId: traceIdFrom(req.header), deadline: req.contextValues.get(deadlineKey), signal: req.signal };
    const run = <R>(fn: () => R): R => runInScope(scope, fn);
    const res = await run(() => next(req));
    if (!res.stream) return res;
    return { ...res, message: iterateWithin(res.message, run) };
  };
}

/** Makes every thrown value a ConnectError; unexpected ones become an opaque INTERNAL (cause kept). */
export function createErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: observeStream(res.message, () => {}, toPublicError) };
    } catch (thrown) {
      throw toPublicError(thrown);
    }
  };
}

/**
 * Logs each call once when it ends: method, gRPC code, duration, peer. Client errors log at info,
 * server errors at error with their cause. Never logs messages (they may hold passwords or tokens).
 */
export function createLoggingInterceptor(logger: RpcLogger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const peer = req.contextValues.get(peerKey);
    const log = (error: unknown) => logCall(logger, rpc, peer, started, error);
    let res;
    try {
      res = await next(req);
    } catch (thrown) {
      log(thrown);
      throw thrown;
    }
    if (!res.stream) {
      log(undefined);
      return res;
    }
    return {
      ...res,
      message: observeStream(res.message, (error, abandoned) =>
        log(abandoned ? new ConnectError("stream abandoned by the caller", Code.Canceled) : error),
      ),
    };
  };
}

function logCall(logger: RpcLogger, rpc: string, peer: string, started: number, thrown: unknown): void {
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (thrown === undefined) {
    logger.info("rpc handled", { rpc, code: "OK", durationMs, peer });
    return;
  }
  const error = ConnectError.from(thrown);
  const fields: Record<string, unknown> = { rpc, code: codeName(error.code), durationMs, peer, reason: error.rawMessage };
  if (!isClientError(error.code) && error.cause !== undefined) fields.err = error.cause;
  const level = logLevelFor(error.code);
  logger[level]("rpc handled", fields);
}
