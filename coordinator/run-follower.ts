import { restartDue } from '../shared/run/restart-policy.ts';
import { isStoppedState, type EpochEntry, type RunProgress, type RunRecord, type RunRestart } from '../shared/run/run-state.ts';
import type { RunStore } from '../shared/run/run-store.ts';

export interface FollowHandlers {
  onEpoch?(entry: EpochEntry, run: RunRecord): void;
  onProgress?(progress: RunProgress, run: RunRecord): void;
  /** The coordinator service restarted the run (a new generation). */
  onRestart?(restart: RunRestart, run: RunRecord): void;
}

/** Stopped for good: a failure the coordinator service will restart is not an end. */
function isFinal(run: RunRecord): boolean {
  return isStoppedState(run.state) && !restartDue(run);
}

/**
 * Follows a run until it reaches a stopped state in its current generation that no automatic
 * restart will leave (or `signal` aborts), and resolves to its final record. Each epoch is
 * reported once: first the history already recorded, then epochs as they finish (a resumed run
 * re-running an epoch is not shown twice).
 */
export async function followRun(runs: RunStore, runId: string, handlers: FollowHandlers, signal?: AbortSignal): Promise<RunRecord> {
  let run = await runs.get(runId);
  const shown = new Set<number>();
  const showEpoch = (entry: EpochEntry) => {
    if (shown.has(entry.epoch)) return;
    shown.add(entry.epoch);
    handlers.onEpoch?.(entry, run);
  };
  run.history.forEach(showEpoch);
  if (isFinal(run)) return run;
  for await (const event of runs.tailEvents(runId, { after: '0-0', blockMs: 1000, signal })) {
    if (event.type === 'epoch') showEpoch(event.entry);
    else if (event.type === 'progress') handlers.onProgress?.(event.progress, run);
    else if (event.type === 'state' && event.generation >= run.generation) {
      run = await runs.get(runId);
      if (event.restart) handlers.onRestart?.(event.restart, run);
      if (isFinal(run)) return run;
    }
  }
  return runs.get(runId);
}
