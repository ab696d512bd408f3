// Serves the same Connect handlers through connect-node (Connect protocol, gRPC-Web and gRPC on
// node:http/http2) for browser clients and plain curl. grpc-js stays the mesh's wire: see the
// RPC section of docs/architecture.md for the measured difference.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { deadlineKey, peerKey } from "./context-keys.js";
import type { ServiceEntry } from "./rpc-server.js";

type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** A node:http(2) request handler serving the services with the given interceptors. */
export function createConnectHandler(services: readonly ServiceEntry[], interceptors: readonly Interceptor[]): NodeHandler {
  return connectNodeAdapter({
    interceptors: [...interceptors],
    routes: (router) => {
      for (const { service, impl } of services) router.service(service, impl);
    },
    contextValues: (req) => {
      const values = createContextValues();
      values.set(deadlineKey, deadlineFromHeaders(req.headers));
      values.set(peerKey, req.socket.remoteAddress ?? "");
      return values;
    },
  });
}

/** Deadline from connect-timeout-ms (Connect) or grpc-timeout (gRPC, gRPC-Web), as epoch ms. */
function deadlineFromHeaders(headers: http.IncomingHttpHeaders): number | undefined {
  const connectMs = headers["connect-timeout-ms"];
  if (typeof connectMs === "string" && /^\d{1,10}$/.test(connectMs)) return Date.now() + Number(connectMs);
  const grpcTimeout = headers["grpc-timeout"];
  const match = typeof grpcTimeout === "string" ? /^(\d{1,8})([HMSmun])$/.exec(grpcTimeout) : null;
  if (!match) return undefined;
  const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[match[2] as "H"];
  return Date.now() + Number(match[1]) * unitMs;
}
