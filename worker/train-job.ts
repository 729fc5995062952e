import path from 'node:path';
import type { Redis } from 'ioredis';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { limitImageSet } from '../shared/data/fashion-mnist.ts';
import type { RedisKeys } from '../shared/redis/keys.ts';
import { runFailureOf, type CompiledRunConfig, type RunRecord } from '../shared/run/run-state.ts';
import type { RunStore } from '../shared/run/run-store.ts';
import { StepSampler } from '../shared/run/step-samples.ts';
import type { TrainJobData, TrainJobResult } from '../shared/run/train-job.ts';
import { pruneCheckpoints, restoreNewestCheckpoint, writeCheckpoint } from '../shared/train/checkpoint-store.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { TrainingLoop, type TrainingData, type TrainingHooks } from '../shared/train/training-loop.ts';
import { initialTrainingState, type TrainingState } from '../shared/train/training-state.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';
import { RingMember } from './collective/ring-allreduce.ts';
import { chooseCollective } from './collective-choice.ts';
import { RingCollective } from './ring-collective.ts';
import { joinRendezvous } from './rendezvous.ts';
import type { LivenessBeat } from './liveness/liveness-beat.ts';
import { PeerWatch } from './liveness/peer-watch.ts';
import type { ShardCache } from '../shared/shards/shard-cache.ts';
import type { JobMetrics, WorkerMetrics } from './worker-metrics.ts';
import type { CompiledWorkerOptions } from './worker-options.ts';

/** What a worker process lends to each job it runs. */
export interface JobContext {
  options: CompiledWorkerOptions;
  redis: Redis;
  keys: RedisKeys;
  runs: RunStore;
  shards: ShardCache;
  /** The process's metrics; each job reports its steps and all-reduces there. */
  metrics: WorkerMetrics;
  /** The process's liveness beat; each job beats for its rank. */
  liveness: LivenessBeat;
  /** True once this process was asked to shut down. */
  shutdownRequested(): boolean;
  log: (line: string) => void;
}

async function loadRunData(shards: ShardCache, job: TrainJobData, config: CompiledRunConfig): Promise<TrainingData> {
  const train = await shards.load(job.dataset.train);
  const test = await shards.load(job.dataset.test);
  return {
    train: config.limitTrain ? limitImageSet(train, config.limitTrain) : train,
    test: config.limitTest ? limitImageSet(test, config.limitTest) : test,
  };
}

async function restoreState(model: TrainableModel, checkpointDir: string, log: (line: string) => void): Promise<TrainingState> {
  const restored = await restoreNewestCheckpoint(checkpointDir, model, (error, damaged) =>
    log(`warning: skipping damaged checkpoint ${damaged} (${error.code}: ${error.message})`),
  );
  if (!restored) return initialTrainingState();
  const { state } = restored;
  log(`resuming from ${restored.path} (epoch ${state.epoch + 1}, step ${state.stepInEpoch})`);
  return state;
}

/**
 * One worker's share of one run generation: join the ring, train to the end (or an agreed
 * stop), and leave the run in its final state (rank 0 records it; any rank records a failure).
 */
