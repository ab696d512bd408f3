// Field rules for accounts: email syntax, display names, password length in bytes. Each check appends its
// violations (proto3 JSON field names) so a request reports every problem at once.
import { z } from "zod";
import { invalidArgument, type FieldViolation } from "../../internal/errors/errors.js";

/** RFC 5321's limit on a forward path. */
export const maxEmailLength = 254;
/** Counted in code points after trimming and NFC normalisation. */
export const maxNameLength = 64;
export const minPasswordBytes = 8;
/** bcrypt ignores every byte after the 72nd, so a longer password is refused instead of truncated. */
export const maxPasswordBytes = 72;

// zod's default pattern: ASCII local part and domain. ASCII-only addresses are what lets lower() in
// PostgreSQL and toLowerCase() here agree on which emails are "the same" whatever the collation.
const emailSyntax = z.email();
// Control (Cc), format (Cf: zero-width, bidi overrides), lone surrogates (Cs), line/paragraph separators.
const invisible = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/**
 * Checks an email address: required, at most 254 characters, valid syntax (ASCII). Returns it trimmed,
 * with its case kept as given; compare addresses with emailKey.
 */
export function checkEmail(raw: string, field: string, violations: FieldViolation[]): string {
  const email = raw.trim();
  if (email === "") violations.push(required(field));
  else if (email.length > maxEmailLength) violations.push(tooLong(field, `${maxEmailLength} characters`));
  else if (!emailSyntax.safeParse(email).success) {
    violations.push({ field, description: "must be a valid email address", reason: "INVALID_FORMAT" });
  }
  return email;
}

/**
 * Checks a display name: 1..64 characters (code points, after trimming and NFC), none of them control,
 * format or separator characters. Returns the name trimmed and NFC-normalised.
 */
export function checkName(raw: string, field: string, violations: FieldViolation[]): string {
  const name = raw.normalize("NFC").trim();
  const length = [...name].length;
  if (length === 0) violations.push(required(field));
  else if (length > maxNameLength) violations.push(tooLong(field, `${maxNameLength} characters`));
  if (invisible.test(name)) {
    violations.push({
      field,
      description: "must not contain control or invisible formatting characters",
      reason: "INVALID_CHARACTERS",
    });
  }
  return name;
}

/** Checks a new password: 8..72 bytes of UTF-8. Never trims or truncates it. */
export function checkPassword(raw: string, field: string, violations: FieldViolation[]): void {
  const bytes = Buffer.byteLength(raw, "utf8");
  if (bytes === 0) violations.push(required(field));
  else if (bytes < minPasswordBytes) {
    violations.push({ field, description: `must be at least ${minPasswordBytes} bytes`, reason: "TOO_SHORT" });
  } else if (bytes > maxPasswordBytes) violations.push(tooLong(field, `${maxPasswordBytes} bytes (UTF-8)`));
}

/** True when bcrypt would see the whole password (it silently ignores bytes past the 72nd). */
export function fitsBcrypt(password: string): boolean {
  return Buffer.byteLength(password, "utf8") <= maxPasswordBytes;
}

/** Appends REQUIRED when the value is empty. */
export function checkRequired(value: string, field: string, violations: FieldViolation[]): void {
  if (value === "") violations.push(required(field));
}

/** Appends INVALID_FORMAT unless the value is a UUID (REQUIRED when empty). */
export function checkUuid(value: string, field: string, violations: FieldViolation[]): void {
  if (value === "") violations.push(required(field));
  else if (!z.uuid().safeParse(value).success) {
    violations.push({ field, description: "must be a UUID", reason: "INVALID_FORMAT" });
  }
}

/** The form emails are compared, looked up and throttled by (the users table's unique index agrees). */
export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

/** Throws INVALID_ARGUMENT carrying every violation, when there is any. */
export function throwIfAny(violations: readonly FieldViolation[]): void {
  if (violations.length > 0) throw invalidArgument("invalid request", violations);
}

export interface Registration {
  readonly email: string;
  readonly name: string;
  readonly password: string;
}

/**
 * Checks a registration's fields together. Returns the email trimmed and the name normalised; throws
 * INVALID_ARGUMENT with a violation for each bad field ("email", "name", "password").
 */
export function validateRegistration(input: Registration): Registration {
  const violations: FieldViolation[] = [];
  const email = checkEmail(input.email, "email", violations);
  const name = checkName(input.name, "name", violations);
  checkPassword(input.password, "password", violations);
  throwIfAny(violations);
  return { email, name, password: input.password };
}

function required(field: string): FieldViolation {
  return { field, description: "must not be empty", reason: "REQUIRED" };
}

function tooLong(field: string, limit: string): FieldViolation {
  return { field, description: `must be at most ${limit}`, reason: "TOO_LONG" };
}
