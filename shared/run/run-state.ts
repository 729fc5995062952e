/**
 * What a training run is: its config, its lifecycle states and the legal moves between them,
 * its history and progress records, and its id. Pure data and rules; storage is run-store.ts.
 */
import { randomBytes } from 'node:crypto';
import { CheckpointError, CollectiveError, ConfigError, FmnistError, NonFiniteGradientError, RunError } from '../errors.ts';
import type { EpochRecord } from '../train/training-state.ts';
import { compileTrainingOptions, type CompiledTrainingOptions, type TrainingOptions } from '../config/training-options.ts';
import { compileComputeOptions, type BackendChoice } from '../config/compute-options.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS } from './liveness.ts';

/**
 * The hyper-parameters and deployment of one run, fixed when it is created: the same training
 * options as `coordinator train` (validated by the same compileTrainingOptions) plus the
 * deployment fields.
 */
export interface RunConfig extends TrainingOptions {
  /** Number of data-parallel workers (ring size), >= 1. */
  workers: number;
  /**
   * TensorFlow.js backend the workers ask for, a BackendChoice (shared/config/compute-options.ts);
   * `auto` (or empty) lets each worker take its own `--backend`, else the fastest it has.
   */
  backend: string;
  /** Threads per worker for backends that take a count. @default backend's own */
  threads?: number;
  /**
   * How many times the coordinator service restarts the run by itself (a new generation from
   * the newest checkpoint) after a recoverable failure (shared/run/restart-policy.ts); 0: never,
   * a failure waits for `coordinator resume`. @default 3
   */
  maxRestarts?: number;
  /**
   * How long a rank may send no liveness beat (shared/run/liveness.ts) before its peers
   * abandon the step with COLLECTIVE_PEER_HUNG, in ms; from 1 s to 1 day. @default 30000
   */
  heartbeatTimeoutMs?: number;
}

/** {@link RunConfig.maxRestarts}'s default; torchrun's `--max-restarts` is 0 by default, but a run here is long and a lost worker common. */
export const DEFAULT_MAX_RESTARTS = 3;

/** A validated run config, every training default filled in. */
export type CompiledRunConfig = CompiledTrainingOptions & {
  workers: number;
  backend: BackendChoice;
  threads?: number;
  maxRestarts: number;
  heartbeatTimeoutMs: number;
};

/**
 * Lifecycle of a run. `interrupted` means the workers died or the coordinator was stopped; like
 * `failed` and `cancelled` it can be resumed, which puts the run back to `queued`.
 */
export type RunState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'interrupted';

/** Every state, in lifecycle order. */
export const RUN_STATES: readonly RunState[] = ['queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted'];

/**
 * The legal moves, from -> allowed targets. Beyond the main line, a queued run may be cancelled
 * or fail before it starts (e.g. its dataset is missing), and an interrupted run may be cancelled.
 */
export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  queued: ['running', 'cancelled', 'failed'],
  running: ['completed', 'failed', 'cancelled', 'interrupted'],
  completed: [],
  failed: ['queued'],
  cancelled: ['queued'],
  interrupted: ['queued', 'cancelled'],
};

/** States in which no worker trains the run (following its events can stop there). */
export function isStoppedState(state: RunState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled' || state === 'interrupted';
}

/** True when `from -> to` is a legal move. */
export function canTransition(from: RunState, to: RunState): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** The states from which `to` can be reached. */
export function sourcesOf(to: RunState): RunState[] {
  return RUN_STATES.filter((from) => canTransition(from, to));
}

/** Throws RunError('RUN_BAD_TRANSITION') unless `from -> to` is legal. */
export function assertTransition(runId: string, from: RunState, to: RunState): void {
  if (!canTransition(from, to)) {
    throw new RunError('RUN_BAD_TRANSITION', `run ${runId} is ${from} and cannot become ${to}`);
  }
}

/** Throws ConfigError('CONFIG_INVALID') unless `value` names a state. */
export function parseRunState(value: string): RunState {
  if (!(RUN_STATES as readonly string[]).includes(value)) throw new ConfigError(`unknown run state ${JSON.stringify(value)}`);
  return value as RunState;
}

/** One finished epoch: the training loop's record plus the backend the workers trained on. */
export type EpochEntry = EpochRecord & { backend?: string };

