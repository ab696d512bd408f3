// Reads or makes the trace id of an incoming request, from W3C traceparent or x-request-id.
import { randomBytes } from "node:crypto";

const traceparentPattern = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
// Caller-chosen request ids are echoed into logs and headers: keep them short and inert.
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
const zeroTraceId = "0".repeat(32);

export interface TraceHeaders {
  get(name: string): string | null | undefined;
}

// Ids are cut from a pool of CSPRNG bytes refilled 4 KiB at a time: one randomBytes call per id (a
// synchronous trip into OpenSSL) was the largest single cost of a small RPC (docs/performance.md).
const poolBytes = 4096;
let pool = Buffer.alloc(0);
let poolOffset = poolBytes;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(poolBytes);
    poolOffset = 0;
  }
  const hex = pool.toString("hex", poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** A new random trace id: 16 bytes as 32 lowercase hex, valid in traceparent. */
export function newTraceId(): string {
  return randomHex(16);
}

/**
 * The trace id carried by the headers (traceparent first, then x-request-id), or a new one when
 * neither is present and well-formed.
 */
export function traceIdFrom(headers: TraceHeaders): string {
  const traceparent = headers.get("traceparent")?.trim().toLowerCase();
  const fromParent = traceparent ? traceparentPattern.exec(traceparent)?.[1] : undefined;
  if (fromParent && fromParent !== zeroTraceId) return fromParent;
  const requestId = headers.get("x-request-id")?.trim();
  if (requestId && requestIdPattern.test(requestId)) return requestId;
  return newTraceId();
}

/** A traceparent header value for an outgoing call, when the trace id is W3C-shaped. */
export function traceparentFor(traceId: string): string | undefined {
  if (!/^[0-9a-f]{32}$/.test(traceId)) return undefined;
  return `00-${traceId}-${randomHex(8)}-01`;
}
