// What the REST routes need from the process: the gRPC clients, the per-route middleware and a little
// config. main.ts builds one RouteDeps; each router takes only the part it uses.
import type { RequestHandler } from "express";
import type { Client } from "@connectrpc/connect";
import type { PhotoService } from "../../gen/usermesh/photo/v1/photo_pb.js";
import type { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import type { UserService } from "../../gen/usermesh/user/v1/user_pb.js";

export interface SessionCookieConfig {
  /** The cookie's name ("session" in the REST contract). */
  readonly name: string;
  /** Adds the Secure attribute: on wherever the gateway is reached over HTTPS. */
  readonly secure: boolean;
}

export interface UploadConfig {
  /** Largest photo the gateway forwards, in bytes; above it the upload is cut off with 413. */
  readonly maxBytes: number;
}

export interface RouteDeps {
  readonly users: Client<typeof UserService>;
  readonly sessions: Client<typeof SessionService>;
  readonly photos: Client<typeof PhotoService>;
  /** Validates the bearer token or session cookie and sets the caller (setAuth), or fails with 401. */
  readonly requireAuth: RequestHandler;
  /** Same-origin check for cookie-authenticated unsafe methods; runs after requireAuth. */
  readonly csrf: RequestHandler;
  /** Parses an application/json body (16 KiB) into req.body, or fails with 415/400/413. */
  readonly jsonBody: RequestHandler;
  readonly cookie: SessionCookieConfig;
  readonly upload: UploadConfig;
}
