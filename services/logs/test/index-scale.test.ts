// How the index holds up at volume: a day of logs across three services, then a trace-id search, the
// newest page, a text search and the rebuild at start, timed. 60,000 lines by default; set
// LOGS_SCALE_LINES=500000 for the measurement quoted in docs/architecture.md (the bounds stay the same);
// with --node-option expose-gc the index's memory is reported too.
import { expect } from "chai";
import { openFileLogStore } from "../file-log-store.js";
import type { Level, LogRecord } from "../log-line.js";
import { createLogs } from "../logs.js";
import { newTraceId, recordingLogger, tempDir } from "./fixtures.js";

const lineCount = Number(process.env.LOGS_SCALE_LINES ?? 60_000);
const day = Date.parse("2024-05-06T00:00:00.000Z");
const clock = () => day + 86_400_000 - 1;

/** One request's lines: the gateway's, the user service's, the session service's, like the mesh writes them. */
function* requestLines(count: number): Generator<LogRecord> {
  const levels: Level[] = ["info", "info", "info", "warn", "debug", "error"];
  for (let i = 0; i < count; i += 4) {
    const traceId = newTraceId();
    const tsMs = day + Math.floor((i / count) * 86_000_000);
    const peer = `10.0.${i % 250}.${i % 200}`;
    yield { tsMs, level: "info", service: "gateway", msg: "request handled", traceId, fields: { method: "POST", path: "/v1/users/login", status: 200, durationMs: 12.5, peer } };
    yield { tsMs: tsMs + 1, level: levels[i % levels.length], service: "user", msg: "rpc handled", traceId, fields: { rpc: "usermesh.user.v1.UserService/Login", code: "OK", durationMs: 9.1, peer } };
    yield { tsMs: tsMs + 2, level: "info", service: "session", msg: "rpc handled", traceId, fields: { rpc: "usermesh.session.v1.SessionService/CreateSession", code: "OK", durationMs: 1.2, peer } };
    yield { tsMs: tsMs + 3, level: "info", service: "user", msg: `login ${i % 97 === 0 ? "throttled" : "ok"}`, traceId, fields: { userId: `u-${i}` } };
  }
}

describe(`log store at volume (${lineCount} lines, one day, three services)`, function () {
  this.timeout(600_000);

  it("finds one trace id's lines fast and rebuilds its index at start", async () => {
    const dir = await tempDir("logs-scale-");
    const timings: Record<string, number> = {};
    const time = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const result = await work();
      timings[name] = Math.round(performance.now() - started);
      return result;
    };
    try {
      const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 64 * 1024 * 1024, retentionDays: 14, fsync: false, clock, logger: recordingLogger() });
      let batch: LogRecord[] = [];
      let probe = "";
      await time("write", async () => {
        let n = 0;
        for (const line of requestLines(lineCount)) {
          batch.push(line);
          if (++n === Math.floor(lineCount / 2)) probe = line.traceId;
          if (batch.length === 500) {
            await store.append(batch);
            batch = [];
          }
        }
        await store.append(batch);
      });
      const logs = createLogs({ store });
      const search = { traceId: "", service: "", minLevel: 0, text: "", limit: 0, pageToken: "" };

      const byTrace = await time("traceSearch", () => logs.search({ ...search, traceId: probe }));
      expect(byTrace.lines.map((l) => l.service).sort()).to.deep.equal(["gateway", "session", "user", "user"]);
      const newest = await time("newestPage", () => logs.search(search));
      expect(newest.lines).to.have.length(100);
      await time("newestPageAgain", () => logs.search(search));
      const text = await time("textSearch", () => logs.search({ ...search, text: "throttled", limit: 10 }));
      expect(text.lines.length).to.be.greaterThan(0);
      // Matches nothing: one call reads up to its budget, then hands back a token to continue.
      await time("textSearchNoMatch", () => logs.search({ ...search, text: "no such text" }));
      const errors = await time("errorLevelPage", () => logs.search({ ...search, minLevel: 4 }));
      expect(errors.lines.every((l) => l.level === "error")).to.equal(true);
      await store.close();

      const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
      gc();
      const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
      const reopened = await time("rebuild", () =>
        openFileLogStore({ dir: dir.path, maxFileBytes: 64 * 1024 * 1024, retentionDays: 14, fsync: false, clock, logger: recordingLogger() }),
      );
      gc();
      const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
      expect(reopened.stats.lines).to.equal(lineCount);
      const again = await time("traceSearchAfterRebuild", () => createLogs({ store: reopened }).search({ ...search, traceId: probe }));
      expect(again.lines).to.have.length(4);
      await reopened.close();

      console.log(`      ${lineCount} lines:`, JSON.stringify({ ...timings, indexMiB: Math.round((heapAfter - heapBefore) / 1048576) }), "ms");
      expect(timings.traceSearch, "trace search ms").to.be.below(500);
      expect(timings.traceSearchAfterRebuild, "trace search after rebuild ms").to.be.below(500);
    } finally {
      await dir.remove();
    }
  });
});
