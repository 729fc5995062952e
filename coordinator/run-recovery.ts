/**
 * The coordinator service's automatic restarts: a run that failed with a recoverable cause and
 * has restarts left (shared/run/restart-policy.ts) goes to generation G+1 by itself, exactly as
 * `coordinator resume` would take it there (its workers continue from the newest complete
 * checkpoint), with the cause appended to the run's `restarts`. Idle workers, and the survivors
 * of generation G once their jobs have failed, take the new generation's jobs.
 */
import { RunError } from '../shared/errors.ts';
import { silentRanks } from '../shared/run/liveness.ts';
import { restartBackoffMs, restartDue } from '../shared/run/restart-policy.ts';
import type { RunRecord } from '../shared/run/run-state.ts';
import type { DatasetVersions } from '../shared/run/train-job.ts';
import type { ClusterClient } from './cluster-client.ts';
import { describeFailure } from './run-failure-text.ts';

export interface RunRecoveryOptions {
  /** How often every failed run is looked at, in ms (a failure seen by no job event, a service started after it). @default 2000 */
  sweepMs?: number;
  /**
   * Also fail (and so restart) a `running` run none of whose ranks has beaten for a whole
   * heartbeat timeout: every process was killed at once, no survivor recorded a failure
   * (`serve --no-resume-lost`: false). @default true
   */
  resumeLost?: boolean;
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
  /** Running runs whose every rank was silent at the last sweep: `<run>.g<G>` -> when first seen so (performance.now()). */
  private readonly silentSince = new Map<string, number>();
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
      if (summary.state === 'running' && this.options.resumeLost !== false) await this.checkLost(summary.id);
      else if (summary.state === 'failed' && this.settled.get(summary.id) !== summary.updatedAt) await this.consider(summary.id);
    }
  }

  /**
   * A running run whose ranks have all been silent (shared/run/liveness.ts) for a whole
   * heartbeat timeout, as this service saw it, lost every worker: it fails with
   * RUN_WORKERS_LOST, which restarts it. A timeout of silence, not one missing read: after
   * Redis itself was down, keys may be gone only until their ranks beat again.
   */
  private async checkLost(runId: string): Promise<void> {
    const run = await this.client.runs.get(runId);
    const ranks = Array.from({ length: run.config.workers }, (_, r) => r);
    const silent = await silentRanks(this.client.redis, this.client.keys, run.id, run.generation, ranks);
    const key = `${run.id}.g${run.generation}`;
    if (silent.length < ranks.length) {
      this.silentSince.delete(key);
      return;
    }
    const since = this.silentSince.get(key) ?? performance.now();
    this.silentSince.set(key, since);
    if (performance.now() - since < run.config.heartbeatTimeoutMs) return;
    this.silentSince.delete(key);
    const failure = { code: 'RUN_WORKERS_LOST' };
    const error = `no rank of generation ${run.generation} beat for ${run.config.heartbeatTimeoutMs} ms: its workers are gone`;
    try {
      await this.client.runs.transition(run.id, 'failed', { from: 'running', generation: run.generation, error, failure });
    } catch (error) {
      if (lostTheRace(error)) return;
      throw error;
    }
    this.log(`run ${run.id}: ${error}`);
    await this.consider(run.id);
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
    // Backing off: a later sweep restarts it (the run is not settled).
    if (Date.now() - run.updatedAt < restartBackoffMs(run.restarts.length)) return undefined;
    try {
      return await this.restart(run);
    } catch (error) {
      if (lostTheRace(error)) return undefined;
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

/** Another coordinator, a `resume` or a worker moved the run first: its move stands. */
function lostTheRace(error: unknown): boolean {
  return error instanceof RunError && (error.code === 'RUN_BAD_TRANSITION' || error.code === 'RUN_STALE_GENERATION');
}
