/**
 * Which TensorFlow.js backend a process trains on and with how many threads: `--backend` and
 * `--threads` of `train`, `launch` (stored in the run's config) and the worker. Parsed and
 * checked here once, so every command refuses the same bad value with the same ConfigError
 * before it does anything else.
 */
import { ConfigError } from '../errors.ts';

/** The backends, `auto` first; select-backend.ts says in which order `auto` tries the others. */
export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'onednn', 'wasm', 'cpu'] as const;

/** A backend the user may ask for; `auto` means the fastest one that starts here. */
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** A concrete backend: every choice but `auto`. */
export type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

/** What a command was given. */
export interface ComputeOptions {
  /** A {@link BackendChoice}; undefined or empty means `auto`. @default env.TRAIN_BACKEND ?? 'auto' */
  backend?: string;
  /** OpenMP threads of the onednn backend (wasm under Node ignores it). @default the backend's own */
  threads?: number;
}

export interface CompiledComputeOptions {
  backend: BackendChoice;
  threads: number | undefined;
}

/**
 * Parses a `--backend` flag or environment value. Undefined or empty means `auto`.
 * @throws ConfigError (option `backend`) for anything that is not a {@link BackendChoice}.
 */
export function parseBackendChoice(value: string | undefined): BackendChoice {
  if (value === undefined || value.trim() === '') return 'auto';
  const choice = BACKEND_CHOICES.find((name) => name === value.trim());
  if (choice === undefined) {
    throw new ConfigError(`unknown backend "${value}": use one of ${BACKEND_CHOICES.join(', ')}`, { option: 'backend' });
  }
  return choice;
}

/** Fills the defaults (from `env`) and checks both values; ConfigError naming the bad option. */
export function compileComputeOptions(options: ComputeOptions, env: NodeJS.ProcessEnv = process.env): CompiledComputeOptions {
  const { threads } = options;
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1)) {
    throw new ConfigError(`threads must be a positive integer, got ${threads}`, { option: 'threads' });
  }
  return { backend: parseBackendChoice(options.backend ?? env.TRAIN_BACKEND), threads };
}
