import { compileComputeOptions } from '../../shared/config/compute-options.ts';
import { validateRunConfig } from '../../shared/run/run-state.ts';
import { computeOptionsFromFlags, numberFlag, parseFlags, TRAINING_FLAGS, trainingOptionsFromFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, LOCAL_RUN_FLAGS, monitoringPlan, openClusterSession, runToEnd } from '../cluster-session.ts';
import { publishDataset } from '../dataset-publisher.ts';

/** `coordinator launch`: creates a run, queues its jobs and (with --local or --follow) follows it. */
export async function launchCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('launch', argv, {
    ...TRAINING_FLAGS,
    ...CLUSTER_FLAGS,
    ...LOCAL_RUN_FLAGS,
    workers: { type: 'string' },
    follow: { type: 'boolean' },
  });
  // Checked here, before Redis is touched, by the same functions as `train`'s flags.
  const compute = compileComputeOptions(computeOptionsFromFlags(values));
  const config = validateRunConfig({
    ...trainingOptionsFromFlags(values),
    workers: numberFlag(values, 'workers') ?? 1,
    backend: compute.backend,
    ...(compute.threads !== undefined ? { threads: compute.threads } : {}),
  });
  const monitoring = monitoringPlan(values);
  const session = await openClusterSession(values);
  try {
    const run = await session.client.runs.create(config);
    const local = values.local === true;
    const enqueue = async () => {
      const dataset = await publishDataset(session.client.shards);
      await session.client.queue.enqueueGeneration(run, dataset);
    };
    if (!local && values.follow !== true) {
      await enqueue();
      process.stdout.write(`${values.json === true ? JSON.stringify({ run: run.id, status: run.state }) : run.id}\n`);
      return 0;
    }
    return await runToEnd(session, run, { json: values.json === true, local, values, monitoring }, enqueue);
  } finally {
    await session.close();
  }
}
