import { expect } from "chai";
import { create } from "@bufbuild/protobuf";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { Interceptor, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { Gauge, Registry } from "prom-client";
import {
  SessionService,
  ValidateSessionRequestSchema,
  ValidateSessionResponseSchema,
} from "../../gen/usermesh/session/v1/session_pb.js";
import { LogService, TailRequestSchema, TailResponseSchema } from "../../gen/usermesh/logs/v1/logs_pb.js";
import {
  LoadPhotoRequestSchema,
  LoadPhotoResponseSchema,
  PhotoService,
} from "../../gen/usermesh/photo/v1/photo_pb.js";
import { createClientMetricsInterceptor, createServerMetricsInterceptor } from "./grpc-metrics.js";

type Next = Parameters<Interceptor>[0];

const validateSession = SessionService.method.validateSession;
const tail = LogService.method.tail;
const loadPhoto = PhotoService.method.loadPhoto;

const validateLabels = {
  grpc_type: "unary",
  grpc_service: "usermesh.session.v1.SessionService",
  grpc_method: "ValidateSession",
};
const tailLabels = { grpc_type: "server_stream", grpc_service: "usermesh.logs.v1.LogService", grpc_method: "Tail" };

function common(method: DescMethodUnary | DescMethodStreaming) {
  return {
    service: method.parent,
    requestMethod: "POST",
    url: `http://localhost/${method.parent.typeName}/${method.name}`,
    signal: new AbortController().signal,
    header: new Headers(),
    contextValues: createContextValues(),
  };
}

function unaryRequest<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  message: MessageShape<I>,
): UnaryRequest<I, O> {
  return { ...common(method), stream: false, method, message };
}

function streamRequest<I extends DescMessage, O extends DescMessage>(
  method: DescMethodStreaming<I, O>,
  messages: MessageShape<I>[],
): StreamRequest<I, O> {
  return { ...common(method), stream: true, method, message: fromArray(messages) };
}

function unaryResponse<I extends DescMessage, O extends DescMessage>(
  req: UnaryRequest<I, O>,
  message: MessageShape<O>,
): UnaryResponse<I, O> {
  return { stream: false, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), message };
}

function streamResponse<I extends DescMessage, O extends DescMessage>(
  req: StreamRequest<I, O>,
  message: AsyncIterable<MessageShape<O>>,
): StreamResponse<I, O> {
  return { stream: true, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), message };
}

async function* fromArray<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

async function drain(iterable: AsyncIterable<unknown>): Promise<number> {
  const items: unknown[] = [];
  for await (const item of iterable) items.push(item);
  return items.length;
}

/**
 * Sum of the samples of `name` whose labels include `labels` (0 when there are none); a histogram's
 * `_count`, `_sum` and `_bucket` samples are read from the histogram.
 */
async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metrics = await registry.getMetricsAsJSON();
  const histogram = /_(count|sum|bucket)$/.test(name) ? name.replace(/_(count|sum|bucket)$/, "") : undefined;
  const metric = metrics.find((m) => m.name === name) ?? metrics.find((m) => m.name === histogram);
  if (metric === undefined) return 0;
  return metric.values
    .filter((v) => metric.name === name || (v as { metricName?: string }).metricName === name)
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

// Passes unary requests to `answer`; reads a streaming request to the end first, as a handler would.
function fakeNext(
  answer: (req: UnaryRequest | StreamRequest) => UnaryResponse | StreamResponse | Promise<UnaryResponse | StreamResponse>,
): Next {
  return async (req) => {
    if (req.stream) {
      const messages: unknown[] = [];
      for await (const m of req.message) messages.push(m);
    }
    return answer(req);
  };
}

