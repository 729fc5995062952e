/**
 * One run of real worker processes on this machine, as `launch --local` starts them: a
 * coordinator service publishes the dataset, N workers take the run's jobs, and the run is
 * followed to its end. Shared by the benchmarks that need whole runs (scaling, compression).
 */
import path from 'node:path';
import { ClusterClient } from '../coordinator/cluster-client.ts';
import { CoordinatorService } from '../coordinator/coordinator-service.ts';
import { LocalCluster } from '../coordinator/local-cluster.ts';
import { followRun } from '../coordinator/run-follower.ts';
import type { RunConfig, RunProgress, RunRecord } from '../shared/run/run-state.ts';

export interface LocalRunResult {
  /** The run as it ended (state `completed`), with its history. */
  run: RunRecord;
  /** Rank 0's progress records, in order. */
  steps: RunProgress[];
  /** Where rank 0 wrote the run's checkpoints. */
  checkpointDir: string;
}

/**
 * Runs `config` to completion on `config.workers` local worker processes, with their logs and
 * checkpoints under `scratch`; `env` reaches the workers (e.g. FMNIST_COLLECTIVE_TRANSPORT).
 * Throws when the run ends in any other state than completed.
 */
export async function runOnLocalWorkers(redisUrl: string, scratch: string, label: string, config: RunConfig, env?: NodeJS.ProcessEnv): Promise<LocalRunResult> {
  const client = new ClusterClient(redisUrl, `bench-${label}-${Date.now()}`);
  const service = new CoordinatorService(client);
  const dataset = await service.start();
  const run = await client.runs.create(config);
  const checkpointRoot = path.join(scratch, 'ckpt');
  const cluster = LocalCluster.start({
    workers: config.workers,
    redis: redisUrl,
    prefix: client.keys.prefix,
    checkpointRoot,
    logDir: path.join(scratch, 'logs', run.id),
    ...(env === undefined ? {} : { env }),
  });
  const steps: RunProgress[] = [];
  try {
    await client.queue.enqueueGeneration(run, dataset);
    const final = await followRun(client.runs, run.id, { onProgress: (p) => steps.push(p) });
    if (final.state !== 'completed') throw new Error(`run ${run.id} ${final.state}: ${final.error ?? ''} (logs in ${cluster.options.logDir})`);
    return { run: final, steps, checkpointDir: path.join(checkpointRoot, run.id) };
  } finally {
    await cluster.stop();
    await service.close();
    await client.close();
  }
}
