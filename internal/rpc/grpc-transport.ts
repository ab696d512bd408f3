// A Connect Transport over a grpc-js channel, so typed Connect clients (Client<typeof X>) speak
// plain gRPC through grpc-js. Adds what every hop needs: a deadline (the caller's remaining budget),
// cancellation when whoever waits for the call has gone, the trace id as metadata, and retries of
// idempotent calls on UNAVAILABLE.
import * as grpc from "@grpc/grpc-js";
import { create, isMessage, type DescMessage, type DescMethod, type DescMethodStreaming, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type ContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { currentScope, remainingMs } from "../trace/call-scope.js";
import { traceparentFor } from "../trace/trace-id.js";
import { cancelledError } from "./call-cancelled.js";
import { deserializerFor, errorFromStatus, headersFromMetadata, metadataFromHeaders, serializerFor } from "./grpc-codec.js";
import { defaultRetryPolicy, isRetryable, withRetries, type RetryPolicy } from "./retry.js";

export interface GrpcTransportOptions {
  /** host:port of the server (a grpc-js target; dns:/// names work too). */
  readonly address: string;
  readonly interceptors?: readonly Interceptor[];
  /** Used when neither the caller nor the current call scope sets a deadline. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
}

export interface GrpcTransport extends Transport {
  /** Closes the channel; calls in flight fail with UNAVAILABLE / CANCELLED. */
  close(): void;
  /** The underlying channel, for readiness checks (waitForReady). */
  readonly client: grpc.Client;
}

type HeadersInit = ConstructorParameters<typeof Headers>[0];

const neverAborted = new AbortController().signal;

/**
 * Creates the transport. Errors reach the caller as ConnectError with the server's code, message
 * and details (google.rpc.BadRequest, ErrorInfo, RetryInfo); a deadline that passes is
 * DEADLINE_EXCEEDED (at once when the call scope's deadline has already passed), an unreachable server
 * UNAVAILABLE (after retries when the method allows). A call is cancelled (the server sees it
 * cancelled, retries stop) when the caller's signal or the call scope's signal aborts, whichever
 * comes first; it then fails with CANCELLED.
 */
export function createGrpcTransport(options: GrpcTransportOptions): GrpcTransport {
  const client = new grpc.Client(options.address, options.credentials ?? grpc.credentials.createInsecure(), {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    ...options.channelOptions,
  });
  const interceptors = [...(options.interceptors ?? [])];
  const retry = options.retry ?? defaultRetryPolicy;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 5000;
  const codecs = new WeakMap<DescMethod, Codec>();
  const codecOf = (method: DescMethod): Codec => {
    let codec = codecs.get(method);
    if (!codec) {
      codec = {
        path: `/${method.parent.typeName}/${method.name}`,
        serialize: serializerFor(method.input),
        deserialize: deserializerFor(method.output),
      };
      codecs.set(method, codec);
    }
    return codec;
  };

  function deadlineFor(timeoutMs: number | undefined): number {
    const now = Date.now();
    // A caller's timeoutMs <= 0 means "none"; the scope's 0 means its deadline has passed, and a call
    // made after that (e.g. by a handler still running after the gateway's 504) must not get a fresh
    // default budget.
    const own = timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : undefined;
    const left = remainingMs(now);
    if (own === undefined && left === undefined) return now + defaultTimeoutMs;
    return now + Math.min(own ?? Infinity, left ?? Infinity);
  }

  function requestCommon(method: DescMethod, signal: AbortSignal | undefined, header: HeadersInit | undefined, contextValues: ContextValues | undefined) {
    return {
      service: method.parent,
      requestMethod: "POST",
      url: `grpc://${options.address}/${method.parent.typeName}/${method.name}`,
      signal: signalFor(signal),
      header: withTraceHeaders(new Headers(header)),
      contextValues: contextValues ?? createContextValues(),
    };
  }

  return {
    client,
    close: () => client.close(),

    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const deadline = deadlineFor(timeoutMs);
      const codec = codecOf(method);
      const send = async (req: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => {
        const attempt = () => unaryAttempt(client, codec, req, deadline);
        // As in onAbort: backoff waits put no listener on the shared never-aborted signal.
        const retrySignal = req.signal === neverAborted ? undefined : req.signal;
        const message = isRetryable(method) ? await withRetries(retry, deadline, attempt, { signal: retrySignal }) : await attempt();
        return { stream: false, service: method.parent, method, header: message.header, trailer: message.trailer, message: message.message as MessageShape<O> };
      };
      const req: UnaryRequest<I, O> = {
        stream: false,
        method,
        message: isMessage(input, method.input) ? input : create(method.input, input),
        ...requestCommon(method, signal, header, contextValues),
      };
      return applyInterceptors(send, interceptors)(req) as Promise<UnaryResponse<I, O>>;
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const deadline = deadlineFor(timeoutMs);
      const codec = codecOf(method);
      const send = (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => streamCall(client, codec, method, req, deadline);
      const req: StreamRequest<I, O> = {
        stream: true,
        method,
        message: normalizeInputs(method.input, input),
        ...requestCommon(method, signal, header, contextValues),
      };
      return applyInterceptors(send, interceptors)(req) as Promise<StreamResponse<I, O>>;
    },
  };
}

interface Codec {
  path: string;
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

/**
 * What cancels a call: the caller's signal, the call scope's (aborted when whoever waits for this call
 * has gone: an HTTP client that disconnected, a gRPC caller that cancelled), both, or neither (the
 * shared never-aborted signal, which onAbort skips).
 */
function signalFor(callerSignal: AbortSignal | undefined): AbortSignal {
  const scopeSignal = currentScope()?.signal;
  if (scopeSignal === undefined || scopeSignal === callerSignal) return callerSignal ?? neverAborted;
  if (callerSignal === undefined) return scopeSignal;
  // Only calls that bring their own signal pay for the combined one. It holds no listener on its
  // sources (Node keeps weak references), and both sources live no longer than a request.
  return AbortSignal.any([callerSignal, scopeSignal]);
}

type AnyFn = (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;

function applyInterceptors<F>(send: F, interceptors: readonly Interceptor[]): AnyFn {
  let next = send as unknown as AnyFn;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next);
  return next;
}

/** Adds the current call's trace id unless the caller set trace headers itself. */
function withTraceHeaders(headers: Headers): Headers {
  const traceId = currentScope()?.traceId;
  if (!traceId || headers.has("traceparent") || headers.has("x-request-id")) return headers;
  headers.set("x-request-id", traceId);
  const traceparent = traceparentFor(traceId);
  if (traceparent) headers.set("traceparent", traceparent);
  return headers;
}

async function* normalizeInputs<I extends DescMessage>(desc: I, input: AsyncIterable<MessageInitShape<I>>): AsyncIterable<MessageShape<I>> {
  for await (const value of input) yield isMessage(value, desc) ? value : create(desc, value);
}

interface Received {
  message: unknown;
  header: Headers;
  trailer: Headers;
}

function unaryAttempt(client: grpc.Client, codec: Codec, req: UnaryRequest, deadline: number): Promise<Received> {
  return new Promise((resolve, reject) => {
    if (req.signal.aborted) return reject(cancelledError(req.signal));
    const header = new Headers();
    const call = client.makeUnaryRequest(
      codec.path,
      codec.serialize,
      codec.deserialize,
      req.message,
      metadataFromHeaders(req.header),
      { deadline },
      (error, message) => {
        unwatch();
        if (error) reject(errorFromStatus(error));
        else resolve({ message, header, trailer });
      },
    );
    const trailer = new Headers();
    const unwatch = onAbort(req.signal, () => call.cancel());
    call.on("metadata", (md: grpc.Metadata) => copyInto(header, md));
    call.on("status", (status: grpc.StatusObject) => copyInto(trailer, status.metadata));
  });
}

async function streamCall<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  codec: Codec,
  method: DescMethodStreaming<I, O>,
  req: StreamRequest<I, O>,
  deadline: number,
): Promise<StreamResponse<I, O>> {
  // Nobody waits any more: do not open the call at all.
  if (req.signal.aborted) throw cancelledError(req.signal);
  const metadata = metadataFromHeaders(req.header);
  const header = new Headers();
  const trailer = new Headers();
  const base = { stream: true as const, service: method.parent, method, header, trailer };

  if (method.methodKind === "client_streaming") {
    let resolveResult!: (v: unknown) => void;
    let rejectResult!: (e: unknown) => void;
    const result = new Promise((res, rej) => ((resolveResult = res), (rejectResult = rej)));
    const call = client.makeClientStreamRequest(codec.path, codec.serialize, codec.deserialize, metadata, { deadline }, (error, message) =>
      error ? rejectResult(errorFromStatus(error)) : resolveResult(message),
    );
    watch(call, req.signal, header, trailer);
    // Feed the request stream with backpressure; a failure cancels the call.
    void writeAll(call, req.message).catch(() => call.cancel());
    return { ...base, message: (async function* () { yield (await result) as MessageShape<O>; })() };
  }

  const call =
    method.methodKind === "server_streaming"
      ? client.makeServerStreamRequest(codec.path, codec.serialize, codec.deserialize, await firstMessage(req.message), metadata, { deadline })
      : client.makeBidiStreamRequest(codec.path, codec.serialize, codec.deserialize, metadata, { deadline });
  watch(call, req.signal, header, trailer);
  if (method.methodKind === "bidi_streaming") void writeAll(call as grpc.ClientDuplexStream<unknown, unknown>, req.message).catch(() => call.cancel());
  return { ...base, message: readAll(call as AsyncIterable<unknown> & grpc.ClientReadableStream<unknown>) as AsyncIterable<MessageShape<O>> };
}

function watch(call: grpc.Call, signal: AbortSignal, header: Headers, trailer: Headers): void {
  const unwatch = onAbort(signal, () => call.cancel());
  call.on("metadata", (md: grpc.Metadata) => copyInto(header, md));
  call.on("status", (status: grpc.StatusObject) => {
    unwatch();
    copyInto(trailer, status.metadata);
  });
}

/**
 * Runs cancel once when the signal aborts (at once if it already has: a server-streaming call's signal
 * may abort while its request message is awaited); returns what stops listening. The shared
 * never-aborted signal gets no listener: one per call in flight piled up on it
 * (MaxListenersExceededWarning past 10) and each removal scanned them all.
 */
function onAbort(signal: AbortSignal, cancel: () => void): () => void {
  if (signal === neverAborted) return () => undefined;
  if (signal.aborted) {
    cancel();
    return () => undefined;
  }
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

async function* readAll(call: AsyncIterable<unknown> & grpc.ClientReadableStream<unknown>): AsyncIterable<unknown> {
  try {
    for await (const message of call) yield message;
  } catch (thrown) {
    throw isStatus(thrown) ? errorFromStatus(thrown) : ConnectError.from(thrown);
  } finally {
    // The consumer stopped early: tell the server.
    call.cancel();
  }
}

async function writeAll(call: grpc.ClientWritableStream<unknown>, messages: AsyncIterable<unknown>): Promise<void> {
  for await (const message of messages) {
    if (!call.write(message)) await new Promise((resolve) => call.once("drain", resolve));
  }
  call.end();
}

async function firstMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  for await (const message of messages) return message;
  throw new ConnectError("server-streaming call needs one request message", Code.InvalidArgument);
}

function isStatus(value: unknown): value is grpc.ServiceError {
  return typeof value === "object" && value !== null && "code" in value && "metadata" in value;
}

function copyInto(headers: Headers, metadata: grpc.Metadata | undefined): void {
  if (metadata) headersFromMetadata(metadata).forEach((value, key) => headers.set(key, value));
}
