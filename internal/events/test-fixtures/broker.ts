// Test kit for the events package: the real broker's URL, unique names per run, a recording logger, polling,
// a connect seam that keeps each real connection, and an admin channel that deletes what a test declared.
import { randomBytes } from "node:crypto";
import { connect } from "amqplib";
import type { Channel, ChannelModel } from "amqplib";
import type { EventsLogger } from "../amqp-link.js";
import type { CloudEvent } from "../cloudevents.js";

export const brokerUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const unreachableUrl = "amqp://guest:guest@127.0.0.1:1";
export const fastRetry = { min: 20, max: 100 };

const run = randomBytes(4).toString("hex");
let sequence = 0;

/** A name no other run (or test) uses: `<prefix>.test.<run>.<n>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}.test.${run}.${sequence++}`;
}

export interface LogLine {
  level: "info" | "warn";
  msg: string;
  fields?: Record<string, unknown>;
}

export function recordingLogger(): EventsLogger & { lines: LogLine[]; warnings(): LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (msg, fields) => lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, fields }),
    warnings: () => lines.filter((line) => line.level === "warn"),
  };
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A connect seam returning real connections and keeping them, so a test can cut one. */
export function keptConnections(): { connect: (url: string) => Promise<ChannelModel>; connections: ChannelModel[] } {
  const connections: ChannelModel[] = [];
  return {
    connections,
    connect: async (url) => {
      const model = await connect(url);
      connections.push(model);
      return model;
    },
  };
}

export function sampleEvent(overrides: Partial<CloudEvent> = {}): CloudEvent {
  return {
    id: `evt-${randomBytes(6).toString("hex")}`,
    source: "/usermesh/user",
    type: "usermesh.user.v1.registered",
    time: new Date("2024-05-06T07:08:09.123Z"),
    subject: "u-42",
    dataContentType: "application/protobuf",
    data: new Uint8Array([1, 2, 3, 250]),
    ...overrides,
  };
}

/** A plain channel for arranging and inspecting; cleanup() deletes every queue and exchange it was told of. */
export interface BrokerAdmin {
  readonly channel: Channel;
  /** Registers names for deletion in cleanup() (whoever declared them). */
  track(names: { queues?: string[]; exchanges?: string[] }): void;
  /**
   * Consumers of a queue, or undefined when it does not exist (now). Checked on a channel of its own:
   * the broker closes a channel whose passive declare finds no queue, and `channel` must stay usable.
   */
  consumersOf(queue: string): Promise<number | undefined>;
  cleanup(): Promise<void>;
}

export async function openBrokerAdmin(): Promise<BrokerAdmin> {
  const model = await connect(brokerUrl);
  model.on("error", () => undefined);
  let channel = await model.createChannel();
  channel.on("error", () => undefined);
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  return {
    get channel() {
      return channel;
    },
    track(names) {
      for (const queue of names.queues ?? []) queues.add(queue);
      for (const exchange of names.exchanges ?? []) exchanges.add(exchange);
    },
    async consumersOf(queue) {
      const probe = await model.createChannel();
      probe.on("error", () => undefined);
      try {
        return (await probe.checkQueue(queue)).consumerCount;
      } catch {
        return undefined; // 404: the broker has closed the probe channel already
      } finally {
        await probe.close().catch(() => undefined);
      }
    },
    async cleanup() {
      const removals: (() => Promise<unknown>)[] = [
        ...[...queues].map((queue) => () => channel.deleteQueue(queue)),
        ...[...exchanges].map((exchange) => () => channel.deleteExchange(exchange)),
      ];
      for (const remove of removals) {
        try {
          await remove();
        } catch {
          // A failed delete closes the channel; carry on with a fresh one.
          channel = await model.createChannel();
          channel.on("error", () => undefined);
        }
      }
      queues.clear();
      exchanges.clear();
      await model.close();
    },
  };
}