describe("gRPC metrics interceptors", () => {
  let registry: Registry;
  beforeEach(() => {
    registry = new Registry();
  });

  describe("server, unary", () => {
    const request = () => unaryRequest(validateSession, create(ValidateSessionRequestSchema, { token: "t" }));

    it("counts a successful call as started and handled with grpc_code OK, one message each way", async () => {
      const next = fakeNext((req) =>
        unaryResponse(req as UnaryRequest, create(ValidateSessionResponseSchema, {})),
      );
      const res = await createServerMetricsInterceptor(registry)(next)(request());

      expect(res.stream).to.equal(false);
      expect(await sample(registry, "grpc_server_started_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total", { ...validateLabels, grpc_code: "OK" })).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total")).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_received_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_sent_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_handling_seconds_count", validateLabels)).to.equal(1);
    });

    it("labels a ConnectError with its code name and re-throws the very same error", async () => {
      const thrown = new ConnectError("no such session", Code.NotFound);
      const next: Next = () => Promise.reject(thrown);

      let caught: unknown;
      await createServerMetricsInterceptor(registry)(next)(request()).catch((err: unknown) => (caught = err));

      expect(caught).to.equal(thrown);
      expect(await sample(registry, "grpc_server_handled_total", { ...validateLabels, grpc_code: "NotFound" })).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total", { grpc_code: "OK" })).to.equal(0);
      expect(await sample(registry, "grpc_server_msg_sent_total")).to.equal(0);
      expect(await sample(registry, "grpc_server_handling_seconds_count", validateLabels)).to.equal(1);
    });

    it("labels a plain Error as Unknown and re-throws it untouched", async () => {
      const thrown = new Error("boom");
      const next: Next = () => Promise.reject(thrown);

      let caught: unknown;
      await createServerMetricsInterceptor(registry)(next)(request()).catch((err: unknown) => (caught = err));

      expect(caught).to.equal(thrown);
      expect(caught).not.to.be.instanceOf(ConnectError);
      expect(await sample(registry, "grpc_server_handled_total", { ...validateLabels, grpc_code: "Unknown" })).to.equal(1);
    });

    it("measures handling time in seconds", async () => {
      const next = fakeNext(async (req) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return unaryResponse(req as UnaryRequest, create(ValidateSessionResponseSchema, {}));
      });
      await createServerMetricsInterceptor(registry)(next)(request());

      expect(await sample(registry, "grpc_server_handling_seconds_sum", validateLabels)).to.be.within(0.015, 1);
      expect(await sample(registry, "grpc_server_handling_seconds_bucket", { ...validateLabels, le: "0.01" })).to.equal(0);
    });
  });

  describe("server, streaming", () => {
    const tailRequest = () => streamRequest(tail, [create(TailRequestSchema, {})]);

    function tailNext(source: AsyncIterable<MessageShape<typeof TailResponseSchema>>): Next {
      return fakeNext((req) => streamResponse(req as StreamRequest, source));
    }

    it("counts the call as handled only once the response stream has been read to its end", async () => {
      const next = tailNext(fromArray([1, 2, 3].map(() => create(TailResponseSchema, {}))));
      const res = await createServerMetricsInterceptor(registry)(next)(tailRequest());

      expect(await sample(registry, "grpc_server_started_total", tailLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total")).to.equal(0);
      expect(await sample(registry, "grpc_server_handling_seconds_count")).to.equal(0);

      if (!res.stream) expect.fail("expected a stream response");
      expect(await drain(res.message)).to.equal(3);

      expect(await sample(registry, "grpc_server_handled_total", { ...tailLabels, grpc_code: "OK" })).to.equal(1);
      expect(await sample(registry, "grpc_server_handling_seconds_count", tailLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_received_total", tailLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_sent_total", tailLabels)).to.equal(3);
    });

    it("counts a response stream abandoned early as Canceled and lets its source clean up", async () => {
      let sourceFinished = false;
      async function* endless() {
        try {
          for (;;) yield await Promise.resolve(create(TailResponseSchema, {}));
        } finally {
          sourceFinished = true;
        }
      }
      const res = await createServerMetricsInterceptor(registry)(tailNext(endless()))(tailRequest());
      if (!res.stream) expect.fail("expected a stream response");

      const read: unknown[] = [];
      for await (const message of res.message) if (read.push(message) === 2) break;

      expect(sourceFinished).to.equal(true);
      expect(await sample(registry, "grpc_server_handled_total", { ...tailLabels, grpc_code: "Canceled" })).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total")).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_sent_total", tailLabels)).to.equal(2);
    });

    it("counts a response stream that fails midway with the error's code and re-throws it", async () => {
      const thrown = new ConnectError("broker gone", Code.Unavailable);
      async function* failing() {
        yield await Promise.resolve(create(TailResponseSchema, {}));
        throw thrown;
      }
      const res = await createServerMetricsInterceptor(registry)(tailNext(failing()))(tailRequest());
      if (!res.stream) expect.fail("expected a stream response");

      let caught: unknown;
      await drain(res.message).catch((err: unknown) => (caught = err));

      expect(caught).to.equal(thrown);
      expect(await sample(registry, "grpc_server_handled_total", { ...tailLabels, grpc_code: "Unavailable" })).to.equal(1);
      expect(await sample(registry, "grpc_server_handled_total")).to.equal(1);
      expect(await sample(registry, "grpc_server_msg_sent_total", tailLabels)).to.equal(1);
    });

    it("counts a streaming call whose handler throws before answering as handled at once", async () => {
      const next: Next = () => Promise.reject(new ConnectError("denied", Code.PermissionDenied));
      await createServerMetricsInterceptor(registry)(next)(tailRequest()).catch(() => undefined);

      expect(await sample(registry, "grpc_server_handled_total", { ...tailLabels, grpc_code: "PermissionDenied" })).to.equal(1);
    });
  });

  describe("client", () => {
    it("records a unary call under the grpc_client_* names, one message each way", async () => {
      const next = fakeNext((req) =>
        unaryResponse(req as UnaryRequest, create(ValidateSessionResponseSchema, {})),
      );
      const req = unaryRequest(validateSession, create(ValidateSessionRequestSchema, { token: "t" }));
      await createClientMetricsInterceptor(registry)(next)(req);

      expect(await sample(registry, "grpc_client_started_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_client_handled_total", { ...validateLabels, grpc_code: "OK" })).to.equal(1);
      expect(await sample(registry, "grpc_client_msg_sent_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_client_msg_received_total", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_client_handling_seconds_count", validateLabels)).to.equal(1);
      expect(await sample(registry, "grpc_server_started_total")).to.equal(0);
    });

    it("counts every message a client stream sends, labelled client_stream", async () => {
      const labels = { grpc_type: "client_stream", grpc_service: "usermesh.photo.v1.PhotoService", grpc_method: "LoadPhoto" };
      const req = streamRequest(loadPhoto, [1, 2, 3, 4].map(() => create(LoadPhotoRequestSchema, {})));
      const next = fakeNext((r) =>
        streamResponse(r as StreamRequest, fromArray([create(LoadPhotoResponseSchema, {})])),
      );
      const res = await createClientMetricsInterceptor(registry)(next)(req);
      if (!res.stream) expect.fail("expected a stream response");
      await drain(res.message);

      expect(await sample(registry, "grpc_client_msg_sent_total", labels)).to.equal(4);
      expect(await sample(registry, "grpc_client_msg_received_total", labels)).to.equal(1);
      expect(await sample(registry, "grpc_client_handled_total", { ...labels, grpc_code: "OK" })).to.equal(1);
    });
  });

  describe("registration", () => {
    it("lets server and client interceptors, and several of each, share one registry", async () => {
      const next = fakeNext((req) =>
        unaryResponse(req as UnaryRequest, create(ValidateSessionResponseSchema, {})),
      );
      const req = () => unaryRequest(validateSession, create(ValidateSessionRequestSchema, {}));
      await createServerMetricsInterceptor(registry)(next)(req());
      await createServerMetricsInterceptor(registry)(next)(req());
      await createClientMetricsInterceptor(registry)(next)(req());
      await createClientMetricsInterceptor(registry)(next)(req());

      expect(await sample(registry, "grpc_server_started_total", validateLabels)).to.equal(2);
      expect(await sample(registry, "grpc_client_started_total", validateLabels)).to.equal(2);
    });

    it("refuses a registry where one of its names is already another kind of metric", () => {
      new Gauge({ name: "grpc_server_started_total", help: "squatter", registers: [registry] });
      expect(() => createServerMetricsInterceptor(registry)).to.throw(/grpc_server_started_total/);
    });
  });
});
