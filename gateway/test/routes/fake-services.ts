// In-memory UserService, SessionService and PhotoService behind Connect's router transport: real
// Connect clients and handlers, no network. They keep just enough state for the gateway's routes and
// record what the routes sent them.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport, type Client, type ServiceImpl } from "@connectrpc/connect";
import { PhotoSchema, PhotoService, type Photo } from "../../../gen/usermesh/photo/v1/photo_pb.js";
import { SessionService } from "../../../gen/usermesh/session/v1/session_pb.js";
import { UserService, type UserSchema } from "../../../gen/usermesh/user/v1/user_pb.js";
import { invalidArgument, reasonedError } from "../../../internal/errors/errors.js";

interface StoredUser {
  id: string;
  email: string;
  name: string;
  password: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface StoredSession {
  sessionId: string;
  userId: string;
  token: string;
  createdAt: Date;
  expiresAt: Date;
  ip: string;
  userAgent: string;
}

export interface StoredPhoto {
  readonly photo: Photo;
  readonly bytes: Uint8Array;
}

/** What one LoadPhoto call received. */
export interface UploadRecord {
  header?: { userId: string; filename: string };
  /** Size of each chunk message, in order. */
  readonly chunkSizes: number[];
  readonly chunks: Uint8Array[];
  /** Settles when the call ends: "completed", "aborted" (the client cancelled) or the error it threw. */
  readonly ended: Promise<"completed" | "aborted" | "failed">;
}

export interface FakeMesh {
  readonly users: Client<typeof UserService>;
  readonly sessions: Client<typeof SessionService>;
  readonly photos: Client<typeof PhotoService>;
  readonly state: {
    readonly users: Map<string, StoredUser>;
    readonly sessions: Map<string, StoredSession>;
    readonly photos: Map<string, StoredPhoto>;
  };
  /** Every RPC the gateway made, as "Service.method", in order. */
  readonly calls: string[];
  readonly uploads: UploadRecord[];
  /** Content streams the gateway opened, and whether each ended because the client cancelled it. */
  readonly contentStreams: { readonly ended: Promise<"completed" | "aborted"> }[];
  /** When set, GetProfile and GetPhotos each wait (up to 2 s) until the other has started. */
  requireParallelProfileReads: boolean;
  /** Milliseconds GetPhotoContent waits before each chunk (to test cancellation mid-stream). */
  contentChunkDelayMs: number;
  addUser(fields: { email: string; name: string; password?: string }): StoredUser;
  addSession(userId: string, fields?: Partial<Pick<StoredSession, "ip" | "userAgent">>): StoredSession;
  addPhoto(userId: string, bytes: Uint8Array, contentType?: string): StoredPhoto;
}

export const pngSignature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Bytes that start like a PNG (all the fake photo service checks), then `size - 8` random bytes. */
export function fakePng(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(pngSignature);
  bytes.set(randomBytes(size - pngSignature.length), pngSignature.length);
  return bytes;
}

const sessionTtlMs = 24 * 3600_000;

export function createFakeMesh(): FakeMesh {
  const users = new Map<string, StoredUser>();
  const sessions = new Map<string, StoredSession>();
  const photos = new Map<string, StoredPhoto>();
  const calls: string[] = [];
  const uploads: UploadRecord[] = [];
  const contentStreams: { ended: Promise<"completed" | "aborted"> }[] = [];
  const started = new Set<string>();
  const startWaiters: (() => void)[] = [];

  const userMessage = (u: StoredUser): MessageInitShape<typeof UserSchema> => ({
    id: u.id,
    email: u.email,
    name: u.name,
    createdAt: timestampFromDate(u.createdAt),
    updatedAt: timestampFromDate(u.updatedAt),
  });

  const addSession = (userId: string, fields: Partial<Pick<StoredSession, "ip" | "userAgent">> = {}): StoredSession => {
    const now = new Date();
    const session: StoredSession = {
      sessionId: randomUUID(),
      userId,
      token: randomBytes(32).toString("base64url"),
      createdAt: now,
      expiresAt: new Date(now.getTime() + sessionTtlMs),
      ip: fields.ip ?? "127.0.0.1",
      userAgent: fields.userAgent ?? "test",
    };
    sessions.set(session.sessionId, session);
    return session;
  };

  const issued = (s: StoredSession) => ({ sessionId: s.sessionId, token: s.token, expiresAt: timestampFromDate(s.expiresAt) });

  const userOrThrow = (userId: string): StoredUser => {
    const user = users.get(userId);
    if (!user) throw new ConnectError("user not found", Code.NotFound);
    return user;
  };

  /** Resolves once the named read and its partner have both started (GET /me must run them together). */
  async function rendezvous(name: string, partner: string): Promise<void> {
    started.add(name);
    for (const wake of startWaiters.splice(0)) wake();
    if (!mesh.requireParallelProfileReads) return;
    const deadline = Date.now() + 2000;
    while (!started.has(partner)) {
      if (Date.now() > deadline) throw new ConnectError(`${name} ran without ${partner} in parallel`, Code.FailedPrecondition);
      await new Promise<void>((resolve) => {
        startWaiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  const userImpl = {
    async register(req) {
      calls.push("UserService.register");
      const violations = [
        ...(req.email.includes("@") ? [] : [{ field: "email", description: "must be a valid email address" }]),
        ...(req.password.length >= 8 ? [] : [{ field: "password", description: "must be at least 8 bytes" }]),
        ...(req.name ? [] : [{ field: "name", description: "is required" }]),
      ];
      if (violations.length) throw invalidArgument("invalid request", violations);
      if ([...users.values()].some((u) => u.email.toLowerCase() === req.email.toLowerCase())) {
        throw reasonedError(Code.AlreadyExists, "email already registered", "EMAIL_TAKEN");
      }
      const user = mesh.addUser({ email: req.email, name: req.name, password: req.password });
      return { user: userMessage(user), session: issued(addSession(user.id, { ip: req.ip, userAgent: req.userAgent })) };
    },
    async login(req) {
      calls.push("UserService.login");
      const user = [...users.values()].find((u) => u.email.toLowerCase() === req.email.toLowerCase());
      if (!user || user.password !== req.password) throw new ConnectError("invalid email or password", Code.Unauthenticated);
      return { user: userMessage(user), session: issued(addSession(user.id, { ip: req.ip, userAgent: req.userAgent })) };
    },
    async logout(req) {
      calls.push("UserService.logout");
      for (const s of sessions.values()) if (s.token === req.token) sessions.delete(s.sessionId);
      return {};
    },
    async deleteAccount(req) {
      calls.push("UserService.deleteAccount");
      const user = userOrThrow(req.userId);
      if (user.password !== req.password) throw new ConnectError("invalid password", Code.Unauthenticated);
      users.delete(user.id);
      for (const s of sessions.values()) if (s.userId === user.id) sessions.delete(s.sessionId);
      for (const [id, p] of photos) if (p.photo.userId === user.id) photos.delete(id);
      return {};
    },
    async updateProfile(req) {
      calls.push(`UserService.updateProfile ${JSON.stringify({ name: req.name, email: req.email, newPassword: req.newPassword, currentPassword: req.currentPassword, sessionId: req.sessionId })}`);
      const user = userOrThrow(req.userId);
      if ((req.email !== undefined || req.newPassword !== undefined) && req.currentPassword === undefined) {
        throw reasonedError(Code.FailedPrecondition, "current password required", "CURRENT_PASSWORD_REQUIRED");
      }
      if (req.currentPassword !== undefined && req.currentPassword !== user.password) {
        throw invalidArgument("invalid request", [{ field: "currentPassword", description: "does not match the current password" }]);
      }
      if (req.name !== undefined) user.name = req.name;
      if (req.email !== undefined) user.email = req.email;
      if (req.newPassword !== undefined) {
        user.password = req.newPassword;
        for (const s of sessions.values()) if (s.userId === user.id && s.sessionId !== req.sessionId) sessions.delete(s.sessionId);
      }
      user.updatedAt = new Date();
      return { user: userMessage(user) };
    },
    async getProfile(req) {
      calls.push("UserService.getProfile");
      await rendezvous("getProfile", "getPhotos");
      return { user: userMessage(userOrThrow(req.userId)) };
    },
  } satisfies ServiceImpl<typeof UserService>;

  const sessionImpl = {
    async createSession(req) {
      const s = addSession(req.userId, { ip: req.ip, userAgent: req.userAgent });
      return issued(s);
    },
    async validateSession(req) {
      const s = [...sessions.values()].find((x) => x.token === req.token);
      if (!s) throw new ConnectError("invalid session", Code.Unauthenticated);
      return { userId: s.userId, sessionId: s.sessionId, expiresAt: timestampFromDate(s.expiresAt) };
    },
    async deleteSession(req) {
      calls.push(`SessionService.deleteSession ${req.target.case}`);
      if (req.target.case === "token") {
        for (const s of sessions.values()) if (s.token === req.target.value) sessions.delete(s.sessionId);
      } else if (req.target.case === "session") {
        const s = sessions.get(req.target.value.sessionId);
        if (!s || s.userId !== req.target.value.userId) throw new ConnectError("session not found", Code.NotFound);
        sessions.delete(s.sessionId);
      }
      return {};
    },
    async listSessions(req) {
      calls.push("SessionService.listSessions");
      const mine = [...sessions.values()].filter((s) => s.userId === req.userId).reverse();
      return {
        sessions: mine.map((s) => ({
          sessionId: s.sessionId,
          userId: s.userId,
          createdAt: timestampFromDate(s.createdAt),
          lastSeenAt: timestampFromDate(s.createdAt),
          expiresAt: timestampFromDate(s.expiresAt),
          ip: s.ip,
          userAgent: s.userAgent,
        })),
      };
    },
    async deleteUserSessions(req) {
      calls.push(`SessionService.deleteUserSessions except=${req.exceptSessionId}`);
      let deletedCount = 0;
      for (const s of sessions.values()) {
        if (s.userId === req.userId && s.sessionId !== req.exceptSessionId) {
          sessions.delete(s.sessionId);
          deletedCount++;
        }
      }
      return { deletedCount };
    },
  } satisfies ServiceImpl<typeof SessionService>;

  const photoOf = (userId: string, photoId: string): StoredPhoto => {
    const stored = photos.get(photoId);
    if (!stored || stored.photo.userId !== userId) throw new ConnectError("photo not found", Code.NotFound);
    return stored;
  };

  const photoImpl = {
    async loadPhoto(requests, ctx) {
      calls.push("PhotoService.loadPhoto");
      let settle: (outcome: "completed" | "aborted" | "failed") => void = () => undefined;
      const record: UploadRecord = { chunkSizes: [], chunks: [], ended: new Promise((resolve) => (settle = resolve)) };
      uploads.push(record);
      try {
        for await (const message of requests) {
          if (message.part.case === "header") record.header = { userId: message.part.value.userId, filename: message.part.value.filename };
          else if (message.part.case === "chunk") {
            record.chunkSizes.push(message.part.value.byteLength);
            record.chunks.push(message.part.value);
          }
        }
      } catch (error) {
        settle(ctx.signal.aborted ? "aborted" : "failed");
        throw error;
      }
      if (ctx.signal.aborted) {
        settle("aborted");
        throw new ConnectError("cancelled", Code.Canceled);
      }
      const bytes = Buffer.concat(record.chunks);
      if (!Buffer.from(bytes.subarray(0, 8)).equals(Buffer.from(pngSignature))) {
        settle("failed");
        throw reasonedError(Code.InvalidArgument, "unsupported image type", "UNSUPPORTED_MEDIA_TYPE");
      }
      settle("completed");
      return { photo: mesh.addPhoto(record.header?.userId ?? "", bytes).photo };
    },
    async getPhoto(req) {
      calls.push("PhotoService.getPhoto");
      return { photo: photoOf(req.userId, req.photoId).photo };
    },
    async *getPhotoContent(req, ctx) {
      calls.push("PhotoService.getPhotoContent");
      let settle: (outcome: "completed" | "aborted") => void = () => undefined;
      contentStreams.push({ ended: new Promise((resolve) => (settle = resolve)) });
      // The gateway's cancellation reaches the handler as its signal, even while it waits to yield.
      ctx.signal.addEventListener("abort", () => settle("aborted"), { once: true });
      const stored = photoOf(req.userId, req.photoId);
      yield { part: { case: "photo", value: stored.photo } };
      for (let offset = 0; offset < stored.bytes.byteLength && !ctx.signal.aborted; offset += 64 * 1024) {
        if (mesh.contentChunkDelayMs) await new Promise((resolve) => setTimeout(resolve, mesh.contentChunkDelayMs));
        yield { part: { case: "chunk", value: stored.bytes.subarray(offset, offset + 64 * 1024) } };
      }
      settle(ctx.signal.aborted ? "aborted" : "completed");
    },
    async getPhotos(req) {
      calls.push("PhotoService.getPhotos");
      await rendezvous("getPhotos", "getProfile");
      const mine = [...photos.values()].filter((p) => p.photo.userId === req.userId).reverse();
      const size = req.pageSize || 20;
      const start = req.pageToken ? Number(req.pageToken) : 0;
      const page = mine.slice(start, start + size);
      return { photos: page.map((p) => p.photo), nextPageToken: start + size < mine.length ? String(start + size) : "" };
    },
    async deletePhoto(req) {
      calls.push("PhotoService.deletePhoto");
      photoOf(req.userId, req.photoId);
      photos.delete(req.photoId);
      return {};
    },
  } satisfies ServiceImpl<typeof PhotoService>;

  const transport = createRouterTransport(({ service }) => {
    service(UserService, userImpl);
    service(SessionService, sessionImpl);
    service(PhotoService, photoImpl);
  });

  const mesh: FakeMesh = {
    users: createClient(UserService, transport),
    sessions: createClient(SessionService, transport),
    photos: createClient(PhotoService, transport),
    state: { users, sessions, photos },
    calls,
    uploads,
    contentStreams,
    requireParallelProfileReads: false,
    contentChunkDelayMs: 0,
    addUser(fields) {
      const now = new Date();
      const user: StoredUser = { id: randomUUID(), password: "correct horse", ...fields, createdAt: now, updatedAt: now };
      users.set(user.id, user);
      return user;
    },
    addSession,
    addPhoto(userId, bytes, contentType = "image/png") {
      const photo = create(PhotoSchema, {
        id: randomUUID(),
        userId,
        contentType,
        sizeBytes: BigInt(bytes.byteLength),
        width: 640,
        height: 480,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        createdAt: timestampFromDate(new Date()),
      });
      const stored = { photo, bytes };
      photos.set(photo.id, stored);
      return stored;
    },
  };
  return mesh;
}
