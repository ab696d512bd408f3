// A plain grpc-js client for the RPC load: one channel (one HTTP/2 connection), pre-serialised request
// bytes and an identity deserialiser, so every gRPC figure pays the same, minimal client cost and the
// differences are the servers'.
import * as grpc from "@grpc/grpc-js";

export interface RawUnaryClient {
  /** One call with a 5 s deadline; resolves with the response bytes, rejects with the grpc-js status error. */
  readonly call: () => Promise<Buffer>;
  readonly close: () => void;
}

const identity = (value: Buffer) => value;

export function rawUnaryClient(address: string, path: string, request: Uint8Array, metadata?: Record<string, string>): RawUnaryClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const bytes = Buffer.from(request);
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata ?? {})) md.set(key, value);
  return {
    call: () =>
      new Promise<Buffer>((resolve, reject) => {
        client.makeUnaryRequest(path, identity, identity, bytes, md, { deadline: Date.now() + 5000 }, (error, response) =>
          error ? reject(error) : resolve(response ?? Buffer.alloc(0)),
        );
      }),
    close: () => client.close(),
  };
}
