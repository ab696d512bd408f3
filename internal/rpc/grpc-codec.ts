// Translation between protobuf-es/Connect values and grpc-js wire values: message (de)serialisers
// from descriptors, Metadata <-> Headers, and ConnectError <-> gRPC status (details included).
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, isMessage, ScalarType, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

const statusDetailsKey = "grpc-status-details-bin";

/**
 * The wire bytes of a message (a Message or its init shape) for grpc-js. A chunk of a byte stream (a
 * message whose fields all sit in one oneof, set to a bytes field) is written directly, byte for byte
 * what toBinary writes; anything else goes through toBinary.
 */
export function serializerFor<D extends DescMessage>(desc: D): (value: unknown) => Buffer {
  const encodeChunk = chunkEncoderFor(desc);
  return (value) => {
    const chunk = encodeChunk?.(value);
    if (chunk) return chunk;
    const message = isMessage(value, desc) ? value : create(desc, value as never);
    const bytes = toBinary(desc, message);
    // Wrap, don't copy: grpc-js only reads the bytes.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * For a message made of one oneof with bytes fields among its cases (LoadPhotoRequest,
 * GetPhotoContentResponse): an encoder of the messages that carry bytes, undefined for the others (no
 * case, another case, unknown fields). Why: toBinary copies a 64 KiB chunk into a zeroed buffer grown to
 * 128 KiB, then copies it out again; for an upload that was a tenth of the gateway's CPU, plus the GC of
 * those buffers. Here the bytes are copied once, behind the tag and the length.
 */
function chunkEncoderFor(desc: DescMessage): ((value: unknown) => Buffer | undefined) | undefined {
  const [oneof, ...others] = desc.oneofs;
  if (!oneof || others.length > 0 || desc.fields.some((field) => field.oneof !== oneof)) return undefined;
  // Per bytes case: its key (field number, length-delimited wire type).
  const keys = new Map<string, Uint8Array>();
  for (const field of oneof.fields) {
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.BYTES) {
      keys.set(field.localName, new BinaryWriter().tag(field.number, WireType.LengthDelimited).finish());
    }
  }
  if (keys.size === 0) return undefined;
  return (value) => {
    if (typeof value !== "object" || value === null) return undefined;
    const { [oneof.localName]: selected, $unknown: unknown } = value as Record<string, unknown>;
    if (Array.isArray(unknown) && unknown.length > 0) return undefined;
    if (typeof selected !== "object" || selected === null) return undefined;
    const { case: name, value: bytes } = selected as { case?: unknown; value?: unknown };
    const key = typeof name === "string" ? keys.get(name) : undefined;
    if (!key || !(bytes instanceof Uint8Array)) return undefined;
    const length = new BinaryWriter().uint32(bytes.byteLength).finish();
    const out = Buffer.allocUnsafe(key.length + length.length + bytes.byteLength);
    out.set(key, 0);
    out.set(length, key.length);
    out.set(bytes, key.length + length.length);
    return out;
  };
}

export function deserializerFor<D extends DescMessage>(desc: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(desc, bytes);
}

/** Copies grpc-js metadata into Fetch Headers; binary (-bin) values become unpadded base64. */
export function headersFromMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.getMap())) {
    headers.set(key, Buffer.isBuffer(values) ? values.toString("base64") : String(values));
  }
  return headers;
}

/** Copies Headers into grpc-js metadata, skipping the reserved transport headers. */
export function metadataFromHeaders(headers: Headers | undefined, into = new grpc.Metadata()): grpc.Metadata {
  headers?.forEach((value, key) => {
    if (key.startsWith("grpc-") || key === "content-type" || key === "te" || key.startsWith(":")) return;
    if (key.endsWith("-bin")) into.add(key, Buffer.from(value, "base64"));
    else into.add(key, value);
  });
  return into;
}

/** The status grpc-js sends for a ConnectError: code, message, trailers and google.rpc.Status details. */
export function statusFromError(error: ConnectError, trailer?: Headers): Partial<grpc.StatusObject> {
  const metadata = metadataFromHeaders(trailer);
  metadataFromHeaders(error.metadata, metadata);
  if (error.details.length > 0) {
    const encoded = setTrailerStatus(new Headers(), error).get(statusDetailsKey);
    if (encoded) metadata.set(statusDetailsKey, Buffer.from(encoded, "base64"));
  }
  // rawMessage: the message without Connect's "[code]" prefix; grpc-js percent-encodes it.
  return { code: error.code as number, details: error.rawMessage, metadata };
}

/** The ConnectError for a failed grpc-js call, with details decoded from grpc-status-details-bin. */
export function errorFromStatus(status: Partial<grpc.StatusObject>): ConnectError {
  const headers = status.metadata ? headersFromMetadata(status.metadata) : new Headers();
  headers.set("grpc-status", String(status.code ?? Code.Unknown));
  headers.set("grpc-message", encodeURIComponent(status.details ?? ""));
  const found = findTrailerError(headers);
  const error = found ?? new ConnectError(status.details ?? "", Code.Unknown);
  if (status.metadata) error.metadata.forEach((_v, k) => k.startsWith("grpc-") && error.metadata.delete(k));
  return error;
}

/** Sends the handler's response headers, if it set any, before the first message or status. */
export function sendResponseHeaders(
  call: { sendMetadata(md: grpc.Metadata): void },
  context: Pick<HandlerContext, "responseHeader">,
): void {
  let any = false;
  context.responseHeader.forEach(() => (any = true));
  if (any) call.sendMetadata(metadataFromHeaders(context.responseHeader));
}
