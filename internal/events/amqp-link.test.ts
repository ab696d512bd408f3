import { expect } from "chai";
import { createAmqpLink, reconnectDelay } from "./amqp-link.js";
import { brokerUrl, recordingLogger } from "./test-fixtures/broker.js";

describe("AMQP link", () => {
  it("doubles the reconnect delay per failed attempt up to max, jittered within the upper half of each step", () => {
    const bounds = { min: 500, max: 15_000 };
    const low = () => 0;
    const high = () => 1;

    expect([0, 1, 2, 3, 4, 5, 10].map((n) => reconnectDelay(n, bounds, high))).to.deep.equal([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect([0, 1, 2, 5].map((n) => reconnectDelay(n, bounds, low))).to.deep.equal([500, 500, 1000, 7500]);
    for (let n = 0; n < 50; n++) expect(reconnectDelay(n, bounds)).to.be.within(500, 15_000);
  });

  it("refuses reconnect bounds that are not 1 <= min <= max", () => {
    const options = { url: brokerUrl, name: "test", logger: recordingLogger(), openChannel: () => Promise.reject(new Error("unused")), setup: async () => undefined };

    expect(() => createAmqpLink({ ...options, reconnectDelayMs: { min: 0, max: 10 } })).to.throw(RangeError);
    expect(() => createAmqpLink({ ...options, reconnectDelayMs: { min: 10, max: 5 } })).to.throw(RangeError);
  });
});
