import { expect } from "chai";
import { createLiveTail, type TailItem } from "../live-tail.js";
import { record } from "./fixtures.js";

async function take(iterator: AsyncIterator<TailItem>, count: number): Promise<TailItem[]> {
  const items: TailItem[] = [];
  while (items.length < count) {
    const next = await iterator.next();
    if (next.done) break;
    items.push(next.value);
  }
  return items;
}

describe("live tail", () => {
  it("gives each subscriber the lines published after it subscribed that match its filter", async () => {
    const tail = createLiveTail({ bufferLines: 10 });
    const controller = new AbortController();
    const warnings = tail.subscribe({ service: "user", minLevel: 3 }, controller.signal)[Symbol.asyncIterator]();
    const first = warnings.next();
    tail.publish(record({ tsMs: 1, level: "info", msg: "too low" }));
    tail.publish(record({ tsMs: 2, level: "error", service: "gateway", msg: "other service" }));
    tail.publish(record({ tsMs: 3, level: "warn", msg: "wanted" }));
    expect((await first).value).to.deep.include({ dropped: 0 });
    expect(((await first).value as TailItem).record.msg).to.equal("wanted");
    expect(tail.subscribers).to.equal(1);
    controller.abort();
    expect((await warnings.next()).done).to.equal(true);
    expect(tail.subscribers).to.equal(0);
  });

  it("drops a slow subscriber's oldest lines beyond its buffer and says how many on the next line", async () => {
    const dropped: number[] = [];
    const tail = createLiveTail({ bufferLines: 3, dropped: { inc: (n) => void dropped.push(n) } });
    const iterator = tail.subscribe({ minLevel: 0 }, new AbortController().signal)[Symbol.asyncIterator]();
    const first = iterator.next();
    tail.publish(record({ tsMs: 0, msg: "m0" }));
    await first;
    for (let i = 1; i <= 8; i++) tail.publish(record({ tsMs: i, msg: `m${i}` }));
    const items = await take(iterator, 3);
    expect(items.map((i) => [i.record.msg, i.dropped])).to.deep.equal([["m6", 5], ["m7", 0], ["m8", 0]]);
    expect(dropped).to.have.length(5);
    tail.close();
    expect((await iterator.next()).done).to.equal(true);
  });

  it("ends every subscription on close, and any opened afterwards at once", async () => {
    const tail = createLiveTail({ bufferLines: 3 });
    const waiting = tail.subscribe({ minLevel: 0 }, new AbortController().signal)[Symbol.asyncIterator]().next();
    await new Promise((resolve) => setImmediate(resolve));
    tail.close();
    expect((await waiting).done).to.equal(true);
    expect((await tail.subscribe({ minLevel: 0 }, new AbortController().signal)[Symbol.asyncIterator]().next()).done).to.equal(true);
  });
});
