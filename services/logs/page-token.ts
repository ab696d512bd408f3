// Opaque Search page tokens: where the previous page stopped, bound to the query it belongs to.
import { createHash } from "node:crypto";
import { z } from "zod";

/** Where a page stopped: the ts, file and offset of a line. */
export interface PageKey {
  readonly tsMs: number;
  readonly file: string;
  readonly offset: number;
}

// Not signed: a forged token can only move where a search starts, and every line is still filtered.
const tokenSchema = z.strictObject({
  v: z.literal(1),
  /** ts, file, offset of the last line examined. */
  k: z.tuple([z.number().finite(), z.string().min(1).max(300), z.int().min(0)]),
  /** Fingerprint of the query, so a token is not replayed against different filters. */
  q: z.string(),
});

/** The token for the page after `key` of the search `scope` names (its filters, as one string): base64url JSON. */
export function encodePageToken(scope: string, key: PageKey): string {
  const token: z.infer<typeof tokenSchema> = { v: 1, k: [key.tsMs, key.file, key.offset], q: fingerprint(scope) };
  return Buffer.from(JSON.stringify(token), "utf8").toString("base64url");
}

/** The key inside a token from encodePageToken for the same scope, or undefined when it is not one. */
export function decodePageToken(scope: string, token: string): PageKey | undefined {
  if (token.length > 600 || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  const parsed = tokenSchema.safeParse(json);
  if (!parsed.success || parsed.data.q !== fingerprint(scope)) return undefined;
  const [tsMs, file, offset] = parsed.data.k;
  return { tsMs, file, offset };
}

function fingerprint(scope: string): string {
  return createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}
