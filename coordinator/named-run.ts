/**
 * `launch --run-id NAME`: a run the user names, created once. Submitting it again is not a
 * second run, as adding a BullMQ job with a custom `jobId` that exists is a no-op and as torchrun
 * agents restarted with the same `--rdzv-id` rejoin the same job. That is what lets
 * `docker compose up` launch the `.env` run every time the stack starts: the first start creates
 * it, a restart finds it (and, with `--if-exists resume`, resumes it when the stop interrupted it).
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, RunError } from '../shared/errors.ts';
import { validateRunConfig, type RunConfig, type RunRecord, type RunState } from '../shared/run/run-state.ts';
import type { RunStore } from '../shared/run/run-store.ts';

/**
 * What to do when the named run exists: `fail` (RunError RUN_EXISTS), `attach` (leave it as it
 * is), `resume` (as attach, but a failed or interrupted run is resumed first; a cancelled run
 * stays cancelled, because someone decided to stop it, and a completed one is done).
 */
export type IfExists = 'fail' | 'attach' | 'resume';

export const IF_EXISTS_CHOICES: readonly IfExists[] = ['fail', 'attach', 'resume'];

/** What {@link ensureNamedRun} did. */
export type NamedRunAction = 'created' | 'attached' | 'resumed';

export interface NamedRunOutcome {
  /** The run as it is now. */
  run: RunRecord;
  action: NamedRunAction;
}

/** States `--if-exists resume` resumes: the run stopped without anyone deciding it should. */
const RESUMED_STATES: readonly RunState[] = ['failed', 'interrupted'];

/** Parses `--if-exists`; ConfigError for anything else. */
export function parseIfExists(value: string): IfExists {
  if (!(IF_EXISTS_CHOICES as readonly string[]).includes(value)) {
    throw new ConfigError(`--if-exists must be one of ${IF_EXISTS_CHOICES.join(', ')}, got '${value}'`, { option: 'if-exists' });
  }
  return value as IfExists;
}

/**
 * Creates run `id` with `config`, or applies `ifExists` to the run of that id. Throws RunError
 * RUN_EXISTS (`fail`), RUN_CONFIG_MISMATCH when the existing run was created with another config
 * (a changed `.env` needs a new run id: a run's config is fixed), and ConfigError for a bad id or
 * config. Safe when several launchers race: one creates or resumes, the others attach.
 */
export async function ensureNamedRun(runs: RunStore, id: string, config: RunConfig, ifExists: IfExists): Promise<NamedRunOutcome> {
  const wanted = validateRunConfig(config);
  try {
    return { run: await runs.create(wanted, { id }), action: 'created' };
  } catch (error) {
    if (!(error instanceof RunError && error.code === 'RUN_EXISTS') || ifExists === 'fail') throw error;
  }
  const existing = await runs.get(id);
  assertSameConfig(existing, wanted);
  if (ifExists === 'resume' && RESUMED_STATES.includes(existing.state)) {
    try {
      return { run: await runs.transition(id, 'queued', { from: existing.state }), action: 'resumed' };
    } catch (error) {
      // Another launcher resumed it first (or a worker moved it): attach to what it is now.
      if (!(error instanceof RunError && error.code === 'RUN_BAD_TRANSITION')) throw error;
    }
  }
  return { run: await runs.get(id), action: 'attached' };
}

function assertSameConfig(run: RunRecord, wanted: RunRecord['config']): void {
  // Compiled again, so that a run stored before a config field existed gets that field's default
  // (e.g. `nonfinite`) and compares equal to the same flags given today.
  const stored = validateRunConfig(run.config);
  if (isDeepStrictEqual(stored, wanted)) return;
  const keys = [...new Set([...Object.keys(stored), ...Object.keys(wanted)])];
  const differing = keys.filter((key) => !isDeepStrictEqual(stored[key as keyof typeof wanted], wanted[key as keyof typeof wanted]));
  throw new RunError('RUN_CONFIG_MISMATCH', `run ${run.id} exists with another config (${differing.join(', ')} differ); choose another run id for a new run`);
}
