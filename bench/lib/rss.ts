// Resident memory of the mesh's processes, read from their Prometheus endpoint
// (process_resident_memory_bytes on the admin port), once or sampled during a run for the peak.
export const MiB = 1024 * 1024;

export async function rssOf(adminPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  const match = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.e+]+)/m.exec(text);
  if (!match) throw new Error(`no process_resident_memory_bytes on admin port ${adminPort}`);
  return Number(match[1]);
}

/** RSS and the V8 heap (used, total) of a process, from its /metrics. */
export async function memoryOf(adminPort: number): Promise<{ rss: number; heapUsed: number; heapTotal: number }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.e+]+)`, "m").exec(text)?.[1] ?? NaN);
  return { rss: read("process_resident_memory_bytes"), heapUsed: read("nodejs_heap_size_used_bytes"), heapTotal: read("nodejs_heap_size_total_bytes") };
}

export async function memoryOfAll(ports: Record<string, number>): Promise<Record<string, { rss: number; heapUsed: number; heapTotal: number }>> {
  const entries = await Promise.all(Object.entries(ports).map(async ([name, port]) => [name, await memoryOf(port)] as const));
  return Object.fromEntries(entries);
}

export async function rssOfAll(ports: Record<string, number>): Promise<Record<string, number>> {
  const entries = await Promise.all(Object.entries(ports).map(async ([name, port]) => [name, await rssOf(port)] as const));
  return Object.fromEntries(entries);
}

export interface RssSampler {
  /** Stops sampling; resolves with each process's highest and first reading. */
  stop(): Promise<Record<string, { peak: number; first: number; samples: number }>>;
}

/** Samples every intervalMs until stopped (a failed read is skipped). */
export function sampleRss(ports: Record<string, number>, intervalMs = 200): RssSampler {
  const stats: Record<string, { peak: number; first: number; samples: number }> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      await Promise.all(
        Object.entries(ports).map(async ([name, port]) => {
          try {
            const rss = await rssOf(port);
            const s = (stats[name] ??= { peak: 0, first: rss, samples: 0 });
            s.peak = Math.max(s.peak, rss);
            s.samples++;
          } catch {
            // a missed sample
          }
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - started))));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return stats;
    },
  };
}
