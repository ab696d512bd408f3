// The REST representations: proto3 JSON (camelCase names, RFC 3339 timestamps, int64 as strings) via
// protobuf-es toJson, or hand-built objects where the REST shape differs from the message.
import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { PhotoSchema, type Photo } from "../../gen/usermesh/photo/v1/photo_pb.js";
import type { Session } from "../../gen/usermesh/session/v1/session_pb.js";
import { UserSchema, type IssuedSession, type User } from "../../gen/usermesh/user/v1/user_pb.js";

// Fields at their default value (width 0, an empty nextPageToken) are written rather than dropped, so a
// client sees the same keys every time.
const jsonOptions = { alwaysEmitImplicit: true } as const;

/** A message field a response must carry; its absence is a broken downstream (INTERNAL, opaque 500). */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ConnectError(`downstream response without ${what}`, Code.Internal);
  return value;
}

/** An object without its undefined members (an unset timestamp is left out, as toJson does). */
function defined(fields: Record<string, JsonValue | undefined>): JsonValue {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as JsonValue;
}

function timestampJson(timestamp: Timestamp | undefined): string | undefined {
  return timestamp ? toJson(TimestampSchema, timestamp) : undefined;
}

/** The caller's own account, email included. */
export function userJson(user: User): JsonValue {
  return toJson(UserSchema, user, jsonOptions);
}

/** Another user as anyone signed in may see them: never the email. */
export function publicUserJson(user: User): JsonValue {
  return defined({ id: user.id, name: user.name, createdAt: timestampJson(user.createdAt) });
}

/** Photo metadata; sizeBytes is an int64, so a decimal string in proto3 JSON. */
export function photoJson(photo: Photo): JsonValue {
  return toJson(PhotoSchema, photo, jsonOptions);
}

/** A freshly issued session as login and register return it: the token is shown this once. */
export function issuedSessionJson(session: IssuedSession): JsonValue {
  return defined({ id: session.sessionId, token: session.token, expiresAt: timestampJson(session.expiresAt) });
}

/** A live session as its owner sees it (never the token); `current` marks the one making the call. */
export function sessionJson(session: Session, currentSessionId: string): JsonValue {
  return defined({
    id: session.sessionId,
    createdAt: timestampJson(session.createdAt),
    lastSeenAt: timestampJson(session.lastSeenAt),
    expiresAt: timestampJson(session.expiresAt),
    ip: session.ip,
    userAgent: session.userAgent,
    current: session.sessionId === currentSessionId,
  });
}
