import { expect } from "chai";
import { toLoggable } from "./loggable.js";

describe("toLoggable", () => {
  it("keeps shared (non-circular) references intact and marks only true cycles", () => {
    const shared = { id: 1 };
    const list: unknown[] = [shared, shared];
    list.push(list);

    expect(toLoggable({ a: shared, b: shared, list })).to.deep.equal({
      a: { id: 1 },
      b: { id: 1 },
      list: [{ id: 1 }, { id: 1 }, "[Circular]"],
    });
  });

  it("writes Maps as objects, Sets as arrays, bytes as a length and dates as ISO strings", () => {
    const value = {
      map: new Map<unknown, unknown>([["a", 1], [2, "b"]]),
      set: new Set([1, 2]),
      bytes: Buffer.from("secret body"),
      at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)),
      bad: new Date(Number.NaN),
    };

    expect(toLoggable(value)).to.deep.equal({
      map: { a: 1, "2": "b" },
      set: [1, 2],
      bytes: "<11 bytes>",
      at: "2024-01-02T03:04:05.006Z",
      bad: "Invalid Date",
    });
  });

  it("cuts nesting deeper than ten levels", () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { next: deep };

    expect(JSON.stringify(toLoggable(deep))).to.contain('"[Truncated]"').and.not.contain("leaf");
  });

  it("keeps a __proto__ key as data rather than a prototype", () => {
    const parsed = JSON.parse('{"__proto__": {"admin": true}}') as unknown;
    const copy = toLoggable(parsed) as Record<string, unknown>;

    expect(Object.getPrototypeOf(copy)).to.equal(Object.prototype);
    expect(JSON.stringify(copy)).to.equal('{"__proto__":{"admin":true}}');
  });

  it("omits undefined, functions and symbols as JSON would, and writes non-finite numbers as text", () => {
    expect(toLoggable({ u: undefined, f: () => 1, s: Symbol("x"), n: Number.NaN, list: [undefined] })).to.deep.equal({
      n: "NaN",
      list: [null],
    });
  });

  it("follows a cause only one level down", () => {
    const root = new Error("root");
    const middle = new Error("middle", { cause: root });
    const top = new Error("top", { cause: middle });

    const logged = toLoggable(top) as { cause: Record<string, unknown> };
    expect(logged.cause).to.include({ message: "middle" });
    expect(logged.cause).not.to.have.property("cause");
  });
});
