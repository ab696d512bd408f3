// A stock @grpc/grpc-js client built from the .proto files with @grpc/proto-loader: what an
// outside team would generate, with none of this project's adapters.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { repoRoot } from "./service-process.js";

const reflectionProtoRoot = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "../proto");

/** Loads the given files (relative to proto/) and returns the package tree of grpc-js constructors. */
export function loadStockPackage(files: string[]): grpc.GrpcObject {
  const definition = protoLoader.loadSync(files, {
    includeDirs: [join(repoRoot, "proto"), reflectionProtoRoot],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

/** Looks up a service client constructor by its dotted full name, e.g. "usermesh.session.v1.SessionService". */
export function stockClient(pkg: grpc.GrpcObject, fullName: string, address: string): grpc.Client {
  const Ctor = fullName.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], pkg) as grpc.ServiceClientConstructor;
  return new Ctor(address, grpc.credentials.createInsecure());
}

/** Promisified unary call on a stock client. */
export function callUnary<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  request: object,
  options: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    type UnaryFn = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: T) => void) => void;
    const fn = (client as unknown as Record<string, UnaryFn>)[method].bind(client);
    fn(request, options.metadata ?? new grpc.Metadata(), { deadline: Date.now() + (options.deadlineMs ?? 5000) }, (error: grpc.ServiceError | null, response: T) =>
      error ? reject(error) : resolve(response),
    );
  });
}
