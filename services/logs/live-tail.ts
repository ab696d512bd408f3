// Tail subscriptions: every stored line is offered to each subscriber whose filter it matches, through a
// bounded buffer per subscriber, so a slow reader loses its oldest lines instead of holding memory.
import type { LogRecord } from "./log-line.js";
import { matchesTail, type TailFilter } from "./logs.js";

export interface TailItem {
  readonly record: LogRecord;
  /** Matching lines dropped just before this one because the subscriber fell behind. */
  readonly dropped: number;
}

export interface LiveTail {
  /** Offers a stored line to every subscriber; never blocks. */
  publish(record: LogRecord): void;
  /**
   * Lines published from now on that match the filter, until the signal aborts or close() is called (then
   * the iteration ends normally). At most bufferLines wait for the reader; past that the oldest is dropped.
   */
  subscribe(filter: TailFilter, signal: AbortSignal): AsyncIterable<TailItem>;
  /** Ends every subscription, and any later one at once. */
  close(): void;
  readonly subscribers: number;
}

interface Subscriber {
  readonly filter: TailFilter;
  readonly queue: LogRecord[];
  dropped: number;
  wake: (() => void) | undefined;
}

export function createLiveTail(options: { readonly bufferLines: number; readonly dropped?: { inc(count: number): void } }): LiveTail {
  const subscribers = new Set<Subscriber>();
  let closed = false;

  async function* stream(subscriber: Subscriber, signal: AbortSignal): AsyncGenerator<TailItem> {
    const wake = () => subscriber.wake?.();
    signal.addEventListener("abort", wake);
    subscribers.add(subscriber);
    try {
      while (!closed && !signal.aborted) {
        const record = subscriber.queue.shift();
        if (record === undefined) {
          await new Promise<void>((resolve) => (subscriber.wake = resolve));
          subscriber.wake = undefined;
          continue;
        }
        const dropped = subscriber.dropped;
        subscriber.dropped = 0;
        yield { record, dropped };
      }
    } finally {
      subscribers.delete(subscriber);
      signal.removeEventListener("abort", wake);
    }
  }

  return {
    publish(record) {
      for (const subscriber of subscribers) {
        if (!matchesTail(record, subscriber.filter)) continue;
        if (subscriber.queue.length >= options.bufferLines) {
          subscriber.queue.shift();
          subscriber.dropped++;
          options.dropped?.inc(1);
        }
        subscriber.queue.push(record);
        subscriber.wake?.();
      }
    },
    subscribe(filter, signal) {
      return stream({ filter, queue: [], dropped: 0, wake: undefined }, signal);
    },
    close() {
      closed = true;
      for (const subscriber of subscribers) subscriber.wake?.();
    },
    get subscribers() {
      return subscribers.size;
    },
  };
}