/** Where a running run is now. */
export interface RunProgress {
  /** Current epoch, from 1. */
  epoch: number;
  /** Steps done in the current epoch. */
  step: number;
  /** Steps in one epoch. */
  stepsPerEpoch: number;
  /** Loss of the latest step (or a running mean; the writer decides). */
  loss: number;
  /** Recent throughput over all workers, in examples per second. */
  examplesPerSec: number;
  /** Optimiser steps since the run started. */
  globalStep?: number;
  /** Where rank 0's last step spent its time, in ms. */
  timings?: { dataMs: number; computeMs: number; allReduceMs: number; updateMs: number };
  /** When this record was written, in ms since the epoch. */
  updatedAt: number;
}

/**
 * Why a run failed, in fields a program can match on; the run's `error` text says the same for
 * people and may change.
 */
export interface RunFailure {
  /**
   * Stable code of the error that failed the run: a worker's typed error (e.g.
   * 'COLLECTIVE_PEER_LOST'), 'UNEXPECTED' for one without a code, or 'RUN_JOB_FAILED' when the
   * coordinator saw a job fail without its worker recording why (e.g. a stalled job).
   */
  code: string;
  /** The rank (job slot) whose failure this is, when one is known. */
  rank?: number;
  /** The rank of the peer the failure is about (e.g. the neighbour that was lost), when there is one. */
  peerRank?: number;
  /** GRADIENT_NONFINITE: the step whose summed gradient was not finite (StepReport.globalStep). */
  globalStep?: number;
  /** GRADIENT_NONFINITE: the ranks whose own gradient was not finite (empty: the sum overflowed). */
  nonfiniteRanks?: number[];
  /** CHECKPOINT_WRITE_FAILED: the system error of the write, e.g. ENOSPC (a full disk). */
  errno?: string;
}

/** The failure a worker of rank `rank` records for `error`. */
export function runFailureOf(error: unknown, rank?: number): RunFailure {
  const failure: RunFailure = { code: error instanceof FmnistError ? error.code : 'UNEXPECTED' };
  if (rank !== undefined) failure.rank = rank;
  if (error instanceof CollectiveError && error.peerRank !== undefined) failure.peerRank = error.peerRank;
  if (error instanceof NonFiniteGradientError) {
    failure.globalStep = error.globalStep;
    failure.nonfiniteRanks = [...error.ranks];
  }
  if (error instanceof CheckpointError && error.errno !== undefined) failure.errno = error.errno;
  return failure;
}

/** One automatic restart of a run by the coordinator service (shared/run/restart-policy.ts). */
export interface RunRestart {
  /** The generation the restart started (the failed one was `generation - 1`). */
  generation: number;
  /** When the coordinator restarted it, in ms since the epoch. */
  at: number;
  /** The failure of the previous generation that caused it. */
  cause: RunFailure;
}

/** Everything known about one run. */
export interface RunRecord {
  id: string;
  config: CompiledRunConfig;
  state: RunState;
  /** Incremented on each resume; workers of older generations are ignored. Starts at 0. */
  generation: number;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch, of the last change of any kind. */
  updatedAt: number;
  /** Why the run failed or was interrupted, when it was, for people. */
  error?: string;
  /** Why the run failed, as typed fields, when the process that failed it said (cleared on resume). */
  failure?: RunFailure;
  /** Latest progress, once a worker reported one. */
  progress?: RunProgress;
  /** Automatic restarts, oldest first (a `resume` by a person is not one); kept for the run's life. */
  restarts: RunRestart[];
  /** Finished epochs in epoch order. */
  history: EpochEntry[];
  /** True once a cancel was requested and until the run is resumed. */
  cancelRequested: boolean;
}

const DEPLOYMENT_KEYS = ['workers', 'backend', 'threads', 'maxRestarts', 'heartbeatTimeoutMs'] as const;
const KNOWN_KEYS = new Set<string>([
  ...DEPLOYMENT_KEYS,
  'model',
  'epochs',
  'batchSize',
  'lr',
  'resize',
  'seed',
  'limitTrain',
  'limitTest',
  'microBatch',
  'checkpointEvery',
  'nonfinite',
  'bucketMb',
  'gradCompression',
  'simulateGpu',
]);

