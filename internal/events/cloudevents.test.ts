import { expect } from "chai";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageProperties } from "amqplib";
import { UserRegisteredSchema } from "../../gen/usermesh/events/v1/events_pb.js";
import { fromAmqpMessage, InvalidCloudEventError, toAmqpMessage } from "./cloudevents.js";
import type { CloudEvent } from "./cloudevents.js";
import { sampleEvent } from "./test-fixtures/broker.js";

/** What a consumer sees for a message published with these options (as amqplib reports properties). */
function asReceived(message: ReturnType<typeof toAmqpMessage>): { content: Buffer; properties: MessageProperties } {
  const { options } = message;
  return {
    content: message.content,
    properties: {
      contentType: options.contentType,
      contentEncoding: undefined,
      headers: options.headers as MessageProperties["headers"],
      deliveryMode: options.persistent ? 2 : 1,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: options.messageId,
      timestamp: options.timestamp,
      type: options.type,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    },
  };
}

function withHeaders(headers: Record<string, unknown>, properties: Partial<MessageProperties> = {}) {
  const received = asReceived(toAmqpMessage(sampleEvent()));
  return { ...received, properties: { ...received.properties, headers, ...properties } };
}

function errorOf(read: () => unknown): InvalidCloudEventError {
  try {
    read();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidCloudEventError);
    return error as InvalidCloudEventError;
  }
  expect.fail("expected an InvalidCloudEventError");
}

const validHeaders = {
  cloudEvents_specversion: "1.0",
  cloudEvents_id: "evt-1",
  cloudEvents_source: "/usermesh/user",
  cloudEvents_type: "usermesh.user.v1.deleted",
  cloudEvents_time: "2018-04-05T03:56:24Z",
};

describe("CloudEvents AMQP binding (binary content mode)", () => {
  it("round-trips every attribute and the data", () => {
    const event = sampleEvent();

    const back = fromAmqpMessage(asReceived(toAmqpMessage(event)));

    expect(back).to.deep.equal({ ...event, specVersion: "1.0" });
    expect(back.time.getTime()).to.equal(event.time.getTime());
  });

  it("leaves subject out when the event has none", () => {
    const event = sampleEvent({ subject: undefined });
    delete event.subject;

    const message = toAmqpMessage(event);

    expect(message.options.headers).not.to.have.property("cloudEvents_subject");
    expect(fromAmqpMessage(asReceived(message))).not.to.have.property("subject");
  });

  it("names the application properties with the spec's cloudEvents_ prefix and maps datacontenttype to content-type", () => {
    const event = sampleEvent();

    const { content, options } = toAmqpMessage(event);

    expect(options.headers).to.deep.equal({
      cloudEvents_specversion: "1.0",
      cloudEvents_id: event.id,
      cloudEvents_source: "/usermesh/user",
      cloudEvents_type: "usermesh.user.v1.registered",
      cloudEvents_time: "2024-05-06T07:08:09.123Z",
      cloudEvents_subject: "u-42",
    });
    expect(options).to.include({
      contentType: "application/protobuf",
      messageId: event.id,
      timestamp: Math.floor(event.time.getTime() / 1000),
      type: "usermesh.user.v1.registered",
      persistent: true,
    });
    expect([...content]).to.deep.equal([1, 2, 3, 250]);
  });

  it("reads a message that uses the older cloudEvents: separator", () => {
    const legacy = Object.fromEntries(Object.entries(validHeaders).map(([k, v]) => [k.replace("cloudEvents_", "cloudEvents:"), v]));

    const event = fromAmqpMessage(withHeaders(legacy));

    expect(event).to.include({ id: "evt-1", type: "usermesh.user.v1.deleted", source: "/usermesh/user" });
    expect(event.time.toISOString()).to.equal("2018-04-05T03:56:24.000Z");
  });

  for (const attribute of ["id", "type", "source", "specversion"]) {
    it(`throws InvalidCloudEventError naming cloudEvents_${attribute} when it is missing`, () => {
      const headers: Record<string, unknown> = { ...validHeaders };
      delete headers[`cloudEvents_${attribute}`];

      const error = errorOf(() => fromAmqpMessage(withHeaders(headers)));

      expect(error.attribute).to.equal(attribute);
      expect(error.message).to.contain(`cloudEvents_${attribute}`);
    });
  }

  it("throws naming the attribute when it is empty, of the wrong type, or an unsupported specversion", () => {
    expect(errorOf(() => fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_id: "" }))).attribute).to.equal("id");
    expect(errorOf(() => fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_source: 7 }))).attribute).to.equal("source");
    const version = errorOf(() => fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_specversion: "0.3" })));
    expect(version.attribute).to.equal("specversion");
    expect(version.message).to.contain("0.3");
  });

  it("throws naming time when it is missing or not RFC 3339", () => {
    const noTime: Record<string, unknown> = { ...validHeaders };
    delete noTime.cloudEvents_time;
    expect(errorOf(() => fromAmqpMessage(withHeaders(noTime))).attribute).to.equal("time");
    const garbled = errorOf(() => fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_time: "yesterday" })));
    expect(garbled.attribute).to.equal("time");
  });

  it("accepts time as a native AMQP timestamp and with an offset", () => {
    const native = fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_time: { "!": "timestamp", value: 1522900584 } }));
    expect(native.time.toISOString()).to.equal("2018-04-05T03:56:24.000Z");
    const offset = fromAmqpMessage(withHeaders({ ...validHeaders, cloudEvents_time: "2018-04-05T05:56:24.5+02:00" }));
    expect(offset.time.toISOString()).to.equal("2018-04-05T03:56:24.500Z");
  });

  it("throws naming datacontenttype when the content-type property is missing", () => {
    const error = errorOf(() => fromAmqpMessage(withHeaders(validHeaders, { contentType: undefined })));

    expect(error.attribute).to.equal("datacontenttype");
  });

  it("refuses to encode an event the binding must not send", () => {
    expect(errorOf(() => toAmqpMessage(sampleEvent({ id: "" }))).attribute).to.equal("id");
    expect(errorOf(() => toAmqpMessage(sampleEvent({ time: new Date(Number.NaN) }))).attribute).to.equal("time");
    expect(errorOf(() => toAmqpMessage(sampleEvent({ subject: "" }))).attribute).to.equal("subject");
    const wrongVersion = { ...sampleEvent(), specVersion: "0.3" } as unknown as CloudEvent;
    expect(errorOf(() => toAmqpMessage(wrongVersion)).attribute).to.equal("specversion");
  });

  it("carries a UserRegistered payload that decodes back with fromBinary", () => {
    const registeredAt = new Date("2024-05-06T07:08:09.123Z");
    const payload = create(UserRegisteredSchema, { userId: "u-42", registeredAt: timestampFromDate(registeredAt) });
    const event = sampleEvent({ data: toBinary(UserRegisteredSchema, payload) });

    const back = fromAmqpMessage(asReceived(toAmqpMessage(event)));
    const decoded = fromBinary(UserRegisteredSchema, back.data);

    expect(decoded.userId).to.equal("u-42");
    expect(timestampDate(decoded.registeredAt!).getTime()).to.equal(registeredAt.getTime());
  });
});
