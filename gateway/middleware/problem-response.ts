// Writes an HttpProblem as an RFC 9457 application/problem+json response: the gateway's one error format.
import { STATUS_CODES } from "node:http";
import type { Response } from "express";
import { currentScope } from "../../internal/trace/call-scope.js";
import { HttpProblem, type ProblemFieldError } from "../http-problem.js";

export const problemContentType = "application/problem+json";

/** The RFC 9457 body every error response carries. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly traceId?: string;
  readonly errors?: readonly ProblemFieldError[];
}

/** The standard reason phrase of a status ("Not Found"), used as a problem's title. */
export function statusTitle(status: number): string {
  if (status === 499) return "Client Closed Request";
  return STATUS_CODES[status] ?? (status >= 500 ? "Server Error" : "Client Error");
}

/**
 * An HttpProblem titled with the status' reason phrase. `detail` is sent to the client as is: it
 * must never carry internals.
 */
export function httpProblem(
  status: number,
  detail: string,
  options: { errors?: readonly ProblemFieldError[]; headers?: Readonly<Record<string, string>>; cause?: unknown } = {},
): HttpProblem {
  const problem = new HttpProblem(status, statusTitle(status), detail, options.errors, options.headers);
  if (options.cause !== undefined) problem.cause = options.cause;
  return problem;
}

/**
 * Sends `problem` with its status and extra headers, `Content-Type: application/problem+json`,
 * `Cache-Control: no-store` and the request's trace id in the body (from the call scope, else the
 * x-request-id response header the trace middleware set). The caller must check res.headersSent first:
 * this throws ERR_HTTP_HEADERS_SENT otherwise.
 */
export function sendProblem(res: Response, problem: HttpProblem): void {
  const traceId = currentScope()?.traceId ?? headerValue(res.getHeader("x-request-id"));
  const body: ProblemBody = {
    type: "about:blank",
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(traceId ? { traceId } : {}),
    ...(problem.errors.length ? { errors: problem.errors.map(({ field, message }) => ({ field, message })) } : {}),
  };
  res.status(problem.status);
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.setHeader("Content-Type", problemContentType);
  res.setHeader("Cache-Control", "no-store");
  res.send(JSON.stringify(body));
}

function headerValue(value: number | string | string[] | undefined): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
