import { expect } from "chai";
import { formatLogLine, parseLogBody, parseLogText, readLineHead, utcDay, type LogRecord } from "../log-line.js";
import { loggerLine } from "./fixtures.js";

const body = (text: string) => Buffer.from(text, "utf8");
const recordOf = (text: string): LogRecord => {
  const parsed = parseLogText(text);
  if (!("record" in parsed)) throw new Error(`malformed: ${parsed.detail}`);
  return parsed.record;
};

describe("log line", () => {
  it("reads a line as the shared logger writes it, keeping every other key as a field", () => {
    const text = loggerLine("user", "warn", "rpc handled", "4bf92f3577b34da6a3ce929d0e0e4736", { rpc: "X/Y", code: "OK", durationMs: 3.5, err: { message: "m", stack: "s" } }, Date.parse("2024-05-06T07:08:09.123Z"));
    const parsed = parseLogBody(body(text));
    expect(parsed).to.deep.equal({
      record: {
        tsMs: Date.parse("2024-05-06T07:08:09.123Z"),
        level: "warn",
        service: "user",
        msg: "rpc handled",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        fields: { rpc: "X/Y", code: "OK", durationMs: 3.5, err: { message: "m", stack: "s" } },
      },
    });
  });

  it("calls a message malformed, with a reason, when it is not a log line", () => {
    const cases: [string, string][] = [
      ["not json at all", "not_json"],
      ["[1,2]", "not_json"],
      ['{"ts":"2024-05-06T07:08:09.123Z","level":"info","service":"user"}', "missing_field"],
      ['{"level":"info","service":"user","msg":"m"}', "missing_field"],
      ['{"ts":"yesterday-ish","level":"info","service":"user","msg":"m"}', "bad_field"],
      ['{"ts":"2024-05-06T07:08:09.123Z","level":"verbose","service":"user","msg":"m"}', "bad_field"],
      ['{"ts":"2024-05-06T07:08:09.123Z","level":"info","service":"../etc","msg":"m"}', "bad_field"],
      ['{"ts":"2024-05-06T07:08:09.123Z","level":"info","service":"user","msg":"m","traceId":42}', "bad_field"],
    ];
    for (const [text, reason] of cases) {
      const parsed = parseLogBody(body(text));
      expect("malformed" in parsed && parsed.malformed, text).to.equal(reason);
    }
    expect(parseLogBody(Buffer.alloc(1024 * 1024 + 1, 0x20))).to.include({ malformed: "too_large" });
  });

  it("stores ts, level, service, traceId and msg first, and reads that head back without a full parse", () => {
    const record = recordOf(loggerLine("session", "error", "line\nwith \"quotes\"", 'odd"trace\\id', { a: 1 }, Date.parse("2024-05-06T00:00:00Z")));
    const stored = formatLogLine(record);
    expect(stored).to.not.include("\n");
    expect(stored.startsWith('{"ts":"2024-05-06T00:00:00.000Z","level":"error","service":"session","traceId":')).to.equal(true);
    expect(recordOf(stored)).to.deep.equal(record);
    expect(readLineHead(stored)).to.deep.equal({ tsMs: record.tsMs, level: "error", traceId: 'odd"trace\\id' });
    // Another layout still reads, through the full parse.
    expect(readLineHead(loggerLine("user", "info", "m", "t1", {}, 0))).to.deep.equal({ tsMs: 0, level: "info", traceId: "t1" });
    expect(readLineHead("garbage")).to.equal(undefined);
  });

  it("files a line under the UTC day of its ts", () => {
    expect(utcDay(Date.parse("2024-05-06T23:59:59.999Z"))).to.equal("2024-05-06");
    expect(utcDay(Date.parse("2024-05-07T01:00:00+02:00"))).to.equal("2024-05-06");
  });
});
