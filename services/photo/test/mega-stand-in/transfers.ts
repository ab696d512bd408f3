// Upload and download slots behind the transfer URLs that `u` and `g` hand out. An upload collects
// megajs's encrypted chunks (sent concurrently, in any order) until every byte has arrived, then
// answers a completion token that `p` exchanges for a file node.
import { randomBytes } from "node:crypto";
import { ENOENT, ERANGE, type MegaErrorCode } from "./api-errors.js";

export interface Transfers {
  /** Opens an upload of exactly `size` bytes and returns its URL token. */
  openUpload(size: number): string;
  /**
   * Stores one chunk at `offset`. Returns the completion token once the chunks cover every byte, ""
   * while bytes are missing, ENOENT for an unknown or finished upload, ERANGE for a chunk past the end.
   */
  receiveChunk(token: string, offset: number, data: Buffer): string | MegaErrorCode;
  /** Takes the ciphertext of a finished upload by the handle `p` sends (base64url of the token). */
  takeCompleted(completionHandle: string): Buffer | undefined;
  /** Opens a download of a file node and returns its URL token. */
  openDownload(nodeHandle: string): string;
  /** The node a download token was opened for. */
  downloadTarget(token: string): string | undefined;
}

interface Upload {
  readonly size: number;
  readonly chunks: Map<number, Buffer>;
  received: number;
}

export function createTransfers(): Transfers {
  const uploads = new Map<string, Upload>();
  const completed = new Map<string, Buffer>();
  const downloads = new Map<string, string>();
  const token = () => randomBytes(16).toString("base64url");

  /** The whole ciphertext when the chunks tile [0, size) exactly, undefined while they do not. */
  function assemble(upload: Upload): Buffer | undefined {
    if (upload.received < upload.size) return undefined;
    const ordered = [...upload.chunks.entries()].sort(([a], [b]) => a - b);
    let position = 0;
    for (const [offset, data] of ordered) {
      if (offset !== position) return undefined;
      position += data.length;
    }
    return position === upload.size ? Buffer.concat(ordered.map(([, data]) => data), upload.size) : undefined;
  }

  return {
    openUpload(size) {
      const id = token();
      uploads.set(id, { size, chunks: new Map(), received: 0 });
      return id;
    },
    receiveChunk(id, offset, data) {
      const upload = uploads.get(id);
      if (upload === undefined) return ENOENT;
      if (offset < 0 || offset + data.length > upload.size) return ERANGE;
      // A retried chunk replaces the first attempt.
      upload.received += data.length - (upload.chunks.get(offset)?.length ?? 0);
      upload.chunks.set(offset, data);
      const ciphertext = assemble(upload);
      if (ciphertext === undefined) return "";
      uploads.delete(id);
      // megajs treats a body that parses as a negative number as an error code, so the token starts
      // with a letter.
      const completionToken = `c${randomBytes(20).toString("hex")}`;
      completed.set(Buffer.from(completionToken).toString("base64url"), ciphertext);
      return completionToken;
    },
    takeCompleted(completionHandle) {
      const ciphertext = completed.get(completionHandle);
      completed.delete(completionHandle);
      return ciphertext;
    },
    openDownload(nodeHandle) {
      const id = token();
      downloads.set(id, nodeHandle);
      return id;
    },
    downloadTarget: (id) => downloads.get(id),
  };
}
