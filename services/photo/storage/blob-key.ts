// Blob keys: "<userId>/<photoId>", both UUIDs. Every backend parses a key here before touching storage, so a
// key can never name a path or a node outside the user's own folder.
import { invalidArgument } from "../../../internal/errors/errors.js";

export interface BlobKey {
  readonly userId: string;
  readonly photoId: string;
}

// Any version and either case: the domain checks ids with zod's uuid(), which accepts both.
const uuid = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const blobKey = new RegExp(`^(${uuid})/(${uuid})$`);

/** Splits a blob key; throws INVALID_ARGUMENT for anything but two UUIDs joined by one slash. */
export function parseBlobKey(key: string): BlobKey {
  const match = blobKey.exec(key);
  if (!match) throw invalidArgument("a blob key must be <userId>/<photoId>, both UUIDs");
  return { userId: match[1], photoId: match[2] };
}
