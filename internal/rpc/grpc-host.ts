// Hosts Connect-style service implementations (ServiceImpl) on a grpc-js Server: one grpc-js
// handler per method, driven by the protobuf-es descriptors, with Connect interceptors applied.
import type { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { createAsyncIterable, invokeUnaryImplementation, transformInvokeImplementation } from "@connectrpc/connect/protocol";
import { deadlineKey, peerKey } from "./context-keys.js";
import {
  deserializerFor,
  headersFromMetadata,
  sendResponseHeaders,
  serializerFor,
  statusFromError,
} from "./grpc-codec.js";
import { toPublicError } from "../errors/errors.js";

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Registers every method of `service` on `server`. Interceptors run first-to-last, outermost first.
 * Whatever a handler throws reaches the caller as a gRPC status; non-ConnectErrors become INTERNAL.
 */
export function addConnectService<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: ServiceImpl<S>,
  interceptors: readonly Interceptor[] = [],
): void {
  const spec = createServiceImplSpec(service, impl);
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const methodSpec = spec.methods[method.localName];
    if (!methodSpec) throw new Error(`no implementation for ${service.typeName}/${method.name}`);
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.localName,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializerFor(method.input),
      requestDeserialize: deserializerFor(method.input),
      responseSerialize: serializerFor(method.output),
      responseDeserialize: deserializerFor(method.output),
    };
    handlers[method.name] = handlerFor(methodSpec, [...interceptors]);
  }
  server.addService(definition, handlers);
}

function handlerFor(spec: MethodImplSpec, interceptors: Interceptor[]): grpc.UntypedHandleCall {
  switch (spec.kind) {
    case "unary":
      return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const { context, settle } = createCallContext(spec.method, call);
        invokeUnaryImplementation(spec, context, call.request as never, interceptors).then(
          (response) => {
            settle();
            sendResponseHeaders(call, context);
            callback(null, response, trailerMetadata(context));
          },
          (thrown: unknown) => {
            settle();
            callback(statusFromError(toPublicError(thrown), context.responseTrailer));
          },
        );
      };
    case "client_streaming":
      return (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const { context, settle } = createCallContext(spec.method, call);
        const run = transformInvokeImplementation(spec, context, interceptors);
        firstOf(run(call as AsyncIterable<never>)).then(
          (response) => {
            settle();
            sendResponseHeaders(call, context);
            callback(null, response, trailerMetadata(context));
          },
          (thrown: unknown) => {
            settle();
            callback(statusFromError(toPublicError(thrown), context.responseTrailer));
          },
        );
      };
    case "server_streaming":
    case "bidi_streaming":
      return (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
        const { context, settle } = createCallContext(spec.method, call);
        const run = transformInvokeImplementation(spec, context, interceptors);
        const input =
          spec.kind === "server_streaming"
            ? createAsyncIterable([(call as grpc.ServerWritableStream<unknown, unknown>).request as never])
            : (call as AsyncIterable<never>);
        void pumpResponses(run(input), call, context).finally(settle);
      };
  }
}

/** The single response of a client-streaming call; reads to the end so interceptors see it finish. */
async function firstOf<T>(iterable: AsyncIterable<T>): Promise<T> {
  let first: { value: T } | undefined;
  for await (const value of iterable) first ??= { value };
  if (!first) throw new ConnectError("protocol error: no response message", Code.Internal);
  return first.value;
}

/** Writes a response stream with backpressure, then ends it with the trailers or the error status. */
async function pumpResponses(
  responses: AsyncIterable<unknown>,
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  context: HandlerContext,
): Promise<void> {
  let headersSent = false;
  try {
    for await (const message of responses) {
      if (!headersSent) {
        sendResponseHeaders(call, context);
        headersSent = true;
      }
      if (context.signal.aborted) break;
      if (!call.write(message)) await waitForDrain(call, context.signal);
    }
    if (!headersSent) sendResponseHeaders(call, context);
    call.end(trailerMetadata(context));
  } catch (thrown) {
    call.emit("error", statusFromError(toPublicError(thrown), context.responseTrailer));
  }
}

function waitForDrain(stream: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function trailerMetadata(context: HandlerContext): grpc.Metadata | undefined {
  let any = false;
  context.responseTrailer.forEach(() => (any = true));
  if (!any) return undefined;
  const metadata = new grpc.Metadata();
  context.responseTrailer.forEach((value, key) => metadata.add(key, key.endsWith("-bin") ? Buffer.from(value, "base64") : value));
  return metadata;
}

/**
 * The HandlerContext of one grpc-js call. Built by hand rather than with createHandlerContext: one
 * AbortController, no deadline timer (grpc-js enforces deadlines and reports them as 'cancelled').
 * grpc-js emits 'cancelled' when the stream closes, also after a call that completed normally: settle()
 * (called once the response or the error has been handed to grpc-js) stops listening, so a finished
 * call does not pay for a ConnectError (stack capture) and an abort dispatch nobody listens to.
 */
function createCallContext(method: DescMethod, call: AnyCall): { context: HandlerContext; settle: () => void } {
  const controller = new AbortController();
  const onCancelled = () => controller.abort(new ConnectError("call cancelled or deadline exceeded", Code.Canceled));
  (call as EventEmitter).once("cancelled", onCancelled);
  const settle = () => void (call as EventEmitter).removeListener("cancelled", onCancelled);
  const rawDeadline = call.getDeadline();
  const deadlineMs = rawDeadline instanceof Date ? rawDeadline.getTime() : rawDeadline;
  const deadline = Number.isFinite(deadlineMs) ? deadlineMs : undefined;
  const values: ContextValues = createContextValues();
  values.set(deadlineKey, deadline);
  values.set(peerKey, call.getPeer());
  const context: HandlerContext = {
    method,
    service: method.parent,
    signal: controller.signal,
    timeoutMs: () => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now())),
    requestMethod: "POST",
    requestHeader: headersFromMetadata(call.metadata),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    protocolName: "grpc",
    values,
    url: `/${method.parent.typeName}/${method.name}`,
  };
  return { context, settle };
}
