// Wrappers that let an interceptor observe or transform the end of a streamed response.

/**
 * Yields what `source` yields; calls onEnd once when it completes (error undefined), throws
 * (the error), or is abandoned by the consumer (abandoned true). Rethrows what `mapError` returns.
 */
export async function* observeStream<T>(
  source: AsyncIterable<T>,
  onEnd: (error: unknown, abandoned: boolean) => void,
  mapError: (error: unknown) => unknown = (e) => e,
): AsyncGenerator<T> {
  let ended = false;
  try {
    for await (const item of source) yield item;
    ended = true;
    onEnd(undefined, false);
  } catch (thrown) {
    ended = true;
    const mapped = mapError(thrown);
    onEnd(mapped, false);
    throw mapped;
  } finally {
    if (!ended) onEnd(undefined, true);
  }
}

/** Yields what `source` yields, running each step of it inside `run` (e.g. an async-local scope). */
export function iterateWithin<T>(source: AsyncIterable<T>, run: <R>(fn: () => R) => R): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        next: (value?: unknown) => run(() => it.next(value as never)),
        return: (value?: unknown) => run(() => it.return?.(value as never) ?? Promise.resolve({ done: true as const, value: undefined as never })),
        throw: (error?: unknown) => run(() => it.throw?.(error) ?? Promise.reject(error as Error)),
      };
    },
  };
}
