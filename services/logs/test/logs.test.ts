// Search through the domain over the real file store: one trace across services, filters, paging (both
// the trace-id path and the scan), partial pages when the work budget runs out, and argument errors.
import { expect } from "chai";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "../../../internal/errors/errors.js";
import { openFileLogStore, type FileLogStore } from "../file-log-store.js";
import type { LogRecord } from "../log-line.js";
import { createLogs, type Logs, type SearchInput } from "../logs.js";
import { newTraceId, record, recordingLogger, tempDir } from "./fixtures.js";

const may6 = Date.parse("2024-05-06T00:00:00.000Z");
const noFilter: SearchInput = { traceId: "", service: "", minLevel: 0, text: "", limit: 0, pageToken: "" };

describe("log search (domain over the file store)", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: FileLogStore;
  let logs: Logs;
  const traceId = newTraceId();
  const written: LogRecord[] = [];

  before(async () => {
    dir = await tempDir();
    store = await openFileLogStore({ dir: dir.path, maxFileBytes: 4096, retentionDays: 14, fsync: false, clock: () => may6 + 3 * 86_400_000, logger: recordingLogger() });
    logs = createLogs({ store });
    // Three days, three services, many lines sharing a ts, the trace spread over all of them.
    const services = ["gateway", "user", "session"];
    for (let i = 0; i < 600; i++) {
      written.push(record({
        tsMs: may6 + Math.floor(i / 3) * 1000 + (i > 400 ? 86_400_000 : 0),
        service: services[i % 3],
        level: (["debug", "info", "warn", "error"] as const)[i % 4],
        msg: i % 50 === 0 ? `needle ${i}` : `line ${i}`,
        traceId: i % 37 === 0 ? traceId : newTraceId(),
        fields: { i },
      }));
    }
    for (let i = 0; i < written.length; i += 64) await store.append(written.slice(i, i + 64));
  });
  after(async () => {
    await store.close();
    await dir.remove();
  });

  /** Newest first: ts descending; equal ts keep a fixed order, which paging must not care about. */
  const expected = (keep: (r: LogRecord) => boolean) => written.filter(keep).sort((a, b) => b.tsMs - a.tsMs);
  const ids = (lines: readonly LogRecord[]) => lines.map((l) => l.fields.i as number);

  async function allPages(input: SearchInput): Promise<{ lines: LogRecord[]; pages: number }> {
    const lines: LogRecord[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await logs.search({ ...input, pageToken });
      lines.push(...page.lines);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken && pages < 1000);
    return { lines, pages };
  }

  it("finds one trace id's lines across every service and day, newest first", async () => {
    const page = await logs.search({ ...noFilter, traceId });
    const want = expected((r) => r.traceId === traceId);
    expect(new Set(page.lines.map((l) => l.service))).to.deep.equal(new Set(["gateway", "user", "session"]));
    expect(ids(page.lines).sort()).to.deep.equal(ids(want).sort());
    expect(page.lines.map((l) => l.tsMs)).to.deep.equal(want.map((l) => l.tsMs));
    expect(page.nextPageToken).to.equal("");
  });

  it("combines service, level, time and text filters", async () => {
    const since = may6 + 10_000;
    const until = may6 + 86_400_000 + 180_000;
    const page = await logs.search({ ...noFilter, service: "user", minLevel: 3, sinceMs: since, untilMs: until, limit: 1000 });
    const want = expected((r) => r.service === "user" && (r.level === "warn" || r.level === "error") && r.tsMs >= since && r.tsMs <= until);
    expect(want.length).to.be.greaterThan(10);
    expect(ids(page.lines).sort()).to.deep.equal(ids(want).sort());
    const needles = await logs.search({ ...noFilter, text: "needle", limit: 1000 });
    expect(ids(needles.lines).sort((a, b) => a - b)).to.deep.equal([0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550]);
  });

  it("pages through every line without gaps or repeats, across files and equal timestamps", async () => {
    const { lines, pages } = await allPages({ ...noFilter, limit: 7 });
    expect(pages).to.equal(Math.ceil(600 / 7));
    expect(ids(lines).sort((a, b) => a - b)).to.deep.equal(written.map((_, i) => i));
    expect(lines.map((l) => l.tsMs)).to.deep.equal(expected(() => true).map((l) => l.tsMs));

    const trace = await allPages({ ...noFilter, traceId, limit: 3 });
    expect(ids(trace.lines).sort((a, b) => a - b)).to.deep.equal(ids(expected((r) => r.traceId === traceId)).sort((a, b) => a - b));
    const filtered = await allPages({ ...noFilter, service: "session", text: "line", limit: 11 });
    expect(filtered.lines).to.have.length(expected((r) => r.service === "session" && r.msg.includes("line")).length);
  });

  it("ends a call when its work budget runs out, with a token that continues where it stopped", async () => {
    const budgeted = await openFileLogStore({ dir: dir.path, maxFileBytes: 4096, retentionDays: 14, fsync: false, clock: () => may6 + 3 * 86_400_000, logger: recordingLogger(), budget: { examine: 1000, read: 25 } });
    try {
      const small = createLogs({ store: budgeted });
      const first = await small.search({ ...noFilter, text: "needle", limit: 100 });
      expect(first.lines.length).to.be.below(12);
      expect(first.nextPageToken).to.not.equal("");
      const found = [...first.lines];
      let pageToken = first.nextPageToken;
      while (pageToken) {
        const page = await small.search({ ...noFilter, text: "needle", limit: 100, pageToken });
        found.push(...page.lines);
        pageToken = page.nextPageToken;
      }
      expect(ids(found)).to.deep.equal(ids(expected((r) => r.msg.startsWith("needle"))));
    } finally {
      await budgeted.close();
    }
  });

  it("refuses bad arguments with one field violation each", async () => {
    const error = await logs
      .search({ traceId: "t".repeat(300), service: "no/slashes", minLevel: 9, sinceMs: 2000, untilMs: 1000, text: "x".repeat(300), limit: 1001, pageToken: "not-a-token" })
      .then(() => expect.fail("should be refused"), (e: unknown) => e as ConnectError);
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(error).map((v) => v.field).sort()).to.deep.equal(["limit", "minLevel", "pageToken", "service", "text", "traceId", "until"]);
    const badTime = await logs.search({ ...noFilter, sinceMs: NaN }).catch((e: unknown) => e as ConnectError);
    expect(fieldViolationsOf(badTime as ConnectError)).to.deep.equal([{ field: "since", description: "must be a valid timestamp", reason: "INVALID_FORMAT" }]);
    expect(() => logs.tailFilter({ service: "..", minLevel: -1 })).to.throw(ConnectError).with.property("code", Code.InvalidArgument);
  });

  it("refuses a page token from a different search", async () => {
    const page = await logs.search({ ...noFilter, limit: 5 });
    const error = await logs.search({ ...noFilter, limit: 5, service: "user", pageToken: page.nextPageToken }).catch((e: unknown) => e as ConnectError);
    expect(fieldViolationsOf(error as ConnectError).map((v) => v.field)).to.deep.equal(["pageToken"]);
    // The limit may change between pages.
    expect((await logs.search({ ...noFilter, limit: 9, pageToken: page.nextPageToken })).lines).to.have.length(9);
  });
});
