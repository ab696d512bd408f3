// The mesh's error vocabulary: ConnectError with a real gRPC code, field violations and reasons as
// google.rpc details, and the cause kept for logs only (never sent to the caller).
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  BadRequest_FieldViolationSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";

export { Code, ConnectError };

/** The google.rpc.ErrorInfo domain of every reason this mesh emits. */
export const errorDomain = "usermesh";

export interface FieldViolation {
  /** Request field path in proto3 JSON names, e.g. "email". */
  readonly field: string;
  /** Human-readable, safe to show to the end user. */
  readonly description: string;
  /** UPPER_SNAKE_CASE machine reason, e.g. "TOO_LONG". */
  readonly reason?: string;
}

/** Bad input: INVALID_ARGUMENT carrying a google.rpc.BadRequest with every violation found. */
export function invalidArgument(message: string, violations: readonly FieldViolation[] = []): ConnectError {
  const details = violations.length
    ? [
        {
          desc: BadRequestSchema,
          value: create(BadRequestSchema, {
            fieldViolations: violations.map((v) =>
              create(BadRequest_FieldViolationSchema, {
                field: v.field,
                description: v.description,
                reason: v.reason ?? "",
              }),
            ),
          }),
        },
      ]
    : [];
  return new ConnectError(message, Code.InvalidArgument, undefined, details);
}

/**
 * An error with a machine-readable reason (google.rpc.ErrorInfo), for callers that must branch on
 * why a request failed (e.g. the gateway choosing 413 over 415) without parsing messages.
 */
export function reasonedError(
  code: Code,
  message: string,
  reason: string,
  metadata: Record<string, string> = {},
  cause?: unknown,
): ConnectError {
  const info = create(ErrorInfoSchema, { reason, domain: errorDomain, metadata });
  return new ConnectError(message, code, undefined, [{ desc: ErrorInfoSchema, value: info }], cause);
}

export function notFound(message: string): ConnectError {
  return new ConnectError(message, Code.NotFound);
}

export function alreadyExists(message: string, reason: string): ConnectError {
  return reasonedError(Code.AlreadyExists, message, reason);
}

export function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

export function permissionDenied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

export function failedPrecondition(message: string, reason: string): ConnectError {
  return reasonedError(Code.FailedPrecondition, message, reason);
}

/** Too many attempts: RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying when to come back. */
export function resourceExhausted(message: string, retryAfterMs: number): ConnectError {
  const retry = create(RetryInfoSchema, { retryDelay: durationFromMs(Math.max(0, Math.ceil(retryAfterMs))) });
  return new ConnectError(message, Code.ResourceExhausted, undefined, [{ desc: RetryInfoSchema, value: retry }]);
}

/** A dependency is down; the caller may retry an idempotent call. The cause stays in logs. */
export function unavailable(message: string, cause?: unknown): ConnectError {
  return new ConnectError(message, Code.Unavailable, undefined, undefined, cause);
}

/** An unexpected failure: the caller sees only "internal error"; the cause is kept for the log. */
export function internal(cause: unknown): ConnectError {
  return new ConnectError("internal error", Code.Internal, undefined, undefined, cause);
}

/**
 * Normalises anything thrown by a handler. ConnectErrors pass through; everything else becomes an
 * opaque INTERNAL so no message, stack or SQL reaches the caller.
 */
export function toPublicError(thrown: unknown): ConnectError {
  if (thrown instanceof ConnectError) return thrown;
  if (thrown instanceof Error && thrown.name === "AbortError") {
    return new ConnectError("request cancelled", Code.Canceled, undefined, undefined, thrown);
  }
  return internal(thrown);
}

export function fieldViolationsOf(error: ConnectError): FieldViolation[] {
  return error
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations)
    .map((v) => ({ field: v.field, description: v.description, reason: v.reason }));
}

/** The ErrorInfo reason of an error from this mesh, if it carries one. */
export function reasonOf(error: ConnectError): string | undefined {
  return error.findDetails(ErrorInfoSchema).find((i) => i.domain === errorDomain)?.reason;
}

/** The RetryInfo delay of an error in milliseconds, if it carries one. */
export function retryDelayMsOf(error: ConnectError): number | undefined {
  const delay: Duration | undefined = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6) : undefined;
}

const clientCodes: ReadonlySet<Code> = new Set([
  Code.Canceled,
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
  Code.Aborted,
  Code.OutOfRange,
  Code.Unauthenticated,
]);

/** True when the caller caused the error: such errors never log at error level. */
export function isClientError(code: Code): boolean {
  return clientCodes.has(code);
}

/** The log level a call that ended with this code deserves (undefined code means OK). */
export function logLevelFor(code: Code | undefined): "info" | "warn" | "error" {
  if (code === undefined) return "info";
  if (isClientError(code)) return "info";
  if (code === Code.DeadlineExceeded || code === Code.Unimplemented) return "warn";
  return "error";
}

const httpStatusByCode: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 422,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status the gateway answers for a gRPC code (the REST contract's table). */
export function httpStatusFor(code: Code): number {
  return httpStatusByCode[code] ?? 500;
}

// Go's codes.Code.String(), indexed by code: Connect's enum names match it, except that it has no OK.
const codeNames: readonly string[] = Array.from({ length: 17 }, (_, code) => (code === 0 ? "OK" : Code[code as Code]));

/** A gRPC code as Go spells it ("OK", "InvalidArgument"…), for log fields and metric labels. */
export function codeName(code: number): string {
  return codeNames[code] ?? `Code(${code})`;
}
