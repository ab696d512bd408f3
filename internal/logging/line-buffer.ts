// The AMQP log transport's bounded memory: lines waiting to be sent plus lines sent but not yet
// confirmed by the broker, evicting the oldest when full.

/** One log line ready to publish. */
export interface BufferedLine {
  readonly routingKey: string;
  readonly body: Buffer;
  /** Seconds since the epoch, for the AMQP timestamp property. */
  readonly timestamp: number;
}

/** One attempt to send a line; settle it exactly once with confirm or release. */
export interface SendTicket {
  readonly seq: number;
  readonly line: BufferedLine;
}

export interface LineBuffer {
  /** Lines held: waiting plus in flight. Never above the capacity. */
  readonly size: number;
  /** Lines waiting to be sent. */
  readonly waiting: number;
  /** Adds a line, evicting the oldest waiting line (or, if none waits, the oldest in flight) when full. Returns how many lines were evicted. */
  push(line: BufferedLine): number;
  /** The oldest waiting line, now in flight; undefined when nothing waits. */
  take(): SendTicket | undefined;
  /** The broker has the line: forget it. False when the ticket is stale (evicted, released, or already settled). */
  confirm(ticket: SendTicket): boolean;
  /** The send failed: the line waits again, in its original order. A stale ticket is ignored. */
  release(ticket: SendTicket): void;
  /** Every line in flight waits again (their channel is gone); their tickets become stale. */
  releaseAll(): void;
  /** Forgets everything; returns how many lines were held. */
  clear(): number;
}

interface Entry {
  readonly seq: number;
  readonly line: BufferedLine;
}

/**
 * A buffer holding at most capacity lines.
 * Throws a RangeError when capacity is not a positive integer.
 */
export function createLineBuffer(capacity: number): LineBuffer {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`line buffer capacity must be a positive integer, got ${capacity}`);
  }
  // A queue as an array with a moving head: shift() on a 10k-element array would copy on every line.
  let queue: Entry[] = [];
  let head = 0;
  // Keyed by seq; a Map iterates in insertion order, so the first key is the longest in flight.
  const inflight = new Map<number, SendTicket>();
  let nextSeq = 0;

  const waitingCount = () => queue.length - head;

  function dequeue(): Entry | undefined {
    if (head >= queue.length) return undefined;
    const entry = queue[head++];
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    return entry;
  }

  function requeue(entry: Entry): void {
    // Binary search for the first waiting entry with a larger seq; released lines are usually the oldest.
    let low = head;
    let high = queue.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (queue[mid].seq < entry.seq) low = mid + 1;
      else high = mid;
    }
    if (low === head && head > 0) queue[--head] = entry;
    else queue.splice(low, 0, entry);
  }

  return {
    get size() {
      return waitingCount() + inflight.size;
    },
    get waiting() {
      return waitingCount();
    },
    push(line) {
      let evicted = 0;
      if (waitingCount() + inflight.size >= capacity) {
        if (waitingCount() > 0) dequeue();
        else inflight.delete(inflight.keys().next().value!);
        evicted = 1;
      }
      queue.push({ seq: nextSeq++, line });
      return evicted;
    },
    take() {
      const entry = dequeue();
      if (!entry) return undefined;
      // A fresh ticket per attempt: a late callback from an earlier attempt must not settle this one.
      const ticket: SendTicket = { seq: entry.seq, line: entry.line };
      inflight.set(entry.seq, ticket);
      return ticket;
    },
    confirm(ticket) {
      if (inflight.get(ticket.seq) !== ticket) return false;
      inflight.delete(ticket.seq);
      return true;
    },
    release(ticket) {
      if (inflight.get(ticket.seq) !== ticket) return;
      inflight.delete(ticket.seq);
      requeue(ticket);
    },
    releaseAll() {
      const tickets = [...inflight.values()].sort((a, b) => b.seq - a.seq);
      inflight.clear();
      for (const ticket of tickets) requeue(ticket);
    },
    clear() {
      const held = waitingCount() + inflight.size;
      queue = [];
      head = 0;
      inflight.clear();
      return held;
    },
  };
}
