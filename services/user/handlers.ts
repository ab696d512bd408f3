// UserService's RPC handlers: decode the request, call the domain, shape the response.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { IssuedSessionSchema, UserSchema, UserService } from "../../gen/usermesh/user/v1/user_pb.js";
import type { IssuedSession, UserProfile, Users } from "./users.js";

export interface UserHandlersDeps {
  readonly users: Users;
}

/** The UserService implementation. Errors are the domain's ConnectErrors, passed through. */
export function createUserHandlers(deps: UserHandlersDeps) {
  const { users } = deps;
  return {
    async register(req) {
      const { user, session } = await users.register({
        email: req.email,
        password: req.password,
        name: req.name,
        ip: req.ip,
        userAgent: req.userAgent,
      });
      return { user: userMessage(user), session: sessionMessage(session) };
    },

    async login(req) {
      const { user, session } = await users.login({
        email: req.email,
        password: req.password,
        ip: req.ip,
        userAgent: req.userAgent,
      });
      return { user: userMessage(user), session: sessionMessage(session) };
    },

    async logout(req) {
      await users.logout(req.token);
      return {};
    },

    async deleteAccount(req) {
      await users.deleteAccount({ userId: req.userId, password: req.password, sessionToken: req.sessionToken });
      return {};
    },

    async updateProfile(req) {
      const user = await users.updateProfile({
        userId: req.userId,
        name: req.name,
        email: req.email,
        newPassword: req.newPassword,
        currentPassword: req.currentPassword,
        sessionId: req.sessionId,
      });
      return { user: userMessage(user) };
    },

    async getProfile(req) {
      return { user: userMessage(await users.getProfile(req.userId)) };
    },
  } satisfies ServiceImpl<typeof UserService>;
}

function userMessage(user: UserProfile): MessageInitShape<typeof UserSchema> {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    createdAt: timestampFromDate(user.createdAt),
    updatedAt: timestampFromDate(user.updatedAt),
  };
}

function sessionMessage(session: IssuedSession): MessageInitShape<typeof IssuedSessionSchema> {
  return { sessionId: session.sessionId, token: session.token, expiresAt: timestampFromMs(session.expiresAtMs) };
}
