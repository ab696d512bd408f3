// gRPC RED metrics named as go-grpc-prometheus names them, recorded by Connect interceptors on either side.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Counter, Histogram, Registry } from "prom-client";
import { codeName } from "../errors/errors.js";
import { getOrCreateCounter, getOrCreateHistogram } from "./registry.js";

type CallLabelName = "grpc_type" | "grpc_service" | "grpc_method";
type HandledLabelName = CallLabelName | "grpc_code";
type CallLabels = Record<CallLabelName, string>;
type HandledLabels = Record<HandledLabelName, string>;

const callLabelNames: readonly CallLabelName[] = ["grpc_type", "grpc_service", "grpc_method"];
const handledLabelNames: readonly HandledLabelName[] = [...callLabelNames, "grpc_code"];

// Prometheus' DefBuckets (.005..10, what go-grpc-prometheus uses) extended downwards: a grpc-js unary
// call costs about 0.1 ms of server time, which DefBuckets would lump into one bucket.
const handlingSecondsBuckets: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

// go-grpc-prometheus' grpc_type spellings.
const grpcTypes: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  client_streaming: "client_stream",
  server_streaming: "server_stream",
  bidi_streaming: "bidi_stream",
};

const ok = 0;

interface RpcMetrics {
  readonly started: Counter<CallLabelName>;
  readonly handled: Counter<HandledLabelName>;
  readonly handlingSeconds: Histogram<CallLabelName>;
  /** Counts the messages of req.message: received on a server, sent by a client. */
  readonly requestMessages: Counter<CallLabelName>;
  /** Counts the messages of res.message: sent by a server, received by a client. */
  readonly responseMessages: Counter<CallLabelName>;
}

/**
 * Records grpc_server_started_total, grpc_server_handled_total{grpc_code}, grpc_server_msg_received_total,
 * grpc_server_msg_sent_total and grpc_server_handling_seconds for every call through it.
 *
 * A streaming call counts as handled when its response stream ends: completed ("OK"), failed (the error's
 * code) or abandoned by the consumer before the end ("Canceled"); a response stream nobody reads is never
 * counted as handled. Errors pass through untouched.
 *
 * Reuses metrics already on the registry (so several interceptors can share one); throws if one of these
 * names is registered there as another metric type or with other labels.
 */
export function createServerMetricsInterceptor(registry: Registry): Interceptor {
  return createMetricsInterceptor({
    started: getOrCreateCounter(registry, {
      name: "grpc_server_started_total",
      help: "Total number of RPCs started on the server.",
      labelNames: callLabelNames,
    }),
    handled: getOrCreateCounter(registry, {
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: handledLabelNames,
    }),
    handlingSeconds: getOrCreateHistogram(registry, {
      name: "grpc_server_handling_seconds",
      help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
      labelNames: callLabelNames,
      buckets: handlingSecondsBuckets,
    }),
    requestMessages: getOrCreateCounter(registry, {
      name: "grpc_server_msg_received_total",
      help: "Total number of RPC stream messages received on the server.",
      labelNames: callLabelNames,
    }),
    responseMessages: getOrCreateCounter(registry, {
      name: "grpc_server_msg_sent_total",
      help: "Total number of gRPC stream messages sent by the server.",
      labelNames: callLabelNames,
    }),
  });
}

/**
 * The client twin of createServerMetricsInterceptor: grpc_client_started_total, grpc_client_handled_total,
 * grpc_client_msg_sent_total, grpc_client_msg_received_total and grpc_client_handling_seconds, with the
 * same stream-end, error and registry rules.
 */
export function createClientMetricsInterceptor(registry: Registry): Interceptor {
  return createMetricsInterceptor({
    started: getOrCreateCounter(registry, {
      name: "grpc_client_started_total",
      help: "Total number of RPCs started on the client.",
      labelNames: callLabelNames,
    }),
    handled: getOrCreateCounter(registry, {
      name: "grpc_client_handled_total",
      help: "Total number of RPCs completed by the client, regardless of success or failure.",
      labelNames: handledLabelNames,
    }),
    handlingSeconds: getOrCreateHistogram(registry, {
      name: "grpc_client_handling_seconds",
      help: "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
      labelNames: callLabelNames,
      buckets: handlingSecondsBuckets,
    }),
    requestMessages: getOrCreateCounter(registry, {
      name: "grpc_client_msg_sent_total",
      help: "Total number of gRPC stream messages sent by the client.",
      labelNames: callLabelNames,
    }),
    responseMessages: getOrCreateCounter(registry, {
      name: "grpc_client_msg_received_total",
      help: "Total number of RPC stream messages received by the client.",
      labelNames: callLabelNames,
    }),
  });
}

