/**
 * What a training run is: its config, its lifecycle states and the legal moves between them,
 * its history and progress records, and its id. Pure data and rules; storage is run-store.ts.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError, RunError } from '../errors.ts';
import type { EpochRecord } from '../train/training-state.ts';
import { compileTrainingOptions, type CompiledTrainingOptions, type TrainingOptions } from '../config/training-options.ts';

/**
 * The hyper-parameters and deployment of one run, fixed when it is created: the same training
 * options as `coordinator train` (validated by the same compileTrainingOptions) plus the
 * deployment fields.
 */
export interface RunConfig extends TrainingOptions {
  /** Number of data-parallel workers (ring size), >= 1. */
  workers: number;
  /** TensorFlow.js backend the workers ask for (see shared/backend/select-backend.ts). */
  backend: string;
  /** Threads per worker for backends that take a count. @default backend's own */
  threads?: number;
}

/** A validated run config, every training default filled in. */
export type CompiledRunConfig = CompiledTrainingOptions & { workers: number; backend: string; threads?: number };

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

/** Everything known about one run. */
export interface RunRecord {
  id: string;
  config: CompiledRunConfig;
  state: RunState;
  /** Incremented on each resume (and on each ring restart); workers of older generations are ignored. Starts at 0. */
  generation: number;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch, of the last change of any kind. */
  updatedAt: number;
  /** Why the run failed or was interrupted, when it was. */
  error?: string;
  /** Latest progress, once a worker reported one. */
  progress?: RunProgress;
  /** Finished epochs in epoch order. */
  history: EpochEntry[];
  /** True once a cancel was requested and until the run is resumed. */
  cancelRequested: boolean;
}

const DEPLOYMENT_KEYS = ['workers', 'backend', 'threads'] as const;
const KNOWN_KEYS = new Set<string>([...DEPLOYMENT_KEYS, 'model', 'epochs', 'batchSize', 'lr', 'resize', 'seed', 'limitTrain', 'limitTest', 'microBatch', 'checkpointEvery']);

/**
 * Checks a run config and returns it compiled (defaults filled, only known keys). Throws
 * ConfigError naming the first bad or unknown key.
 */
export function validateRunConfig(config: RunConfig): CompiledRunConfig {
  const unknown = Object.keys(config).filter((key) => !KNOWN_KEYS.has(key));
  if (unknown.length > 0) throw new ConfigError(`unknown run config key(s): ${unknown.join(', ')}`);
  requirePositiveInteger('workers', config.workers);
  if (config.threads !== undefined) requirePositiveInteger('threads', config.threads);
  if (typeof config.backend !== 'string' || config.backend === '') throw new ConfigError('backend must be a non-empty string');
  const compiled: CompiledRunConfig = { ...compileTrainingOptions(config), workers: config.workers, backend: config.backend };
  if (config.threads !== undefined) compiled.threads = config.threads;
  return JSON.parse(JSON.stringify(compiled)) as CompiledRunConfig;
}

function requirePositiveInteger(key: string, value: unknown): void {
  if (!(Number.isSafeInteger(value) && (value as number) >= 1)) {
    throw new ConfigError(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
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
  | { type: 'state'; from: RunState; to: RunState; generation: number; error?: string }
  | { type: 'progress'; progress: RunProgress }
  | { type: 'epoch'; entry: EpochEntry }
  | { type: 'cancel-requested' }
  | { type: 'generation'; generation: number };

/** One event of a run's stream. */
export type RunEvent = RunEventBody & {
  /** Stream entry id (`<ms>-<seq>`); pass it back as `after` to read on from here. */
  id: string;
  /** When it happened, in ms since the epoch. */
  at: number;
};
