import { RunError } from '../../shared/errors.ts';
import { parseFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, openClusterSession } from '../cluster-session.ts';

/**
 * `coordinator cancel <run>`: a queued run loses its waiting jobs and is cancelled at once; a
 * running run's workers stop together after their current step (rank 0 checkpoints and marks it
 * cancelled); an interrupted run is cancelled. A cancelled run can still be resumed.
 */
export async function cancelCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('cancel', argv, CLUSTER_FLAGS, 1);
  const runId = positionals[0];
  if (!runId) throw new RunError('RUN_ID_MISSING', 'cancel needs a run id (see `coordinator list`)');
  const session = await openClusterSession(values);
  try {
    const { runs, queue } = session.client;
    const run = await runs.get(runId);
    if (run.state === 'running') {
      await runs.requestCancel(runId);
      process.stdout.write(`${runId}: cancel requested; workers stop after their current step\n`);
      return 0;
    }
    if (run.state === 'queued') await queue.removeWaiting(run);
    await runs.transition(runId, 'cancelled', { error: 'cancelled by the user' });
    process.stdout.write(`${runId}: cancelled\n`);
    return 0;
  } finally {
    await session.close();
  }
}
