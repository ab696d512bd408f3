// The baselines' RPC: bench.v1.BenchService/Empty (google.protobuf.Empty in and out), described at run time
// so the adapters (which are driven by protobuf-es descriptors) can host it without generated code.
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_empty } from "@bufbuild/protobuf/wkt";

export const benchEmptyPath = "/bench.v1.BenchService/Empty";

const fileProto = create(FileDescriptorProtoSchema, {
  name: "bench/v1/bench.proto",
  package: "bench.v1",
  syntax: "proto3",
  dependency: ["google/protobuf/empty.proto"],
  service: [
    {
      name: "BenchService",
      method: [{ name: "Empty", inputType: ".google.protobuf.Empty", outputType: ".google.protobuf.Empty" }],
    },
  ],
});

const registry = createFileRegistry(fileProto, (name) => (name === "google/protobuf/empty.proto" ? file_google_protobuf_empty : undefined));

export const BenchService: DescService = (() => {
  const service = registry.getService("bench.v1.BenchService");
  if (!service) throw new Error("bench.v1.BenchService missing from its registry");
  return service;
})();
