// The user service's errors, built from the mesh's vocabulary (internal/errors) so codes, reasons and
// messages stay identical wherever a rule is enforced.
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  unauthenticated,
  type ConnectError,
} from "../../internal/errors/errors.js";

/** ErrorInfo reasons callers may branch on. */
export const reasons = {
  emailTaken: "EMAIL_TAKEN",
  currentPasswordRequired: "CURRENT_PASSWORD_REQUIRED",
} as const;

/** ALREADY_EXISTS, reason EMAIL_TAKEN: another account holds this email (compared case-insensitively). */
export function emailTaken(): ConnectError {
  return alreadyExists("email already registered", reasons.emailTaken);
}

/** UNAUTHENTICATED, identical for an unknown email and a wrong password so neither can be told apart. */
export function invalidCredentials(): ConnectError {
  return unauthenticated("invalid email or password");
}

/** UNAUTHENTICATED: the account's password, asked again to confirm a destructive action, is wrong. */
export function wrongPassword(): ConnectError {
  return unauthenticated("invalid password");
}

/** FAILED_PRECONDITION, reason CURRENT_PASSWORD_REQUIRED: changing password or email needs the current one. */
export function currentPasswordRequired(): ConnectError {
  return failedPrecondition("current password required to change password or email", reasons.currentPasswordRequired);
}

/**
 * INVALID_ARGUMENT on field currentPassword. Not UNAUTHENTICATED: the caller's session is valid, only a
 * form field is wrong, and a 401 would make clients drop the session and log the user out.
 */
export function wrongCurrentPassword(): ConnectError {
  return invalidArgument("invalid request", [
    { field: "currentPassword", description: "does not match the current password", reason: "WRONG_PASSWORD" },
  ]);
}

export function userNotFound(): ConnectError {
  return notFound("user not found");
}
