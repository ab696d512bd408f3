// The file store against a real temporary directory: layout, rotation, rebuild, torn lines, retention
// (injected clock) and failed writes.
import { expect } from "chai";
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openFileLogStore, type FileLogStore, type FileLogStoreOptions } from "../file-log-store.js";
import type { LogRecord } from "../log-line.js";
import type { LogQuery } from "../logs.js";
import { newTraceId, record, recordingLogger, settableClock, storedLines, tempDir } from "./fixtures.js";

const dayMs = 86_400_000;
const may6 = Date.parse("2024-05-06T00:00:00.000Z");
const all: LogQuery = { minLevel: 0 };

describe("file log store", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let stores: FileLogStore[] = [];
  const clock = settableClock(may6 + 12 * 3_600_000);

  async function open(options: Partial<FileLogStoreOptions> = {}): Promise<FileLogStore> {
    const store = await openFileLogStore({ dir: dir.path, maxFileBytes: 1024 * 1024, retentionDays: 14, fsync: true, clock: clock.now, logger: recordingLogger(), ...options });
    stores.push(store);
    return store;
  }

  async function everything(store: FileLogStore, query: LogQuery = all): Promise<LogRecord[]> {
    return (await store.find(query, { limit: 1000 })).lines as LogRecord[];
  }

  beforeEach(async () => {
    dir = await tempDir();
    clock.set(may6 + 12 * 3_600_000);
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    stores = [];
    await dir.remove();
  });

  it("files each line under <service>/<UTC day of its ts>.jsonl with all its fields", async () => {
    const store = await open();
    const traceId = newTraceId();
    await store.append([
      record({ tsMs: may6 - 1, service: "gateway", msg: "late on the 5th", traceId, fields: { status: 200, path: "/v1/users" } }),
      record({ tsMs: may6, service: "gateway", msg: "first on the 6th", traceId }),
      record({ tsMs: may6 + 5, service: "session", level: "warn", msg: "slow redis", fields: { durationMs: 1500.5, nested: { a: [1, "b", null] } } }),
    ]);
    expect((await readdir(dir.path)).sort()).to.deep.equal(["gateway", "session"]);
    expect((await readdir(join(dir.path, "gateway"))).sort()).to.deep.equal(["2024-05-05.jsonl", "2024-05-06.jsonl"]);
    const gateway = await storedLines(dir.path, "gateway");
    expect(gateway.map((l) => [l.file, l.line])).to.deep.equal([
      ["2024-05-05.jsonl", { ts: "2024-05-05T23:59:59.999Z", level: "info", service: "gateway", traceId, msg: "late on the 5th", status: 200, path: "/v1/users" }],
      ["2024-05-06.jsonl", { ts: "2024-05-06T00:00:00.000Z", level: "info", service: "gateway", traceId, msg: "first on the 6th" }],
    ]);
    expect((await storedLines(dir.path, "session"))[0].line).to.deep.equal({
      ts: "2024-05-06T00:00:00.005Z", level: "warn", service: "session", msg: "slow redis", durationMs: 1500.5, nested: { a: [1, "b", null] },
    });
  });

  it("rotates a day's file by size to -1, -2, … and keeps every line searchable, newest first", async () => {
    const maxFileBytes = 1024;
    const store = await open({ maxFileBytes });
    const lines = Array.from({ length: 40 }, (_, i) => record({ tsMs: may6 + i, msg: `line ${i}`, fields: { pad: "x".repeat(100) } }));
    for (let i = 0; i < lines.length; i += 7) await store.append(lines.slice(i, i + 7));
    // A line larger than the limit gets a file to itself.
    await store.append([record({ tsMs: may6 + 100, msg: "huge", fields: { pad: "y".repeat(3000) } })]);

    const files = (await readdir(join(dir.path, "user"))).sort((a, b) => a.length - b.length || a.localeCompare(b));
    expect(files[0]).to.equal("2024-05-06.jsonl");
    expect(files.slice(1)).to.deep.equal(files.slice(1).map((_, i) => `2024-05-06-${i + 1}.jsonl`));
    expect(files.length).to.be.at.least(6);
    const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir.path, "user", f))).size));
    expect(sizes.slice(0, -1).every((size) => size <= maxFileBytes), `sizes ${sizes.join(",")}`).to.equal(true);
    expect(sizes.at(-1)).to.be.greaterThan(3000);
    const found = await everything(store);
    expect(found.map((l) => l.msg)).to.deep.equal(["huge", ...lines.map((l) => l.msg).reverse()]);
  });

  it("rebuilds the same index from the files at open and keeps appending to the newest file", async () => {
    const first = await open({ maxFileBytes: 1024 });
    const traceId = newTraceId();
    await first.append(Array.from({ length: 30 }, (_, i) => record({ tsMs: may6 + i, msg: `m${i}`, traceId: i % 3 === 0 ? traceId : "", level: i % 2 ? "warn" : "info", fields: { pad: "z".repeat(80) } })));
    const before = { all: await everything(first), trace: await everything(first, { traceId, minLevel: 0 }), warn: await everything(first, { minLevel: 3 }) };
    const filesBefore = (await readdir(join(dir.path, "user"))).sort();
    await first.close();

    const second = await open({ maxFileBytes: 1024 });
    expect(second.stats).to.deep.equal({ files: filesBefore.length, lines: 30 });
    expect(await everything(second)).to.deep.equal(before.all);
    expect(await everything(second, { traceId, minLevel: 0 })).to.deep.equal(before.trace);
    expect(before.trace).to.have.length(10);
    expect(await everything(second, { minLevel: 3 })).to.deep.equal(before.warn);

    await second.append([record({ tsMs: may6 + 50, msg: "after restart" })]);
    expect((await readdir(join(dir.path, "user"))).sort()).to.deep.equal(filesBefore);
    expect((await everything(second))[0].msg).to.equal("after restart");
  });

  it("cuts a torn last line off at open (a crash mid-write: that message was never acked)", async () => {
    const first = await open();
    await first.append([record({ tsMs: may6, msg: "whole" })]);
    await first.close();
    const file = join(dir.path, "user", "2024-05-06.jsonl");
    const whole = await readFile(file, "utf8");
    await appendFile(file, '{"ts":"2024-05-06T00:00:01.000Z","level":"info","serv');

    const logger = recordingLogger();
    const second = await open({ logger });
    expect(await readFile(file, "utf8")).to.equal(whole);
    expect(logger.lines.map((l) => l.msg)).to.include("cut a torn last line off a log file");
    await second.append([record({ tsMs: may6 + 1, msg: "next" })]);
    expect((await everything(second)).map((l) => l.msg)).to.deep.equal(["next", "whole"]);
  });

  it("removes whole days older than the retention and refuses lines for them (injected clock)", async () => {
    const store = await open({ retentionDays: 14 });
    await store.append([record({ tsMs: may6 + 1000, msg: "day 0" }), record({ tsMs: may6 + 1000, service: "gateway", msg: "day 0 gateway" })]);
    clock.set(may6 + 10 * dayMs);
    await store.append([record({ tsMs: may6 + 10 * dayMs, msg: "day 10" })]);
    await writeFile(join(dir.path, "user", "notes.txt"), "not a log file");

    clock.set(may6 + 14 * dayMs + 1);
    expect(await store.sweep()).to.equal(0);
    clock.set(may6 + 15 * dayMs);
    expect(await store.sweep()).to.equal(2);

    expect((await readdir(join(dir.path, "user"))).sort()).to.deep.equal(["2024-05-16.jsonl", "notes.txt"]);
    expect(await readdir(dir.path)).to.deep.equal(["user"]);
    expect((await everything(store)).map((l) => l.msg)).to.deep.equal(["day 10"]);
    expect(store.keeps(may6 + 1000)).to.equal(false);
    expect(store.keeps(may6 + dayMs)).to.equal(true);
    expect(store.keeps(clock.now() + 2 * dayMs)).to.equal(false);

    // The same at the next start: the sweep runs at open.
    clock.set(may6 + 40 * dayMs);
    await store.close();
    const reopened = await open({ retentionDays: 14 });
    expect(reopened.stats).to.deep.equal({ files: 0, lines: 0 });
  });

  it("keeps nothing of a batch whose write failed, and carries on with the next one", async () => {
    const store = await open();
    // A file where the "blocked" service's directory should be: every write for it fails.
    await writeFile(join(dir.path, "blocked"), "");
    await store.append([record({ tsMs: may6, msg: "before" })]);
    const failing = store.append([record({ tsMs: may6 + 1, msg: "lost with its batch" }), record({ tsMs: may6 + 2, service: "blocked", msg: "cannot be written" })]);
    await failing.then(() => expect.fail("the append should fail"), (error: NodeJS.ErrnoException) => expect(error.code).to.be.a("string"));
    expect(await store.writable()).to.equal(false);

    await store.append([record({ tsMs: may6 + 3, msg: "after" })]);
    expect(await store.writable()).to.equal(true);
    expect((await storedLines(dir.path, "user")).map((l) => l.line.msg)).to.deep.equal(["before", "after"]);
    expect((await everything(store)).map((l) => l.msg)).to.deep.equal(["after", "before"]);
  });

  it("hands back the newest lines of each service, as stored, to recognise redeliveries after a restart", async () => {
    const store = await open();
    await mkdir(join(dir.path, "empty"));
    await store.append([
      record({ tsMs: may6 - dayMs, msg: "older day" }),
      ...Array.from({ length: 5 }, (_, i) => record({ tsMs: may6 + i, msg: `user ${i}` })),
      record({ tsMs: may6, service: "gateway", msg: "gateway 0" }),
    ]);
    const lines = (await store.lastLines(3)).map((l) => (JSON.parse(l) as { msg: string }).msg).sort();
    expect(lines).to.deep.equal(["gateway 0", "user 2", "user 3", "user 4"]);
  });
});
