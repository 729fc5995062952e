import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's defaults that `promtool check metrics` rejects: gauges named `_total`. Each is
 * the sum over the `type` label of its sibling without the suffix (`nodejs_active_handles`, ...),
 * so dropping them loses nothing.
 */
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * Registers the default process metrics in `registry`: CPU (`process_cpu_seconds_total`),
 * memory (`process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`), event-loop lag
 * (`nodejs_eventloop_lag_seconds`), GC (`nodejs_gc_duration_seconds`), open handles and more,
 * under their standard names (no `fmnist_` prefix: dashboards for any Node.js process read them).
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
}
