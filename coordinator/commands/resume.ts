import { RunError } from '../../shared/errors.ts';
import { parseFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, LOCAL_RUN_FLAGS, monitoringPlan, openClusterSession, runToEnd } from '../cluster-session.ts';
import { publishDataset } from '../dataset-publisher.ts';

/**
 * `coordinator resume <run>`: a failed, cancelled or interrupted run goes back to queued in a
 * new generation; its workers continue from the newest complete checkpoint.
 */
export async function resumeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'resume',
    argv,
    { ...CLUSTER_FLAGS, ...LOCAL_RUN_FLAGS, follow: { type: 'boolean' }, force: { type: 'boolean' } },
    1,
  );
  const runId = positionals[0];
  if (!runId) throw new RunError('RUN_ID_MISSING', 'resume needs a run id (see `coordinator list`)');
  const monitoring = monitoringPlan(values);
  const session = await openClusterSession(values);
  try {
    const { runs } = session.client;
    // A run whose processes were all killed still reads `running`; --force says they are gone.
    if (values.force === true && (await runs.get(runId)).state === 'running') {
      await runs.transition(runId, 'interrupted', { from: 'running', error: 'its workers were lost (resume --force)' });
    }
    const run = await runs.transition(runId, 'queued');
    const enqueue = async () => {
      const dataset = await publishDataset(session.client.shards);
      await session.client.queue.enqueueGeneration(run, dataset);
    };
    if (values.local !== true && values.follow !== true) {
      await enqueue();
      process.stdout.write(
        `${values.json === true ? JSON.stringify({ run: run.id, status: run.state, generation: run.generation }) : `${run.id} queued (generation ${run.generation})`}\n`,
      );
      return 0;
    }
    return await runToEnd(session, run, { json: values.json === true, local: values.local === true, values, monitoring }, enqueue);
  } finally {
    await session.close();
  }
}
