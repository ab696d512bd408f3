import { expect } from "chai";
import { createAmqpLink } from "./amqp-link.js";
import { brokerUrl, recordingLogger } from "./test-fixtures/broker.js";

describe("AMQP link", () => {
  it("refuses reconnect bounds that are not 1 <= min <= max", () => {
    const options = { url: brokerUrl, name: "test", logger: recordingLogger(), openChannel: () => Promise.reject(new Error("unused")), setup: async () => undefined };

    expect(() => createAmqpLink({ ...options, reconnectDelayMs: { min: 0, max: 10 } })).to.throw(RangeError);
    expect(() => createAmqpLink({ ...options, reconnectDelayMs: { min: 10, max: 5 } })).to.throw(RangeError);
  });
});
