// Client-streaming calls on a stock grpc-js client, with backpressure, counting what was written.
import type * as grpc from "@grpc/grpc-js";

export interface StreamResult<T> {
  /** The response, or the error the server ended the call with. */
  readonly response?: T;
  readonly error?: grpc.ServiceError;
  /** How many messages the client managed to write before the call ended. */
  readonly written: number;
}

/** Writes `messages` (lazily, honouring backpressure) until they run out or the call ends. */
export function callClientStream<T>(
  client: grpc.Client,
  method: string,
  messages: Iterable<object>,
  deadlineMs = 30_000,
): Promise<StreamResult<T>> {
  return new Promise((resolve) => {
    let written = 0;
    let ended = false;
    type StreamFn = (options: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: T) => void) => grpc.ClientWritableStream<object>;
    const call = (client as unknown as Record<string, StreamFn>)[method].call(client, { deadline: Date.now() + deadlineMs }, (error, response) => {
      ended = true;
      resolve(error ? { error, written } : { response, written });
    });
    const iterator = messages[Symbol.iterator]();
    const pump = () => {
      while (!ended) {
        const next = iterator.next();
        if (next.done) {
          call.end();
          return;
        }
        written++;
        if (!call.write(next.value)) {
          call.once("drain", pump);
          return;
        }
      }
    };
    call.on("error", () => {});
    pump();
  });
}

/** Reads a server stream to its end. */
export function readServerStream<T>(call: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    call.on("data", (item: T) => items.push(item));
    call.on("error", reject);
    call.on("end", () => resolve(items));
  });
}
