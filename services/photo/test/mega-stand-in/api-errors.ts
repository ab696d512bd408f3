// MEGA API error codes the stand-in answers with; megajs maps each negative number to its message.

/** EARGS: the command's arguments are missing or malformed. */
export const EARGS = -2;
/** ERANGE: an upload chunk lies outside the announced size. */
export const ERANGE = -7;
/** ENOENT: no such node or user; also MEGA's answer to a wrong password. */
export const ENOENT = -9;
/** ECIRCULAR: a folder would be moved into itself or one of its descendants. */
export const ECIRCULAR = -10;
/** EACCESS: the root, inbox and rubbish bin cannot be moved or deleted; files cannot hold children. */
export const EACCESS = -11;
/** ESID: the request carries no valid session id. */
export const ESID = -15;

export type MegaErrorCode =
  | typeof EARGS
  | typeof ERANGE
  | typeof ENOENT
  | typeof ECIRCULAR
  | typeof EACCESS
  | typeof ESID;
