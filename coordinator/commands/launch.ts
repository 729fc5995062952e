import { compileComputeOptions } from '../../shared/config/compute-options.ts';
import { ConfigError } from '../../shared/errors.ts';
import { isStoppedState, validateRunConfig, type RunConfig, type RunRecord } from '../../shared/run/run-state.ts';
import { computeOptionsFromFlags, numberFlag, parseFlags, stringFlag, TRAINING_FLAGS, trainingOptionsFromFlags, type FlagValues } from '../cli-flags.ts';
import { CLUSTER_FLAGS, LOCAL_RUN_FLAGS, monitoringPlan, openClusterSession, runToEnd, type ClusterSession } from '../cluster-session.ts';
import { publishDataset } from '../dataset-publisher.ts';
import { ensureNamedRun, parseIfExists, type IfExists, type NamedRunOutcome } from '../named-run.ts';

const LAUNCH_FLAGS = {
  ...TRAINING_FLAGS,
  ...CLUSTER_FLAGS,
  ...LOCAL_RUN_FLAGS,
  workers: { type: 'string' },
  'max-restarts': { type: 'string' },
  'heartbeat-timeout': { type: 'string' },
  follow: { type: 'boolean' },
  'run-id': { type: 'string' },
  'if-exists': { type: 'string' },
} as const;

/**
 * `coordinator launch`: creates a run, queues its jobs and (with --local or --follow) follows it.
 * With `--run-id NAME` the run is created once; `--if-exists` says what a second launch does.
 */
export async function launchCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('launch', argv, LAUNCH_FLAGS);
  // Checked here, before Redis is touched, by the same functions as `train`'s flags.
  const compute = compileComputeOptions(computeOptionsFromFlags(values));
  const config = validateRunConfig({
    ...trainingOptionsFromFlags(values),
    workers: numberFlag(values, 'workers') ?? 1,
    maxRestarts: numberFlag(values, 'max-restarts'),
    heartbeatTimeoutMs: secondsFlagAsMs(values, 'heartbeat-timeout'),
    backend: compute.backend,
    ...(compute.threads !== undefined ? { threads: compute.threads } : {}),
  });
  const monitoring = monitoringPlan(values);
  const named = namedRunFlags(values);
  const session = await openClusterSession(values);
  try {
    const { run, action } = named ? await ensureNamedRun(session.client.runs, named.id, config, named.ifExists) : await createRun(session, config);
    const json = values.json === true;
    if (action !== 'created') process.stderr.write(`run ${run.id} exists (${action === 'resumed' ? `resumed as generation ${run.generation}` : run.state})\n`);
    if (isStoppedState(run.state)) return reportStopped(run, json);
    const local = values.local === true;
    // Queued jobs have fixed ids, so queueing an existing queued run's jobs again changes nothing
    // (it repairs a launch that stopped between creating the run and queueing them).
    const enqueue = async () => {
      if (run.state !== 'queued') return;
      const dataset = await publishDataset(session.client.shards);
      await session.client.queue.enqueueGeneration(run, dataset);
    };
    if (!local && values.follow !== true) {
      await enqueue();
      process.stdout.write(`${json ? JSON.stringify({ run: run.id, status: run.state, action }) : run.id}\n`);
      return 0;
    }
    return await runToEnd(session, run, { json, local, values, monitoring }, enqueue);
  } finally {
    await session.close();
  }
}

/** A flag given in seconds (`--heartbeat-timeout 2.5`), as whole ms for the run config; undefined when absent. */
function secondsFlagAsMs(values: FlagValues, name: string): number | undefined {
  const seconds = numberFlag(values, name);
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

/** `--run-id` and `--if-exists` (default fail), or undefined for a run with a fresh id. */
function namedRunFlags(values: FlagValues): { id: string; ifExists: IfExists } | undefined {
  const id = stringFlag(values, 'run-id');
  const ifExists = stringFlag(values, 'if-exists');
  if (id === undefined) {
    if (ifExists !== undefined) throw new ConfigError('launch: --if-exists needs --run-id', { option: 'if-exists' });
    return undefined;
  }
  return { id, ifExists: parseIfExists(ifExists ?? 'fail') };
}

async function createRun(session: ClusterSession, config: RunConfig): Promise<NamedRunOutcome> {
  return { run: await session.client.runs.create(config), action: 'created' };
}

/**
 * A named run found stopped: nothing to train. Exit 0 when it completed or was cancelled (both
 * final decisions), 1 when it failed or was interrupted (`--if-exists attach` leaves it so).
 */
function reportStopped(run: RunRecord, json: boolean): number {
  process.stdout.write(`${json ? JSON.stringify({ run: run.id, status: run.state, action: 'attached' }) : `${run.id} ${run.state}`}\n`);
  if (run.state === 'completed' || run.state === 'cancelled') return 0;
  process.stderr.write(`run ${run.id} is ${run.state}; resume it with: npm run coordinator -- resume ${run.id}\n`);
  return 1;
}
