// SessionService's RPC handlers: decode the request, call the domain, shape the response.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../../internal/errors/errors.js";
import type { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import type { Sessions } from "./sessions.js";

export interface SessionHandlersDeps {
  readonly sessions: Sessions;
  /** Counts sessions created (e.g. the prom-client counter sessions_created_total). */
  readonly sessionsCreated?: { inc(): void };
}

/** The SessionService implementation. Errors are the domain's ConnectErrors, passed through. */
export function createSessionHandlers(deps: SessionHandlersDeps) {
  const { sessions, sessionsCreated } = deps;
  return {
    async createSession(req) {
      const created = await sessions.createSession({ userId: req.userId, ip: req.ip, userAgent: req.userAgent });
      sessionsCreated?.inc();
      return {
        sessionId: created.sessionId,
        token: created.token,
        expiresAt: timestampFromMs(created.expiresAtMs),
      };
    },

    async validateSession(req) {
      const session = await sessions.validateSession(req.token);
      return {
        userId: session.userId,
        sessionId: session.sessionId,
        expiresAt: timestampFromMs(session.expiresAtMs),
      };
    },

    async deleteSession(req) {
      switch (req.target.case) {
        case "token":
          await sessions.deleteSessionByToken(req.target.value);
          return {};
        case "session":
          await sessions.deleteSessionById(req.target.value.userId, req.target.value.sessionId);
          return {};
        default:
          throw invalidArgument("token or session is required", [
            { field: "token", description: "set token or session", reason: "REQUIRED" },
            { field: "session", description: "set token or session", reason: "REQUIRED" },
          ]);
      }
    },

    async listSessions(req) {
      const list = await sessions.listSessions(req.userId);
      return {
        sessions: list.map((s) => ({
          sessionId: s.sessionId,
          userId: s.userId,
          createdAt: timestampFromMs(s.createdAtMs),
          lastSeenAt: timestampFromMs(s.lastSeenAtMs),
          expiresAt: timestampFromMs(s.expiresAtMs),
          ip: s.ip,
          userAgent: s.userAgent,
        })),
      };
    },

    async deleteUserSessions(req) {
      const deletedCount = await sessions.deleteUserSessions(req.userId, req.exceptSessionId || undefined);
      return { deletedCount };
    },
  } satisfies ServiceImpl<typeof SessionService>;
}
