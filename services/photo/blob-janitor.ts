// Retries the blob deletions that failed when first tried: every interval it claims due rows of the
// deletion queue in small batches, deletes each blob, and removes the row on success or reschedules it
// with exponential backoff. Several instances may run: claimed rows are leased, so they skip each other's.
import { describeError, type BlobDeletionQueue, type BlobStore } from "./photos.js";
import { createWakeableSleep } from "../../internal/lifecycle/timing.js";

export interface BlobJanitorLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface BlobJanitorOptions {
  readonly deletions: BlobDeletionQueue;
  readonly blobs: Pick<BlobStore, "delete">;
  readonly logger: BlobJanitorLogger;
  /** Time between passes. */
  readonly intervalMs: number;
  /** Rows claimed at a time; a pass claims batches until none is left due. */
  readonly batchSize: number;
  /** After the n-th failure a row waits min × 2^(n-1), at most max. */
  readonly backoffMs: { readonly min: number; readonly max: number };
  /**
   * How long a claimed row stays hidden from other claimers; a janitor that dies mid-batch leaves its rows
   * to be retried after this. Must exceed the time a batch of deletes takes. Default 5 minutes.
   */
  readonly leaseMs?: number;
  readonly counters?: {
    /** Blobs deleted by the janitor. */
    readonly deleted: { inc(): void };
    /** Failed attempts, each rescheduled. */
    readonly failed: { inc(): void };
  };
}

export interface JanitorPass {
  readonly deleted: number;
  readonly failed: number;
}

export interface BlobJanitor {
  /** Starts the periodic passes (the first one at once); returns at once. Idempotent; not after stop(). */
  start(): void;
  /** Stops after the blob delete in flight (if any). Never rejects. */
  stop(): Promise<void>;
  /**
   * One pass: claims and handles due rows until none is left. Rejects when the queue's store fails (the
   * periodic loop logs that and tries again next interval); blob-store failures are recorded, not thrown.
   */
  runOnce(): Promise<JanitorPass>;
}

const defaultLeaseMs = 5 * 60_000;

/** The wait after the given number of failures (≥ 1): min × 2^(failures-1), capped at max. */
export function backoffDelay(failures: number, bounds: { readonly min: number; readonly max: number }): number {
  return Math.min(bounds.max, bounds.min * 2 ** Math.max(0, failures - 1));
}

export function createBlobJanitor(options: BlobJanitorOptions): BlobJanitor {
  const { deletions, blobs, logger, batchSize, backoffMs } = options;
  const leaseMs = options.leaseMs ?? defaultLeaseMs;
  let stopped = false;
  let running: Promise<void> | undefined;

  // Cut short by stop() (and, in the relay, by NOTIFY or lost leadership).
  const sleeper = createWakeableSleep();
  const sleep = (ms: number) => sleeper.sleep(ms);

  async function runOnce(): Promise<JanitorPass> {
    let deleted = 0;
    let failed = 0;
    while (!stopped) {
      const batch = await deletions.claimDueBlobDeletions(batchSize, leaseMs);
      for (const row of batch) {
        if (stopped) break;
        try {
          await blobs.delete(row.storageKey);
        } catch (error) {
          failed++;
          options.counters?.failed.inc();
          const retryInMs = backoffDelay(row.attempts + 1, backoffMs);
          await deletions.failBlobDeletion(row.storageKey, describeError(error), retryInMs);
          logger.warn("blob delete failed; rescheduled", {
            storageKey: row.storageKey,
            attempts: row.attempts + 1,
            retryInMs,
            err: error,
          });
          continue;
        }
        await deletions.completeBlobDeletion(row.storageKey);
        deleted++;
        options.counters?.deleted.inc();
      }
      // Failed rows were pushed into the future, so a short batch means nothing due is left.
      if (batch.length < batchSize) break;
    }
    return { deleted, failed };
  }

  async function loop(): Promise<void> {
    let storeFailing = false;
    while (!stopped) {
      try {
        const pass = await runOnce();
        if (pass.deleted > 0 || pass.failed > 0) logger.info("blob janitor pass", { ...pass });
        storeFailing = false;
      } catch (error) {
        // One warning per outage of the queue's store; the next interval tries again.
        if (!storeFailing) logger.warn("blob janitor could not read its queue; retrying", { err: error });
        storeFailing = true;
      }
      if (!stopped) await sleep(options.intervalMs);
    }
  }

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopped = true;
      sleeper.wake();
      await running;
    },
    runOnce,
  };
}
