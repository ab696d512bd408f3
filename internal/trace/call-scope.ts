// The per-call scope (trace id, deadline) that follows a request through async code, so log lines
// and outgoing calls pick it up without threading it through every function.
import { AsyncLocalStorage } from "node:async_hooks";

export interface CallScope {
  /** W3C trace id (32 lowercase hex) or the caller's x-request-id. */
  readonly traceId: string;
  /** Absolute deadline in epoch milliseconds, when the caller set one. */
  readonly deadline?: number;
  /** The authenticated user, once known (gateway only). */
  userId?: string;
  /**
   * Aborted when whoever is waiting for this call has gone (an HTTP client disconnected, a gRPC caller
   * cancelled): outgoing calls and queued work made for it stop instead of finishing for nobody.
   */
  readonly signal?: AbortSignal;
}

const storage = new AsyncLocalStorage<CallScope>();

/** Runs fn inside scope; everything it awaits sees the same scope. */
export function runInScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The scope of the current call, or undefined outside any call (startup, background jobs). */
export function currentScope(): CallScope | undefined {
  return storage.getStore();
}

/** Milliseconds left before the current call's deadline; undefined when there is none. */
export function remainingMs(now = Date.now()): number | undefined {
  const deadline = storage.getStore()?.deadline;
  return deadline === undefined ? undefined : Math.max(0, deadline - now);
}

/**
 * Runs fn in a scope that keeps the trace id but drops the caller's signal and deadline: for cleanup
 * that must happen even when the caller has gone or run out of time (an outgoing call made in it gets
 * the transport's default deadline).
 */
export function runDetached<T>(fn: () => T): T {
  const scope = storage.getStore();
  return scope ? storage.run({ traceId: scope.traceId }, fn) : fn();
}
