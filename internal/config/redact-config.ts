// Makes a config safe to log: a deep copy with secret values and passwords inside URLs replaced.

const redacted = "[redacted]";
// Separators are ignored so api_key and api-key match as apikey does.
const secretKey = /password|passwd|secret|token|apikey|credential/i;
// scheme://user:PASSWORD@host — greedy up to the last "@" of the authority, which is where URL parsers
// split userinfo from host, so a password holding a raw "@" is hidden entirely.
const urlPassword = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#:@]*:)[^\s/?#]*@/gi;
// ?password=... and friends in a query string.
const queryPassword = /([?&][^\s=&#]*(?:password|passwd|secret|token|api[_-]?key|credential)[^\s=&#]*=)[^\s&#]*/gi;

/**
 * Returns a deep copy of `config` for logging: values under keys matching
 * /password|secret|token|apikey|credential/i become "[redacted]", and in every string the password of a
 * URL (`amqp://guest:guest@host` → `amqp://guest:[redacted]@host`) and secret query parameters are
 * replaced. Never throws; values that are not plain objects, arrays or strings are returned as they are.
 */
export function redactConfig(config: unknown): unknown {
  return copy(config, new Set());
}

/** Replaces URL passwords and secret query parameters inside any text. */
function redactText(text: string): string {
  return text.replace(urlPassword, `$1${redacted}@`).replace(queryPassword, `$1${redacted}`);
}

function copy(value: unknown, ancestors: Set<object>): unknown {
  if (typeof value === "string") return redactText(value);
  if (value instanceof URL) return redactText(value.href);
  if (typeof value !== "object" || value === null) return value;
  if (ancestors.has(value)) return "[circular]";
  const proto: unknown = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  ancestors.add(value);
  const out = Array.isArray(value)
    ? value.map((item: unknown) => copy(item, ancestors))
    : Object.fromEntries(
        Object.entries(value).map(([key, child]: [string, unknown]) => [
          key,
          isSecretKey(key) && child !== undefined && child !== null ? redacted : copy(child, ancestors),
        ]),
      );
  ancestors.delete(value);
  return out;
}

function isSecretKey(key: string): boolean {
  return secretKey.test(key.replace(/[_-]/g, ""));
}
