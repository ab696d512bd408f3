// The error an outgoing call ends with when its signal aborts before the server answered.
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Always CANCELLED, as when grpc-js reports a call cancelled mid-flight: the signal's reason itself
 * when it is already a CANCELLED ConnectError, else a new one with the reason kept as the cause (for
 * logs, never for a client). Call only once the signal has aborted.
 */
export function cancelledError(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && reason.code === Code.Canceled) return reason;
  return new ConnectError("call cancelled", Code.Canceled, undefined, undefined, reason);
}
