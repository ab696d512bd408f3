// The message serialiser grpc-js calls: whatever path it takes, the bytes are exactly toBinary's.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { create, createFileRegistry, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  GetPhotoContentResponseSchema,
  GetPhotoRequestSchema,
  LoadPhotoRequestSchema,
  type LoadPhotoRequest,
} from "../../gen/usermesh/photo/v1/photo_pb.js";
import { serializerFor } from "./grpc-codec.js";

/**
 * WideChunk: a oneof mixing bytes cases (one with a field number past 15, so a two-byte key) and a string.
 * LabelledChunk: a bytes oneof beside a plain field, which no chunk encoding may drop.
 */
const [wideChunkSchema, labelledChunkSchema] = (() => {
  const file = create(FileDescriptorProtoSchema, {
    name: "codec_test.proto",
    package: "codec.test",
    syntax: "proto3",
    messageType: [
      {
        name: "WideChunk",
        field: [
          { name: "small", number: 1, type: 12, label: 1, oneofIndex: 0, jsonName: "small" },
          { name: "text", number: 2, type: 9, label: 1, oneofIndex: 0, jsonName: "text" },
          { name: "big", number: 300, type: 12, label: 1, oneofIndex: 0, jsonName: "big" },
        ],
        oneofDecl: [{ name: "part" }],
      },
      {
        name: "LabelledChunk",
        field: [
          { name: "data", number: 1, type: 12, label: 1, oneofIndex: 0, jsonName: "data" },
          { name: "label", number: 2, type: 9, label: 1, jsonName: "label" },
        ],
        oneofDecl: [{ name: "part" }],
      },
    ],
  });
  const registry = createFileRegistry(file, () => undefined);
  return ["WideChunk", "LabelledChunk"].map((name) => registry.getMessage(`codec.test.${name}`) as DescMessage);
})();

const sizes = [0, 1, 127, 128, 16_383, 16_384, 64 * 1024, 2_097_151, 2_097_152];

describe("serializerFor", () => {
  it("encodes a chunk message exactly as toBinary does, from an init shape or a message", () => {
    const serialize = serializerFor(LoadPhotoRequestSchema);
    for (const size of sizes) {
      const bytes = randomBytes(size);
      const init = { part: { case: "chunk", value: bytes } } as const;
      const expected = toBinary(LoadPhotoRequestSchema, create(LoadPhotoRequestSchema, init));

      expect(Buffer.compare(serialize(init), expected), `${size} bytes, init shape`).to.equal(0);
      expect(Buffer.compare(serialize(create(LoadPhotoRequestSchema, init)), expected), `${size} bytes, message`).to.equal(0);
    }
  });

  it("encodes the other messages of a chunk stream as toBinary does", () => {
    const serialize = serializerFor(LoadPhotoRequestSchema);
    const messages = [
      create(LoadPhotoRequestSchema, { part: { case: "header", value: { userId: "u", filename: "cat.png" } } }),
      create(LoadPhotoRequestSchema, {}),
    ];
    for (const message of messages) {
      expect(Buffer.compare(serialize(message), toBinary(LoadPhotoRequestSchema, message)), message.part.case).to.equal(0);
    }
    const content = serializerFor(GetPhotoContentResponseSchema);
    const photo = create(GetPhotoContentResponseSchema, { part: { case: "photo", value: { id: "p", width: 3 } } });
    expect(Buffer.compare(content(photo), toBinary(GetPhotoContentResponseSchema, photo))).to.equal(0);
  });

  it("keeps unknown fields of a chunk message", () => {
    const serialize = serializerFor(LoadPhotoRequestSchema);
    const message: LoadPhotoRequest = create(LoadPhotoRequestSchema, { part: { case: "chunk", value: randomBytes(100) } });
    message.$unknown = [{ no: 9, wireType: 0, data: new Uint8Array([42]) }];

    const encoded = serialize(message);

    expect(Buffer.compare(encoded, toBinary(LoadPhotoRequestSchema, message))).to.equal(0);
    expect(fromBinary(LoadPhotoRequestSchema, encoded).$unknown).to.have.length(1);
  });

  it("encodes every bytes case of a oneof, whatever its field number, and leaves the others to toBinary", () => {
    const serialize = serializerFor(wideChunkSchema);
    for (const size of [0, 5, 300, 70_000]) {
      for (const part of [
        { case: "small", value: randomBytes(size) },
        { case: "big", value: randomBytes(size) },
        { case: "text", value: "x".repeat(size) },
      ]) {
        const message = create(wideChunkSchema, { part });
        const encoded = serialize({ part });
        expect(Buffer.compare(encoded, toBinary(wideChunkSchema, message)), `${part.case}, ${size}`).to.equal(0);
        expect(fromBinary(wideChunkSchema, encoded)).to.deep.equal(message);
      }
    }
  });

  it("keeps the other fields of a message whose bytes oneof sits beside them", () => {
    const serialize = serializerFor(labelledChunkSchema);
    const init = { part: { case: "data", value: randomBytes(300) }, label: "kept" };

    const encoded = serialize(init);

    expect(Buffer.compare(encoded, toBinary(labelledChunkSchema, create(labelledChunkSchema, init)))).to.equal(0);
    expect(fromBinary(labelledChunkSchema, encoded)).to.deep.include({ label: "kept" });
  });

  it("encodes messages that are not chunk streams as toBinary does", () => {
    const serialize = serializerFor(GetPhotoRequestSchema);
    const message = create(GetPhotoRequestSchema, { userId: "a", photoId: "b" });

    expect(Buffer.compare(serialize(message), toBinary(GetPhotoRequestSchema, message))).to.equal(0);
    expect(Buffer.compare(serialize({ userId: "a", photoId: "b" }), toBinary(GetPhotoRequestSchema, message))).to.equal(0);
  });

  it("copies the chunk: later changes to the caller's bytes do not reach the encoded message", () => {
    const bytes = Buffer.alloc(1000, 1);
    const encoded = serializerFor(LoadPhotoRequestSchema)({ part: { case: "chunk", value: bytes } });

    bytes.fill(2);

    expect(fromBinary(LoadPhotoRequestSchema, encoded).part).to.deep.include({ case: "chunk", value: new Uint8Array(1000).fill(1) });
  });
});
