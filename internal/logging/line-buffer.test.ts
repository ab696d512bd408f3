import { expect } from "chai";
import { createLineBuffer, type BufferedLine } from "./line-buffer.js";

const line = (n: number): BufferedLine => ({ routingKey: "svc.info", body: Buffer.from(String(n)), timestamp: 0 });
const text = (l: BufferedLine | undefined) => l?.body.toString();

describe("line buffer", () => {
  it("evicts the oldest waiting line when full and reports it", () => {
    const buffer = createLineBuffer(3);
    const evicted = [1, 2, 3, 4, 5].map((n) => buffer.push(line(n)));

    expect(evicted).to.deep.equal([0, 0, 0, 1, 1]);
    expect([buffer.take(), buffer.take(), buffer.take()].map((t) => text(t?.line))).to.deep.equal(["3", "4", "5"]);
    expect(buffer.take()).to.equal(undefined);
  });

  it("counts lines in flight against the capacity and evicts the oldest of them when nothing waits", () => {
    const buffer = createLineBuffer(2);
    buffer.push(line(1));
    buffer.push(line(2));
    const first = buffer.take()!;
    const second = buffer.take()!;

    expect(buffer.push(line(3))).to.equal(1);
    expect(buffer.size).to.equal(2);
    expect(buffer.confirm(first)).to.equal(false);
    expect(buffer.confirm(second)).to.equal(true);
    expect(text(buffer.take()?.line)).to.equal("3");
  });

  it("puts a released line back in its original order, ahead of newer lines", () => {
    const buffer = createLineBuffer(10);
    [1, 2, 3].forEach((n) => buffer.push(line(n)));
    const first = buffer.take()!;
    const second = buffer.take()!;
    buffer.release(second);
    buffer.release(first);

    expect([1, 2, 3].map(() => text(buffer.take()?.line))).to.deep.equal(["1", "2", "3"]);
  });

  it("returns every line in flight to the queue when the channel goes, making old tickets stale", () => {
    const buffer = createLineBuffer(10);
    [1, 2, 3, 4].forEach((n) => buffer.push(line(n)));
    const tickets = [buffer.take()!, buffer.take()!, buffer.take()!];
    buffer.releaseAll();

    expect(buffer.waiting).to.equal(4);
    const retry = buffer.take()!;
    buffer.release(tickets[0]);
    expect(buffer.confirm(tickets[0])).to.equal(false);
    expect(buffer.confirm(retry)).to.equal(true);
    expect([2, 3, 4].map(() => text(buffer.take()?.line))).to.deep.equal(["2", "3", "4"]);
  });

  it("keeps order across many lines and compactions", () => {
    const buffer = createLineBuffer(5000);
    for (let n = 0; n < 12_000; n++) {
      buffer.push(line(n));
      if (n % 3 === 0) buffer.confirm(buffer.take()!);
    }
    const rest: string[] = [];
    for (let t = buffer.take(); t; t = buffer.take()) rest.push(text(t.line)!);

    expect(rest).to.have.length(5000);
    expect(rest.map(Number)).to.deep.equal([...rest.map(Number)].sort((a, b) => a - b));
    expect(rest.at(-1)).to.equal("11999");
  });

  it("rejects a capacity below one", () => {
    expect(() => createLineBuffer(0)).to.throw(RangeError);
  });
});
