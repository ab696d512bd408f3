// An error the gateway itself raises with an HTTP status (wrong content type, body too large, no
// such route...), rendered by the problem handler as application/problem+json (RFC 9457).

export interface ProblemFieldError {
  readonly field: string;
  readonly message: string;
}

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: readonly ProblemFieldError[] = [],
    /** Extra response headers, e.g. Allow on 405 or Retry-After on 429. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
  }
}
