// A process's own Prometheus registry (never prom-client's global one), and get-or-create of metrics on it.
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

/**
 * A new registry with the process default metrics (process_cpu_seconds_total, nodejs_*, …) registered
 * on it, and `service` as a default label on every series it exposes.
 *
 * Throws if `service` is empty: every series must say which process it came from.
 */
export function createMetricsRegistry(options: { service: string }): Registry {
  if (options.service === "") throw new Error("createMetricsRegistry: service must not be empty");
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The counter called `name` on the registry, created on first use (services count domain events with
 * it: sessions_created_total, events_published_total, …). Calling it again with the same name returns
 * the same counter.
 *
 * Throws if the name is taken by a metric of another type or with other label names, or if prom-client
 * rejects the name or a label name as invalid.
 */
export function createDomainCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return getOrCreateCounter(registry, { name, help, labelNames });
}

interface MetricSpec<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
}

/** Get-or-create of a counter; throws as createDomainCounter does. */
export function getOrCreateCounter<L extends string>(registry: Registry, spec: MetricSpec<L>): Counter<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing === undefined) return new Counter({ ...spec, registers: [registry] });
  if (!(existing instanceof Counter)) throw new Error(`metric ${spec.name} is registered, but not as a counter`);
  assertSameLabels(existing, spec);
  return existing;
}

/**
 * Get-or-create of a histogram. An existing histogram keeps its own buckets. Throws if the name is taken
 * by a metric of another type or with other label names.
 */
export function getOrCreateHistogram<L extends string>(
  registry: Registry,
  spec: MetricSpec<L> & { readonly buckets: readonly number[] },
): Histogram<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing === undefined) {
    return new Histogram({ ...spec, buckets: [...spec.buckets], registers: [registry] });
  }
  if (!(existing instanceof Histogram)) throw new Error(`metric ${spec.name} is registered, but not as a histogram`);
  assertSameLabels(existing, spec);
  return existing;
}

// prom-client keeps labelNames on the instance without typing it; a mismatch would otherwise only
// surface as a throw from inc() on the first call, deep in a request.
function assertSameLabels(metric: object, spec: MetricSpec<string>): void {
  const actual = (metric as { labelNames?: readonly string[] }).labelNames ?? [];
  const same = actual.length === spec.labelNames.length && spec.labelNames.every((l) => actual.includes(l));
  if (!same) {
    throw new Error(
      `metric ${spec.name} is registered with labels [${actual.join(", ")}], not [${spec.labelNames.join(", ")}]`,
    );
  }
}
