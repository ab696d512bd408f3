// The baseline servers, one per process, chosen by BENCH_MODE. Each prints {"msg":"serving",...ports}
// once listening on 127.0.0.1 and exits 0 on SIGTERM.
//   express      E: Express 5, GET /hello answers "Hello World!"
//   upload-sink  U: node:http, any POST is drained (counted) and answered 201 {"bytes":n}
//   grpc-bare    G: grpc-js Server, hand-written definition of bench.v1.BenchService/Empty, identity (de)serializers
//   grpc-adapter G'/G'srv: internal/rpc startRpcServer hosting BenchService.empty with the standard
//                interceptors and a no-op logger (what the adapter costs, not logging)
//   grpc-kit     G'prod: the production process shell (createProcessKit + serveGrpc: JSON logs to stdout
//                and RabbitMQ, gRPC metrics), as every mesh service runs it
//   connect-node the same handler and interceptors through connect-node on an h2c (HTTP/2) server
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttp2Server, type Http2Server } from "node:http2";
import express from "express";
import * as grpc from "@grpc/grpc-js";
import { createConnectHandler } from "../../internal/rpc/connect-host.js";
import { startRpcServer, standardInterceptors, type ServiceEntry } from "../../internal/rpc/rpc-server.js";
import type { RpcLogger } from "../../internal/rpc/server-interceptors.js";
import { createProcessKit, serveGrpc } from "../../internal/process/process-kit.js";
import { BenchService, benchEmptyPath } from "./bench-service.js";

const mode = process.env.BENCH_MODE ?? "";
const host = "127.0.0.1";
const silent: RpcLogger = { info: () => {}, warn: () => {}, error: () => {} };
const entry: ServiceEntry = { service: BenchService, impl: { empty: async () => ({}) } };

function serving(ports: Record<string, number>): void {
  process.stdout.write(`${JSON.stringify({ msg: "serving", mode, pid: process.pid, ...ports })}\n`);
}

function onTerm(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(1);
    stopping = true;
    // Bounded: a server that will not close in 3 s is left behind.
    const timer = setTimeout(() => process.exit(0), 3000);
    timer.unref();
    void stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}

function listenHttp(server: HttpServer | Http2Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
}

function closeHttp(server: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

switch (mode) {
  case "express": {
    const app = express();
    app.get("/hello", (_req, res) => {
      res.send("Hello World!");
    });
    const server = createHttpServer(app);
    serving({ httpPort: await listenHttp(server) });
    onTerm(() => closeHttp(server));
    break;
  }

  case "upload-sink": {
    const server = createHttpServer((req, res) => {
      let bytes = 0;
      req.on("data", (chunk: Buffer) => (bytes += chunk.length));
      req.on("end", () => {
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ bytes }));
      });
    });
    serving({ httpPort: await listenHttp(server) });
    onTerm(() => closeHttp(server));
    break;
  }

  case "grpc-bare": {
    const identity = (value: Buffer) => value;
    const empty = Buffer.alloc(0);
    const server = new grpc.Server();
    server.addService(
      {
        Empty: {
          path: benchEmptyPath,
          originalName: "empty",
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      { Empty: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, empty) },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    serving({ grpcPort: port });
    onTerm(() => new Promise((resolve) => server.tryShutdown(() => resolve())));
    break;
  }

  case "grpc-adapter": {
    const rpc = await startRpcServer({ host, port: 0, services: [entry], logger: silent });
    serving({ grpcPort: rpc.port });
    onTerm(() => rpc.shutdown(1000));
    break;
  }

  case "grpc-kit": {
    // Env overrides (USERMESH_LOG__EXCHANGE etc.) apply as in the services; there is no config file.
    const kit = createProcessKit({
      service: "bench",
      log: {
        level: "info",
        amqpUrl: process.env.USERMESH_LOG__AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
        exchange: process.env.USERMESH_LOG__EXCHANGE ?? "logs",
        maxBuffered: 10_000,
        toBroker: process.env.USERMESH_LOG__TO_BROKER !== "false",
      },
      shutdown: { graceMs: 3000 },
      config: { bench: true },
    });
    // serveGrpc logs its own "serving" line with grpcPort and adminPort.
    await serveGrpc(kit, { grpc: { host, port: 0 }, admin: { host, port: 0 }, services: [entry], dependencies: [] });
    break;
  }

  case "connect-node": {
    const handler = createConnectHandler([entry], standardInterceptors(silent));
    const server = createHttp2Server(handler);
    serving({ grpcPort: await listenHttp(server) });
    onTerm(
      () =>
        new Promise((resolve) => {
          server.close(() => resolve());
        }),
    );
    break;
  }

  default:
    process.stderr.write(`BENCH_MODE must be one of express, upload-sink, grpc-bare, grpc-adapter, grpc-kit, connect-node (got "${mode}")\n`);
    process.exit(2);
}