/** Most automatic restarts a run may ask for: a run that fails this often has a cause no restart cures. */
const MAX_MAX_RESTARTS = 100;
/** Heartbeat timeouts accepted, in ms: below 1 s a loaded machine's Redis round trips fail healthy ranks. */
const HEARTBEAT_TIMEOUT_RANGE_MS = [1_000, 86_400_000] as const;

/** `value` (or `fallback` when undefined), checked to be an integer in [min, max]; ConfigError naming `option` otherwise. */
function integerIn(option: string, value: number | undefined, fallback: number, [min, max]: readonly [number, number]): number {
  const chosen = value ?? fallback;
  if (!(Number.isSafeInteger(chosen) && chosen >= min && chosen <= max)) {
    throw new ConfigError(`${option} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, { option });
  }
  return chosen;
}

/** The fields of automatic recovery: restarts and liveness. */
function compileRecovery(config: RunConfig): Pick<CompiledRunConfig, 'maxRestarts' | 'heartbeatTimeoutMs'> {
  return {
    maxRestarts: integerIn('max-restarts', config.maxRestarts, DEFAULT_MAX_RESTARTS, [0, MAX_MAX_RESTARTS]),
    heartbeatTimeoutMs: integerIn('heartbeat-timeout', config.heartbeatTimeoutMs, DEFAULT_HEARTBEAT_TIMEOUT_MS, HEARTBEAT_TIMEOUT_RANGE_MS),
  };
}

/**
 * Checks a run config and returns it compiled (defaults filled, only known keys), with the same
 * checks as `coordinator train` (compileTrainingOptions, compileComputeOptions). Throws
 * ConfigError naming the first bad or unknown key.
 */
export function validateRunConfig(config: RunConfig): CompiledRunConfig {
  const unknown = Object.keys(config).filter((key) => !KNOWN_KEYS.has(key));
  if (unknown.length > 0) throw new ConfigError(`unknown run config key(s): ${unknown.join(', ')}`, { option: unknown[0] });
  if (!(Number.isSafeInteger(config.workers) && config.workers >= 1)) {
    throw new ConfigError(`workers must be a positive integer, got ${JSON.stringify(config.workers)}`, { option: 'workers' });
  }
  // The run's own values only: the environment of whoever stores the run is no default here.
  const compute = compileComputeOptions({ backend: config.backend, threads: config.threads }, {});
  const compiled: CompiledRunConfig = { ...compileTrainingOptions(config), workers: config.workers, backend: compute.backend, ...compileRecovery(config) };
  if (compute.threads !== undefined) compiled.threads = compute.threads;
  return JSON.parse(JSON.stringify(compiled)) as CompiledRunConfig;
}

/**
 * A new run id: `run-YYYYMMDD-HHMMSS-xxxx` in UTC with 4 random hex digits. Ids sort by creation
 * second; the store rejects the rare collision and asks for another.
 */
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString();
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `run-${date}-${time}-${randomBytes(2).toString('hex')}`;
}

/**
 * A run id chosen by the user (`launch --run-id`): 1 to 64 letters, digits, '_' or '-', starting
 * with a letter or digit. The id names Redis keys, BullMQ job ids (`<run>.g<G>.s<slot>`) and the
 * checkpoint folder, so dots, slashes and spaces are refused. Throws ConfigError otherwise.
 */
export function validateRunId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) {
    throw new ConfigError(`run id must be 1 to 64 letters, digits, '_' or '-', starting with a letter or digit; got ${JSON.stringify(id)}`);
  }
  return id;
}

/** What happened to a run, as written to its event stream. */
export type RunEventBody =
  | { type: 'created'; config: RunConfig }
  | { type: 'state'; from: RunState; to: RunState; generation: number; error?: string; failure?: RunFailure; restart?: RunRestart }
  | { type: 'progress'; progress: RunProgress }
  | { type: 'epoch'; entry: EpochEntry }
  | { type: 'cancel-requested' };

/** One event of a run's stream. */
export type RunEvent = RunEventBody & {
  /** Stream entry id (`<ms>-<seq>`); pass it back as `after` to read on from here. */
  id: string;
  /** When it happened, in ms since the epoch. */
  at: number;
};
