import { gradCompressionNote } from '../../shared/config/training-options.ts';
import { RunError } from '../../shared/errors.ts';
import type { RunRecord } from '../../shared/run/run-state.ts';
import { parseFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, openClusterSession, runToEnd } from '../cluster-session.ts';
import { formatEpochLine } from '../epoch-line.ts';
import { describeFailure } from '../run-failure-text.ts';

function describe(run: RunRecord): string {
  const c = run.config;
  const lines = [
    `run ${run.id}: ${run.state} (generation ${run.generation})${run.error ? ` - ${run.error}` : ''}`,
    `  ${c.model}, ${c.workers} worker(s), ${c.epochs} epochs, batch ${c.batchSize}, lr ${c.lr}, resize ${c.resize}, seed ${c.seed}, backend ${c.backend}${gradCompressionNote(c.gradCompression)}`,
  ];
  if (run.progress) {
    const p = run.progress;
    lines.push(`  at epoch ${p.epoch} step ${p.step}/${p.stepsPerEpoch}, loss ${p.loss.toFixed(3)}, ${p.examplesPerSec.toFixed(1)} examples/sec`);
  }
  if (run.restarts.length > 0 || run.config.maxRestarts > 0) lines.push(`  restarts ${run.restarts.length} of ${run.config.maxRestarts}`);
  for (const restart of run.restarts) {
    lines.push(`    generation ${restart.generation} at ${new Date(restart.at).toISOString()}: ${describeFailure(restart.cause)}`);
  }
  for (const entry of run.history) lines.push(`  ${formatEpochLine(entry, c.epochs, entry.backend ?? c.backend)}`);
  return lines.join('\n');
}

/** `coordinator status <run> [--json] [--follow]`. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('status', argv, { ...CLUSTER_FLAGS, follow: { type: 'boolean' } }, 1);
  const runId = positionals[0];
  if (!runId) throw new RunError('RUN_ID_MISSING', 'status needs a run id (see `coordinator list`)');
  const session = await openClusterSession(values, process.env, { readsStateDir: true });
  try {
    const run = await session.client.runs.get(runId);
    if (values.follow === true) {
      return await runToEnd(session, run, { json: values.json === true, local: false, values }, async () => {});
    }
    process.stdout.write(`${values.json === true ? JSON.stringify(run) : describe(run)}\n`);
    return 0;
  } finally {
    await session.close();
  }
}
