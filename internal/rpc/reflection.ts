// gRPC server reflection (v1 and v1alpha) from the descriptors protobuf-es embeds in gen/, so
// buf curl and grpcurl can list and call services without the .proto files.
import type * as grpc from "@grpc/grpc-js";
import { toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import type { PackageDefinition } from "@grpc/proto-loader";

/** Adds reflection for the given services (their files and everything those import). */
export function addReflectionService(server: grpc.Server, services: readonly DescService[]): void {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  // @grpc/reflection reads only `fileDescriptorProtos` from each entry of a proto-loader definition.
  const definition = { descriptors: { format: "Protocol Buffer 3 DescriptorProto", type: {}, fileDescriptorProtos } };
  const serviceNames = services.map((s) => s.typeName);
  new ReflectionService(definition as unknown as PackageDefinition, { services: [...serviceNames, "grpc.health.v1.Health"] }).addToServer(server);
}
