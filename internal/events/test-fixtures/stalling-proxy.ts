// A loopback TCP proxy to the broker that can hold back everything the broker sends (confirms included)
// while the connection stays open: the way to see a publish time out against a real broker.
import { connect, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

export interface StallingProxy {
  readonly url: string;
  /** Stops forwarding broker → client bytes; they wait in the proxy. */
  stall(): void;
  /** Forwards again, the held bytes first. */
  resume(): void;
  close(): Promise<void>;
}

export async function startStallingProxy(brokerPort = 5672): Promise<StallingProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let stalled = false;
  const server: Server = createServer((client) => {
    const upstream = connect(brokerPort, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    if (!stalled) upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    stall() {
      stalled = true;
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        upstream.pause();
      }
    },
    resume() {
      stalled = false;
      for (const { client, upstream } of pairs) upstream.pipe(client);
    },
    close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
