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
