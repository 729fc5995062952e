/**
 * When a failed run is restarted by the coordinator service without a person typing `resume`
 * (torchrun's `--max-restarts`): the failure must be one a new generation can cure (a peer that
 * died, hung or dropped its connection; a job whose worker vanished) and the run must have
 * restarts left. A failure that would repeat (a bad config, a corrupt checkpoint or dataset, a
 * bug) is final at once. Pure rules; the restart itself is coordinator/run-recovery.ts.
 */
import type { RunFailure, RunRecord } from './run-state.ts';

/**
 * Failure codes a new generation can cure: each says a process or the link between two went
 * away or stopped answering, not that the work itself is wrong.
 */
export const RECOVERABLE_CODES: ReadonlySet<string> = new Set([
  'COLLECTIVE_PEER_LOST',
  'COLLECTIVE_PEER_HUNG',
  'COLLECTIVE_PEER_ABORTED',
  'COLLECTIVE_TIMEOUT',
  'COLLECTIVE_NOT_CONNECTED',
  'COLLECTIVE_TRANSPORT',
  'COLLECTIVE_CLOSED',
  // The coordinator saw the job fail without its worker recording why: a stalled job, whose process died.
  'RUN_JOB_FAILED',
  // Every rank of a running run stopped beating (all processes killed at once): coordinator/run-recovery.ts.
  'RUN_WORKERS_LOST',
  // Not every worker came: one was lost between generations and may be back (a supervisor restarts it).
  'RUN_RENDEZVOUS_TIMEOUT',
]);

/** True when the failure is one a restart can cure (see {@link RECOVERABLE_CODES}). */
export function isRecoverable(failure: RunFailure | undefined): failure is RunFailure {
  return failure !== undefined && RECOVERABLE_CODES.has(failure.code);
}

/**
 * True when the coordinator service will restart this run: it failed with a recoverable cause
 * and has restarts left. Followers keep following such a run rather than report it failed.
 */
export function restartDue(run: RunRecord): boolean {
  return run.state === 'failed' && isRecoverable(run.failure) && run.restarts.length < run.config.maxRestarts;
}

/** The first restart waits this long after the failure; each next one twice as long as the one before. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

/**
 * How long after the failure the coordinator waits before restart number `restartsSoFar + 1`:
 * 0 for the first (a dead worker is the common case and its replacement is ready), then 2 s,
 * 4 s, ... up to a minute, so that a cause that keeps coming back (a worker that dies at
 * start-up, a host going up and down) does not spin through the restarts in seconds.
 */
export function restartBackoffMs(restartsSoFar: number): number {
  if (restartsSoFar === 0) return 0;
  return Math.min(FIRST_BACKOFF_MS * 2 ** restartsSoFar, MAX_BACKOFF_MS);
}
