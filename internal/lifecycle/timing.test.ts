import { expect } from "chai";
import { reconnectDelay, settleWithin } from "./timing.js";

describe("timing", () => {
  it("doubles the reconnect delay per failed attempt up to max, jittered within the upper half of each step", () => {
    const bounds = { min: 500, max: 15_000 };
    const low = () => 0;
    const high = () => 1;

    expect([0, 1, 2, 3, 4, 5, 10].map((n) => reconnectDelay(n, bounds, high))).to.deep.equal([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect([0, 1, 2, 5].map((n) => reconnectDelay(n, bounds, low))).to.deep.equal([500, 500, 1000, 7500]);
    for (let n = 0; n < 50; n++) expect(reconnectDelay(n, bounds)).to.be.within(500, 15_000);
  });

  it("settles when the work settles, or when the time is up, and never rejects", async () => {
    const started = Date.now();
    await settleWithin(Promise.reject(new Error("boom")), 1000);
    await settleWithin(new Promise(() => {}), 30);
    expect(Date.now() - started).to.be.below(500);
  });
});
