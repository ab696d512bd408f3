// The byte stream a BlobStore.get hands out: one pass over a backend's stream with its errors mapped, and
// the stream released whenever the reader stops, even before the first chunk (a stream's own async
// iterator is a generator, which never runs its clean-up when stopped before it started).
export interface ChunkSource {
  /** The backend stream's iterator (obtained once: a second one would compete for the same chunks). */
  readonly chunks: AsyncIterator<Uint8Array>;
  /** Releases the stream (its file, its connections); called when the reader stops early or on an error. */
  destroy(): void;
}

/**
 * Wraps source for a get caller, turning its errors into the store's with mapError. `first` is a result
 * already read from source (a backend may read one to learn whether the blob exists); it comes first.
 * Single pass: iterating again continues the same stream.
 */
export function blobChunks(
  source: ChunkSource,
  mapError: (error: unknown) => Error,
  first?: IteratorResult<Uint8Array>,
): AsyncIterable<Uint8Array> {
  let pending = first;
  const chunks: AsyncIterableIterator<Uint8Array> = {
    async next() {
      if (pending) {
        const result = pending;
        pending = undefined;
        return result;
      }
      try {
        return await source.chunks.next();
      } catch (error) {
        source.destroy();
        throw mapError(error);
      }
    },
    async return() {
      pending = undefined;
      source.destroy();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return chunks;
    },
  };
  return chunks;
}
