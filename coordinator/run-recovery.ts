/**
 * The coordinator service's automatic restarts: a run that failed with a recoverable cause and
 * has restarts left (shared/run/restart-policy.ts) goes to generation G+1 by itself, exactly as
 * `coordinator resume` would take it there (its workers continue from the newest complete
 * checkpoint), with the cause appended to the run's `restarts`. Idle workers, and the survivors
 * of generation G once their jobs have failed, take the new generation's jobs.
 */
import { RunError } from '../shared/errors.ts';
import { restartDue } from '../shared/run/restart-policy.ts';
import type { RunRecord } from '../shared/run/run-state.ts';
import type { DatasetVersions } from '../shared/run/train-job.ts';
import type { ClusterClient } from './cluster-client.ts';
import { describeFailure } from './run-failure-text.ts';

export interface RunRecoveryOptions {
  /** How often every failed run is looked at, in ms (a failure seen by no job event, a service started after it). @default 2000 */
  sweepMs?: number;
  log?: (line: string) => void;
}

export type RunRecoveryState = 'idle' | 'watching' | 'closed';

/** Watches the failed runs of one cluster and restarts those that are due; owned by CoordinatorService. */
export class RunRecovery {
  state: RunRecoveryState = 'idle';
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  /** Failed runs judged final, by the `updatedAt` they were judged at: a sweep skips them until they change. */
  private readonly settled = new Map<string, number>();
  private readonly log: (line: string) => void;

  constructor(
    private readonly client: ClusterClient,
    private readonly dataset: DatasetVersions,
    private readonly options: RunRecoveryOptions = {},
  ) {
    this.log = options.log ?? (() => {});
  }

  /** Looks at every failed run now, then every `sweepMs`. */
  start(): void {
    this.state = 'watching';
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.options.sweepMs ?? 2_000);
    this.timer.unref();
  }

  /** One pass over the failed runs; a pass still under way is not doubled. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce()
      .catch((error: unknown) => this.log(`restart sweep: ${(error as Error).message}`))
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    for (const summary of await this.client.runs.summaries()) {
      if (this.state === 'closed') return;
      if (summary.state !== 'failed' || this.settled.get(summary.id) === summary.updatedAt) continue;
      await this.consider(summary.id);
    }
  }

  /**
   * Restarts the run when it is due (see restartDue); resolves to the restarted record, or
   * undefined when nothing was done (not due, or another process moved the run first).
   */
  async consider(runId: string): Promise<RunRecord | undefined> {
    const run = await this.client.runs.get(runId);
    if (!restartDue(run)) {
      if (run.state === 'failed') this.settled.set(run.id, run.updatedAt);
      return undefined;
    }
    try {
      return await this.restart(run);
    } catch (error) {
      // Another coordinator, a `resume` or a late worker moved the run first: its move stands.
      if (error instanceof RunError && (error.code === 'RUN_BAD_TRANSITION' || error.code === 'RUN_STALE_GENERATION')) return undefined;
      throw error;
    }
  }

  private async restart(run: RunRecord): Promise<RunRecord> {
    const cause = run.failure!;
    const restarted = await this.client.runs.transition(run.id, 'queued', { from: 'failed', generation: run.generation, restartCause: cause });
    await this.client.queue.enqueueGeneration(restarted, this.dataset);
    this.log(
      `run ${run.id}: restart ${restarted.restarts.length} of ${run.config.maxRestarts} as generation ${restarted.generation} after ${describeFailure(cause)}`,
    );
    return restarted;
  }

  close(): Promise<void> {
    this.state = 'closed';
    clearInterval(this.timer);
    return this.sweeping ?? Promise.resolve();
  }
}
