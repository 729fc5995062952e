/**
 * Prometheus' HTTP service discovery (`http_sd_configs`), served by the coordinator on `/sd`:
 * one target group per live registered worker that serves metrics (its advertised
 * `host:port`, see shared/run/worker-registry.ts), plus the coordinator itself. Prometheus
 * polls it every `refresh_interval`, so workers that come and go need no edited files.
 *
 * The coordinator lists itself under the address Prometheus used to reach `/sd` (the request's
 * Host header): whatever name a container network or a bare machine gives it, that address is
 * known to work from Prometheus.
 *
 * Labels (`__meta_*` ones are dropped after relabelling; see coordinator/prometheus-config.ts):
 * `__meta_fmnist_role` `worker` | `coordinator` becomes the job (`fmnist-worker`,
 * `fmnist-coordinator`); `__meta_fmnist_worker` is the worker's `--name`.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../shared/redis/keys.ts';
import { listLiveWorkers } from '../shared/run/worker-registry.ts';

/** One entry of the http_sd response. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The http_sd response: live workers with a metrics address, ordered as the registry lists them, then `coordinator`. */
export async function discoveryTargets(redis: Redis, keys: RedisKeys, coordinator: string | undefined): Promise<TargetGroup[]> {
  const workers = await listLiveWorkers(redis, keys);
  const groups: TargetGroup[] = workers.flatMap((beat) =>
    beat.metricsAddress === undefined ? [] : [{ targets: [beat.metricsAddress], labels: { __meta_fmnist_role: 'worker', __meta_fmnist_worker: beat.name } }],
  );
  if (coordinator !== undefined) groups.push({ targets: [coordinator], labels: { __meta_fmnist_role: 'coordinator' } });
  return groups;
}
