// LogService's RPC handlers: decode the request, call the domain, shape the response.
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { LogLineSchema, LogService } from "../../gen/usermesh/logs/v1/logs_pb.js";
import type { LiveTail } from "./live-tail.js";
import { levelRank, type LogRecord } from "./log-line.js";
import type { Logs } from "./logs.js";

export interface LogHandlersDeps {
  readonly logs: Logs;
  readonly tail: Pick<LiveTail, "subscribe">;
}

/** The LogService implementation. Errors are the domain's ConnectErrors, passed through. */
export function createLogHandlers(deps: LogHandlersDeps) {
  const { logs, tail } = deps;
  return {
    async search(req) {
      const page = await logs.search({
        traceId: req.traceId,
        service: req.service,
        minLevel: req.minLevel,
        sinceMs: msOf(req.since),
        untilMs: msOf(req.until),
        text: req.text,
        limit: req.limit,
        pageToken: req.pageToken,
      });
      return { lines: page.lines.map(logLine), nextPageToken: page.nextPageToken };
    },

    async *tail(req, ctx) {
      const filter = logs.tailFilter({ service: req.service, minLevel: req.minLevel });
      // Ends when the caller cancels (the signal aborts), or when the process shuts down.
      for await (const item of tail.subscribe(filter, ctx.signal)) {
        yield { line: logLine(item.record), dropped: item.dropped };
      }
    },
  } satisfies ServiceImpl<typeof LogService>;
}

const maxTimestampSeconds = 253_402_300_799n; // 9999-12-31T23:59:59Z, the Timestamp type's own bound

/** A request timestamp in ms; NaN when it is not a valid Timestamp (the domain reports the field). */
function msOf(ts: Timestamp | undefined): number | undefined {
  if (ts === undefined) return undefined;
  const valid = ts.seconds >= -62_135_596_800n && ts.seconds <= maxTimestampSeconds && ts.nanos >= 0 && ts.nanos < 1e9;
  return valid ? timestampMs(ts) : NaN;
}

function logLine(record: LogRecord): MessageInitShape<typeof LogLineSchema> {
  return {
    ts: timestampFromMs(record.tsMs),
    level: levelRank[record.level],
    service: record.service,
    msg: record.msg,
    traceId: record.traceId,
    fields: record.fields as JsonObject,
  };
}
