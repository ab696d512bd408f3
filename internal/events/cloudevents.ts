// CloudEvents 1.0 in the AMQP protocol binding, binary content mode: an event to amqplib publish arguments and back.
//
// Followed: "AMQP Protocol Binding for CloudEvents - Version 1.0.3-wip" (cloudevents/spec,
// cloudevents/bindings/amqp-protocol-binding.md at commit 83a8bd9150de032b4788be72341c5f5f767df92e),
// §3.1.3.1: attributes MUST be prefixed "cloudEvents_" or "cloudEvents:", "_" SHOULD be preferred (JMS 2.0
// selectors reject ":"), one message uses one separator, and consumers SHOULD understand both. The released
// 1.0.2 text knew only "cloudEvents:", so we write "_" and still read ":". In AMQP 0-9-1 (RabbitMQ, amqplib)
// the application-properties section is the `headers` table.
import type { MessageProperties, Options } from "amqplib";

/** A CloudEvents 1.0 event whose data is already encoded (e.g. protobuf bytes) as dataContentType says. */
export interface CloudEvent {
  /** Unique per source; the same event published twice keeps its id, so consumers can deduplicate. */
  id: string;
  /** URI-reference naming the producer, e.g. "/usermesh/user". */
  source: string;
  /** Reverse-DNS event type, e.g. "usermesh.user.v1.registered". */
  type: string;
  /** When the occurrence happened. Optional in CloudEvents, required here: every mesh event carries it. */
  time: Date;
  subject?: string;
  /** Media type of data, e.g. "application/protobuf". Carried as the AMQP content-type property. */
  dataContentType: string;
  data: Uint8Array;
  specVersion?: "1.0";
}

/** The message does not hold a valid CloudEvent; `attribute` names the missing or invalid one. */
export class InvalidCloudEventError extends Error {
  override readonly name = "InvalidCloudEventError";
  constructor(
    readonly attribute: string,
    message: string,
  ) {
    super(message);
  }
}

const prefix = "cloudEvents_";
// The separator of the binding's earlier drafts and 1.0.2; still accepted on input.
const legacyPrefix = "cloudEvents:";
const specVersion = "1.0";
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Maps an event to the body and publish options of the binary content mode: specversion, id, source,
 * type, time (RFC 3339, UTC) and subject become `cloudEvents_*` headers; dataContentType the AMQP
 * content-type; data the body (copied). Also sets messageId = id, timestamp = time (seconds), type = type
 * and persistent. Throws InvalidCloudEventError for an event the binding must not send (empty id, source,
 * type, subject or dataContentType; invalid time; a specVersion other than "1.0").
 */
export function toAmqpMessage(event: CloudEvent): { content: Buffer; options: Options.Publish } {
  requireText("id", event.id);
  requireText("source", event.source);
  requireText("type", event.type);
  requireText("datacontenttype", event.dataContentType);
  if (event.subject !== undefined) requireText("subject", event.subject);
  // Checked at run time too: events may come from untyped code (e.g. JSON read back from an outbox row).
  if (event.specVersion !== undefined && (event.specVersion as string) !== specVersion) {
    throw new InvalidCloudEventError("specversion", `CloudEvents specversion must be "${specVersion}"`);
  }
  if (!(event.time instanceof Date) || Number.isNaN(event.time.getTime())) {
    throw new InvalidCloudEventError("time", "CloudEvents time must be a valid Date");
  }
  const headers: Record<string, string> = {
    [`${prefix}specversion`]: specVersion,
    [`${prefix}id`]: event.id,
    [`${prefix}source`]: event.source,
    [`${prefix}type`]: event.type,
    [`${prefix}time`]: event.time.toISOString(),
  };
  if (event.subject !== undefined) headers[`${prefix}subject`] = event.subject;
  return {
    content: Buffer.from(event.data),
    options: {
      headers,
      contentType: event.dataContentType,
      messageId: event.id,
      timestamp: Math.floor(event.time.getTime() / 1000),
      type: event.type,
      persistent: true,
    },
  };
}

/**
 * Reads a binary-mode CloudEvent from a received message (`cloudEvents_*` headers, or `cloudEvents:*`
 * when the message uses that separator). Throws InvalidCloudEventError naming the attribute when
 * specversion (must be "1.0"), id, source, type, time (RFC 3339 string or AMQP timestamp) or the
 * content-type is missing or invalid, or subject is present but empty. Consumers should dead-letter such
 * messages: redelivery cannot fix them. data is a view of message.content, not a copy.
 */
export function fromAmqpMessage(message: { content: Buffer; properties: MessageProperties }): CloudEvent {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const keys = Object.keys(headers);
  const used = !keys.some((k) => k.startsWith(prefix)) && keys.some((k) => k.startsWith(legacyPrefix)) ? legacyPrefix : prefix;
  const read = (attribute: string): unknown => headers[`${used}${attribute}`];
  const required = (attribute: string): string => {
    const value = text(read(attribute));
    if (value === undefined) throw missing(attribute, `${used}${attribute}`);
    if (value === "") throw new InvalidCloudEventError(attribute, `CloudEvents attribute ${used}${attribute} is empty`);
    return value;
  };

  const version = required("specversion");
  if (version !== specVersion) {
    throw new InvalidCloudEventError("specversion", `unsupported CloudEvents ${used}specversion "${version.slice(0, 20)}"`);
  }
  const id = required("id");
  const source = required("source");
  const type = required("type");
  const time = readTime(read("time"), `${used}time`);
  const dataContentType = text(message.properties.contentType);
  if (!dataContentType) throw missing("datacontenttype", "the content-type property");
  const event: CloudEvent = {
    specVersion,
    id,
    source,
    type,
    time,
    dataContentType,
    data: new Uint8Array(message.content.buffer, message.content.byteOffset, message.content.byteLength),
  };
  const subject = read("subject");
  if (subject !== undefined) {
    const value = text(subject);
    if (!value) throw new InvalidCloudEventError("subject", `CloudEvents attribute ${used}subject must be a non-empty string`);
    event.subject = value;
  }
  return event;
}

function readTime(value: unknown, header: string): Date {
  if (value === undefined) throw missing("time", header);
  // The binding allows the native AMQP timestamp too; amqplib decodes it as { "!": "timestamp", value: seconds }.
  if (typeof value === "object" && value !== null && (value as { "!"?: unknown })["!"] === "timestamp") {
    const seconds = (value as { value?: unknown }).value;
    if (typeof seconds === "number" && Number.isFinite(seconds)) return new Date(seconds * 1000);
  }
  const raw = text(value);
  if (raw !== undefined && rfc3339.test(raw)) {
    const ms = Date.parse(raw.toUpperCase());
    if (Number.isFinite(ms)) return new Date(ms);
  }
  throw new InvalidCloudEventError("time", `CloudEvents attribute ${header} is not an RFC 3339 timestamp`);
}

/** Header values arrive as strings (AMQP longstr) or, from some clients, as byte arrays. */
function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return undefined;
}

function requireText(attribute: string, value: unknown): void {
  if (typeof value !== "string" || value === "") {
    throw new InvalidCloudEventError(attribute, `CloudEvents attribute ${attribute} must be a non-empty string`);
  }
}

function missing(attribute: string, where: string): InvalidCloudEventError {
  return new InvalidCloudEventError(attribute, `CloudEvents attribute ${attribute} is missing (${where})`);
}
