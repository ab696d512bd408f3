// The Logs domain: what a search or a tail may ask for, how a line matches it, and paging through results
// with opaque tokens. Declares the store it reads from (LogStore).
import { invalidArgument, type FieldViolation } from "../../internal/errors/errors.js";
import { isServiceName, levelRank, maxTraceIdLength, type LogRecord } from "./log-line.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

/** A validated search: every filter optional, combined with AND. */
export interface LogQuery {
  readonly traceId?: string;
  readonly service?: string;
  /** Lowest levelRank wanted; 0 means every level. */
  readonly minLevel: number;
  /** Inclusive bounds on ts, in milliseconds. */
  readonly sinceMs?: number;
  readonly untilMs?: number;
  /** Case-sensitive substring of msg. */
  readonly text?: string;
}

/**
 * A line's position in the result order: ts descending, then file and offset descending. `file` is the
 * store's name for the file; the domain only carries it in page tokens.
 */
export interface LineKey {
  readonly tsMs: number;
  readonly file: string;
  readonly offset: number;
}

export interface FoundPage {
  readonly lines: readonly LogRecord[];
  /** Set when more lines may match: pass it back as `after` to continue. */
  readonly resumeAfter?: LineKey;
}

/** Where lines are searched. */
export interface LogStore {
  /**
   * Lines matching `query` that come after `after` in the result order (all of them without it), at most
   * `limit`. A store may stop early, returning fewer lines (even none) with resumeAfter set, to bound the
   * work of one call. Rejects only when storage cannot be read.
   */
  find(query: LogQuery, options: { limit: number; after?: LineKey }): Promise<FoundPage>;
}

/** Orders keys as results are returned: negative when `a` comes first (is newer). */
export function compareKeys(a: LineKey, b: LineKey): number {
  if (a.tsMs !== b.tsMs) return b.tsMs - a.tsMs;
  if (a.file !== b.file) return a.file < b.file ? 1 : -1;
  return b.offset - a.offset;
}

/** True when the record passes every filter of the query. */
export function matchesQuery(record: LogRecord, query: LogQuery): boolean {
  return (
    (query.traceId === undefined || record.traceId === query.traceId) &&
    (query.service === undefined || record.service === query.service) &&
    levelRank[record.level] >= query.minLevel &&
    (query.sinceMs === undefined || record.tsMs >= query.sinceMs) &&
    (query.untilMs === undefined || record.tsMs <= query.untilMs) &&
    (query.text === undefined || record.msg.includes(query.text))
  );
}

export const defaultLimit = 100;
export const maxLimit = 1000;
const maxTextLength = 256;

/** A Search request as the handler decodes it; timestamps in ms, NaN when the request's was invalid. */
export interface SearchInput {
  readonly traceId: string;
  readonly service: string;
  readonly minLevel: number;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly text: string;
  readonly limit: number;
  readonly pageToken: string;
}

export interface SearchPage {
  readonly lines: readonly LogRecord[];
  /** "" on the last page. */
  readonly nextPageToken: string;
}

/** What a Tail subscriber receives. */
export interface TailFilter {
  readonly service?: string;
  readonly minLevel: number;
}

export interface Logs {
  /**
   * One page of lines newest first. Throws INVALID_ARGUMENT listing every bad field (limit outside
   * 0..maxLimit, unknown minLevel, invalid or reversed since/until, over-long traceId or text, a service
   * that is no valid name, a pageToken not from a previous page of this same search); passes on what the
   * store throws.
   */
  search(input: SearchInput): Promise<SearchPage>;
  /** The filter of a Tail request; throws INVALID_ARGUMENT for a bad service name or unknown minLevel. */
  tailFilter(input: { service: string; minLevel: number }): TailFilter;
}

export function createLogs(deps: { readonly store: LogStore }): Logs {
  const { store } = deps;
  return {
    async search(input) {
      const violations: FieldViolation[] = [];
      checkService(input.service, violations);
      checkLevel(input.minLevel, violations);
      if (input.traceId.length > maxTraceIdLength) violations.push(tooLong("traceId", maxTraceIdLength));
      if (input.text.length > maxTextLength) violations.push(tooLong("text", maxTextLength));
      for (const [field, value] of [["since", input.sinceMs], ["until", input.untilMs]] as const) {
        if (value !== undefined && !Number.isFinite(value)) {
          violations.push({ field, description: "must be a valid timestamp", reason: "INVALID_FORMAT" });
        }
      }
      if (input.sinceMs !== undefined && input.untilMs !== undefined && input.sinceMs > input.untilMs) {
        violations.push({ field: "until", description: "must not be before since", reason: "INVALID_RANGE" });
      }
      if (!Number.isInteger(input.limit) || input.limit < 0 || input.limit > maxLimit) {
        violations.push({ field: "limit", description: `must be 1..${maxLimit} (0 means ${defaultLimit})`, reason: "OUT_OF_RANGE" });
      }
      const query: LogQuery = {
        ...(input.traceId !== "" && { traceId: input.traceId }),
        ...(input.service !== "" && { service: input.service }),
        minLevel: input.minLevel,
        ...(input.sinceMs !== undefined && { sinceMs: input.sinceMs }),
        ...(input.untilMs !== undefined && { untilMs: input.untilMs }),
        ...(input.text !== "" && { text: input.text }),
      };
      const scope = JSON.stringify([query.traceId, query.service, query.minLevel, query.sinceMs, query.untilMs, query.text]);
      const after = input.pageToken === "" ? undefined : decodePageToken(scope, input.pageToken);
      if (input.pageToken !== "" && after === undefined) {
        violations.push({ field: "pageToken", description: "is not a token from a previous page of this search", reason: "INVALID_FORMAT" });
      }
      if (violations.length > 0) throw invalidArgument("invalid search", violations);

      const page = await store.find(query, { limit: input.limit || defaultLimit, ...(after && { after }) });
      return {
        lines: page.lines,
        nextPageToken: page.resumeAfter ? encodePageToken(scope, page.resumeAfter) : "",
      };
    },

    tailFilter(input) {
      const violations: FieldViolation[] = [];
      checkService(input.service, violations);
      checkLevel(input.minLevel, violations);
      if (violations.length > 0) throw invalidArgument("invalid tail request", violations);
      return { ...(input.service !== "" && { service: input.service }), minLevel: input.minLevel };
    },
  };
}

/** True when a Tail subscriber with this filter wants the record. */
export function matchesTail(record: LogRecord, filter: TailFilter): boolean {
  return (filter.service === undefined || record.service === filter.service) && levelRank[record.level] >= filter.minLevel;
}

function checkService(service: string, violations: FieldViolation[]): void {
  if (service !== "" && !isServiceName(service)) {
    violations.push({ field: "service", description: "must be a service name (1..64 of A-Z a-z 0-9 . _ -)", reason: "INVALID_FORMAT" });
  }
}

function checkLevel(minLevel: number, violations: FieldViolation[]): void {
  if (!Number.isInteger(minLevel) || minLevel < 0 || minLevel > levelRank.error) {
    violations.push({ field: "minLevel", description: "must be a LogLevel", reason: "OUT_OF_RANGE" });
  }
}

function tooLong(field: string, max: number): FieldViolation {
  return { field, description: `must be at most ${max} characters`, reason: "TOO_LONG" };
}