function createMetricsInterceptor(metrics: RpcMetrics): Interceptor {
  const seriesByMethod = new Map<DescMethod, MethodSeries>();
  return (next) => async (req) => {
    let series = seriesByMethod.get(req.method);
    if (series === undefined) {
      series = new MethodSeries(req.method);
      seriesByMethod.set(req.method, series);
    }
    const start = performance.now();
    metrics.started.inc(series.labels);
    if (req.stream) {
      req = { ...req, message: new CountedStream(req.message, metrics.requestMessages, series.labels) };
    } else {
      metrics.requestMessages.inc(series.labels);
    }
    let res;
    try {
      res = await next(req);
    } catch (err) {
      recordHandled(metrics, series, codeOf(err), start);
      throw err;
    }
    if (res.stream) {
      return { ...res, message: new ObservedResponseStream(res.message, metrics, series, start) };
    }
    metrics.responseMessages.inc(series.labels);
    recordHandled(metrics, series, ok, start);
    return res;
  };
}

// Label objects built once per method (and per code on first use), so the hot path allocates none.
class MethodSeries {
  readonly labels: CallLabels;
  private readonly handledByCode: (HandledLabels | undefined)[] = [];

  constructor(method: DescMethod) {
    this.labels = {
      grpc_type: grpcTypes[method.methodKind],
      grpc_service: method.parent.typeName,
      grpc_method: method.name,
    };
  }

  handledLabels(code: number): HandledLabels {
    return (this.handledByCode[code] ??= { ...this.labels, grpc_code: codeName(code) });
  }
}

function recordHandled(metrics: RpcMetrics, series: MethodSeries, code: number, start: number): void {
  metrics.handled.inc(series.handledLabels(code));
  metrics.handlingSeconds.observe(series.labels, (performance.now() - start) / 1000);
}

function codeOf(err: unknown): number {
  return ConnectError.from(err).code;
}

/** A pass-through of a request stream that counts each message read from it. */
class CountedStream<T> implements AsyncIterableIterator<T> {
  private iterator: AsyncIterator<T> | undefined;

  constructor(
    private readonly source: AsyncIterable<T>,
    private readonly messages: Counter<CallLabelName>,
    private readonly labels: CallLabels,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    const result = await (this.iterator ??= this.source[Symbol.asyncIterator]()).next();
    if (!result.done) this.messages.inc(this.labels);
    return result;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    return await returnFrom(this.iterator, value);
  }
}

/** A pass-through of a response stream that counts each message and records the call when it ends. */
class ObservedResponseStream<T> implements AsyncIterableIterator<T> {
  private iterator: AsyncIterator<T> | undefined;
  private ended = false;

  constructor(
    private readonly source: AsyncIterable<T>,
    private readonly metrics: RpcMetrics,
    private readonly series: MethodSeries,
    private readonly start: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    let result: IteratorResult<T>;
    try {
      result = await (this.iterator ??= this.source[Symbol.asyncIterator]()).next();
    } catch (err) {
      this.end(codeOf(err));
      throw err;
    }
    if (result.done) this.end(ok);
    else this.metrics.responseMessages.inc(this.series.labels);
    return result;
  }

  // The consumer stopped before the end (a break, or the host cancelling): the call did not finish.
  async return(value?: unknown): Promise<IteratorResult<T>> {
    this.end(Code.Canceled);
    return await returnFrom(this.iterator, value);
  }

  private end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    recordHandled(this.metrics, this.series, code, this.start);
  }
}

// Forwards an early return to the source, so a generator behind it runs its finally blocks.
async function returnFrom<T>(iterator: AsyncIterator<T> | undefined, value: unknown): Promise<IteratorResult<T>> {
  if (iterator?.return === undefined) return { done: true, value: undefined };
  return await iterator.return(value);
}
