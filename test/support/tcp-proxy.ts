// A loopback TCP proxy a test can cut and restore, to take a real broker or database "down" for
// one process without stopping the shared server.
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Drops every open connection and refuses new ones (they are closed at once). */
  cut(): void;
  /** Forwards connections again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, options: { startCut?: boolean } = {}): Promise<TcpProxy> {
  let isCut = options.startCut ?? false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      isCut = false;
    },
    close() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
