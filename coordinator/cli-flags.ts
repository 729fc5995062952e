import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ComputeOptions } from '../shared/config/compute-options.ts';
import type { TrainingOptions } from '../shared/config/training-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { parseMetricsPort, type MetricsPort } from '../shared/metrics/metrics-server.ts';
import type { CoordinatorMetricsOptions } from './coordinator-service.ts';

type FlagSpec = NonNullable<ParseArgsConfig['options']>;
export type FlagValues = Record<string, string | boolean | undefined>;

/** Flags that describe the training itself, shared by `train`, `launch` and the worker. */
export const TRAINING_FLAGS = {
  model: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  resize: { type: 'string' },
  seed: { type: 'string' },
  'limit-train': { type: 'string' },
  'limit-test': { type: 'string' },
  'micro-batch': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  nonfinite: { type: 'string' },
  'bucket-mb': { type: 'string' },
  'grad-compression': { type: 'string' },
  'simulate-gpu': { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const satisfies FlagSpec;

/** Flags every command accepts. */
export const COMMON_FLAGS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpec;

/**
 * Parses `argv` strictly against `spec`: an unknown flag, a missing value or a stray positional
 * argument is a ConfigError that names it and the command.
 */
export function parseFlags(command: string, argv: string[], spec: FlagSpec, positionals = 0): { values: FlagValues; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: argv, options: { ...COMMON_FLAGS, ...spec }, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length > positionals) {
      throw new ConfigError(`unexpected argument '${parsed.positionals[positionals]}'`);
    }
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${command}: ${error.message}`, { option: error.option });
    const message = (error as Error).message.split('\n')[0];
    throw new ConfigError(`${command}: ${message} (see 'npm run coordinator -- help')`, { cause: error });
  }
}

/*
 * An empty value (`--limit-train ""`) counts as an absent flag, as an empty REDIS_URL counts as
 * unset: a compose file or script can pass `--limit-train "$LIMIT_TRAIN"` and leave it empty
 * for the default.
 */

/** A flag's value as a number, or undefined when absent or empty; ConfigError when it is not a number. */
export function numberFlag(values: FlagValues, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined || raw === '') return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw new ConfigError(`--${name} expects a number, got '${String(raw)}'`, { option: name });
  return value;
}

/** A string flag's value, or undefined when absent or empty. */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' && raw !== '' ? raw : undefined;
}

/** `--backend` and `--threads`; defaults are filled later by compileComputeOptions. */
export function computeOptionsFromFlags(values: FlagValues): ComputeOptions {
  return { backend: stringFlag(values, 'backend'), threads: numberFlag(values, 'threads') };
}

/** The training options named by TRAINING_FLAGS; defaults are filled later by compileTrainingOptions. */
export function trainingOptionsFromFlags(values: FlagValues): TrainingOptions {
  const simulatedRate = numberFlag(values, 'simulate-gpu');
  return {
    model: stringFlag(values, 'model'),
    epochs: numberFlag(values, 'epochs'),
    batchSize: numberFlag(values, 'batch-size'),
    lr: numberFlag(values, 'lr'),
    resize: numberFlag(values, 'resize'),
    seed: numberFlag(values, 'seed'),
    limitTrain: numberFlag(values, 'limit-train'),
    limitTest: numberFlag(values, 'limit-test'),
    microBatch: numberFlag(values, 'micro-batch'),
    checkpointEvery: numberFlag(values, 'checkpoint-every'),
    nonfinite: stringFlag(values, 'nonfinite'),
    bucketMb: stringFlag(values, 'bucket-mb'),
    gradCompression: stringFlag(values, 'grad-compression'),
    simulateGpu: simulatedRate === undefined ? undefined : { examplesPerSec: simulatedRate },
  };
}

/** Flags of the commands that run the coordinator service: `serve`, and `launch`/`resume` with --local. */
export const METRICS_FLAGS = {
  'metrics-host': { type: 'string' },
  'metrics-port': { type: 'string' },
} as const satisfies FlagSpec;

/** `serve`'s metrics and discovery port (deploy/prometheus/prometheus.yml points at it). */
export const DEFAULT_METRICS_PORT = 9400;

/**
 * Where the coordinator serves /metrics, /healthz and /sd: `--metrics-host` (env
 * COORDINATOR_METRICS_HOST, default 127.0.0.1) and `--metrics-port` (env COORDINATOR_METRICS_PORT,
 * default `fallbackPort`; `auto` a free port, `off` or 0 none: then undefined).
 */
export function metricsOptionsFromFlags(
  values: FlagValues,
  fallbackPort: MetricsPort,
  env: NodeJS.ProcessEnv = process.env,
): CoordinatorMetricsOptions | undefined {
  const port = parseMetricsPort(stringFlag(values, 'metrics-port') ?? env.COORDINATOR_METRICS_PORT, fallbackPort);
  if (port === 'off') return undefined;
  return { host: stringFlag(values, 'metrics-host') ?? env.COORDINATOR_METRICS_HOST ?? '127.0.0.1', port };
}