export async function runTrainJob(job: TrainJobData, ctx: JobContext): Promise<TrainJobResult> {
  const run = await ctx.runs.get(job.runId);
  if (run.generation !== job.generation || (run.state !== 'queued' && run.state !== 'running')) {
    ctx.log(`skipping stale job of ${job.runId} generation ${job.generation} (run is ${run.state}, generation ${run.generation})`);
    return { rank: job.slot, outcome: 'stale', globalStep: 0 };
  }
  const config = run.config;
  const choice = config.backend === 'auto' ? ctx.options.backend : config.backend;
  const threads = config.threads ?? ctx.options.threads;
  const backend = await selectBackend(choice, { threads });
  const data = await loadRunData(ctx.shards, job, config);
  const rank = job.slot;
  const metrics = ctx.metrics.startJob({ runId: job.runId, rank, generation: job.generation, worldSize: job.worldSize, backend: backend.name, threads });
  const ring = await RingMember.start({
    rank,
    worldSize: job.worldSize,
    listenHost: ctx.options.listenHost,
    port: ctx.options.ringPort,
    advertiseHost: ctx.options.advertiseHost,
    authToken: ctx.options.authToken,
    tls: ctx.options.tls,
    timeoutMs: ctx.options.collectiveTimeoutMs,
    onRefused: (reason) => ctx.metrics.refused(reason),
  });
  let model: TrainableModel | undefined;
  let cancelPoll: NodeJS.Timeout | undefined;
  let watch: PeerWatch | undefined;
  try {
    // Beating before joining: once the group is formed, every member's key exists.
    const live = { runId: job.runId, generation: job.generation, rank, timeoutMs: config.heartbeatTimeoutMs };
    await ctx.liveness.assign(ctx.redis, ctx.keys, live);
    const group = await joinRendezvous(ctx.redis, ctx.keys, {
      runId: job.runId,
      generation: job.generation,
      worldSize: job.worldSize,
      address: ring.address,
      host: ctx.options.hostId,
      rank,
      timeoutMs: ctx.options.collectiveTimeoutMs,
    });
    watch = new PeerWatch({ ...live, redis: ctx.redis, keys: ctx.keys, worldSize: job.worldSize });
    if (rank === 0) await ctx.runs.transition(job.runId, 'running', { from: 'queued', generation: job.generation });
    ctx.log(`run ${job.runId} generation ${job.generation}: rank ${rank} of ${job.worldSize} on ${backend.name}`);
    model = createSeededModel(config.model, config.seed);
    const checkpointDir = path.join(ctx.options.checkpointRoot, job.runId);
    const state = await restoreState(model, checkpointDir, ctx.log);
    let cancelled = false;
    cancelPoll = setInterval(
      () =>
        void ctx.runs.isCancelRequested(job.runId).then(
          (c) => (cancelled ||= c),
          () => {},
        ),
      1000,
    );
    cancelPoll.unref();
    const hooks = jobHooks(ctx, run, model, { rank, backend: backend.name, checkpointDir, metrics }, () => cancelled || ctx.shutdownRequested());
    const transport = await chooseCollective(ring, {
      transport: ctx.options.collectiveTransport,
      hosts: group.peers.map((peer) => peer.host),
      addresses: group.addresses,
      rank,
      scope: `${ctx.keys.prefix}/${job.runId}/${job.generation}`,
      weights: model.params.all().reduce((sum, p) => sum + p.variable.size, 0),
      timeoutMs: ctx.options.collectiveTimeoutMs,
    });
    ctx.log(`run ${job.runId} generation ${job.generation}: all-reduce over ${transport.line}`);
    const outcome = await new TrainingLoop(
      model,
      data,
      config,
      new RingCollective(watch.guard(transport.sum), rank, job.worldSize, job, (_, timings) => metrics.allReduce(timings)),
      hooks,
    )
      .run(state)
      .finally(() => transport.close());
    if (rank === 0) await recordOutcome(ctx, job, outcome.kind);
    return { rank, outcome: outcome.kind, globalStep: outcome.state.globalStep };
  } catch (error) {
    // Guarded by the generation: a rank of a generation the coordinator has already restarted
    // (one that was hung, then went on) must not fail the next one.
    const failure = runFailureOf(error, rank);
    await ctx.runs.transition(job.runId, 'failed', { error: `rank ${rank}: ${(error as Error).message}`, failure, generation: job.generation }).catch(() => {});
    throw error;
  } finally {
    clearInterval(cancelPoll);
    watch?.stop();
    model?.dispose();
    await ring.close();
    await ctx.liveness.leave();
  }
}

/** Rank 0 records the end: completed, or (after an agreed stop) cancelled or interrupted. */
async function recordOutcome(ctx: JobContext, job: TrainJobData, kind: 'completed' | 'stopped'): Promise<void> {
  if (kind === 'completed') {
    await ctx.runs.transition(job.runId, 'completed', { from: 'running', generation: job.generation });
    return;
  }
  const cancelled = await ctx.runs.isCancelRequested(job.runId);
  await ctx.runs.transition(job.runId, cancelled ? 'cancelled' : 'interrupted', {
    from: 'running',
    generation: job.generation,
    error: cancelled ? 'cancelled by the user' : 'workers were stopped',
  });
}

/** What the hooks of one job need beside the context. */
interface JobHookSetup {
  rank: number;
  backend: string;
  checkpointDir: string;
  metrics: JobMetrics;
}

function jobHooks(ctx: JobContext, run: RunRecord, model: TrainableModel, setup: JobHookSetup, stop: () => boolean): TrainingHooks {
  const { rank, backend, checkpointDir, metrics } = setup;
  const guard = { generation: run.generation };
  const hooks: TrainingHooks = { stopRequested: stop, onStep: (report) => metrics.step(report) };
  if (rank !== 0) return hooks;
  // One record per step: a step takes far longer than a Redis write, and followers (progress
  // bars, benchmarks, tests) get every step's loss and time split. The report's bounded series
  // gets one sample per window of steps.
  const sampler = new StepSampler(run.config.epochs);
  hooks.onStep = (report) => {
    metrics.step(report);
    const { epoch, step, stepsPerEpoch, loss, examplesPerSec, globalStep, timings } = report;
    const progress = { epoch, step, stepsPerEpoch, loss, examplesPerSec, globalStep, timings };
    void ctx.runs.setProgress(run.id, progress, guard).catch((error: Error) => ctx.log(`progress not recorded: ${error.message}`));
    const sample = sampler.add(report);
    if (sample) void ctx.runs.recordStepSample(run.id, sample, guard).catch((error: Error) => ctx.log(`step sample not recorded: ${error.message}`));
  };
  hooks.onEpoch = async (record) => {
    await ctx.runs.appendEpoch(run.id, { ...record, backend }, guard);
  };
  hooks.saveCheckpoint = async (state) => {
    await writeCheckpoint(checkpointDir, model, run.config.resize, state, run.config);
    await pruneCheckpoints(checkpointDir);
  };
  return hooks;
}
