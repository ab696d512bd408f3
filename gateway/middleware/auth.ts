// Authenticates a request by its session token (bearer header or session cookie) against SessionService.
import type { Client } from "@connectrpc/connect";
import type { Request, RequestHandler } from "express";
import { Code, ConnectError } from "../../internal/errors/errors.js";
import { currentScope } from "../../internal/trace/call-scope.js";
import type { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { setAuth, type Authenticated } from "../request-context.js";
import { httpProblem } from "./problem-response.js";

export interface AuthOptions {
  readonly sessions: Pick<Client<typeof SessionService>, "validateSession">;
  /** The cookie holding the session token; read from req.cookies, so cookie-parser must run first. */
  readonly cookieName: string;
}

const bearerPattern = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const challenge = { "WWW-Authenticate": "Bearer" };

/**
 * Takes the session token from `Authorization: Bearer <token>` (preferred) or the session cookie and
 * validates it with SessionService.ValidateSession. On success records the caller with setAuth
 * ({userId, sessionId, token, via}) and puts userId on the call scope. Answers 401 (with
 * `WWW-Authenticate: Bearer`) when there is no token or the service says UNAUTHENTICATED or
 * INVALID_ARGUMENT; 503 when the session service is UNAVAILABLE (fails closed: no session check, no
 * access); any other error, DEADLINE_EXCEEDED (504) included, goes to the problem handler unchanged.
 */
export function createAuthMiddleware(options: AuthOptions): RequestHandler {
  const { sessions, cookieName } = options;
  return async (req, res, next) => {
    const credential = credentialOf(req, cookieName);
    if (!credential) return next(httpProblem(401, "authentication required", { headers: challenge }));
    let session: { userId: string; sessionId: string };
    try {
      session = await sessions.validateSession({ token: credential.token });
    } catch (thrown: unknown) {
      const error = ConnectError.from(thrown);
      if (error.code === Code.Unauthenticated || error.code === Code.InvalidArgument) {
        return next(httpProblem(401, "the session is invalid or has expired", { headers: challenge }));
      }
      if (error.code === Code.Unavailable) {
        return next(httpProblem(503, "a service is unavailable", { cause: error }));
      }
      return next(thrown);
    }
    const auth: Authenticated = { userId: session.userId, sessionId: session.sessionId, ...credential };
    setAuth(res, auth);
    const scope = currentScope();
    if (scope) scope.userId = auth.userId;
    next();
  };
}

function credentialOf(req: Request, cookieName: string): Pick<Authenticated, "token" | "via"> | undefined {
  const header = req.get("authorization");
  const bearer = header ? bearerPattern.exec(header)?.[1] : undefined;
  if (bearer) return { token: bearer, via: "bearer" };
  const cookies = req.cookies as Record<string, unknown> | undefined;
  const cookie = cookies?.[cookieName];
  if (typeof cookie === "string" && cookie !== "") return { token: cookie, via: "cookie" };
  return undefined;
}
