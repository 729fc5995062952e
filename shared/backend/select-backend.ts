/**
 * Chooses and starts the TensorFlow.js backend for a process. `auto` takes the fastest one that
 * both loads and initialises here; an explicit choice either starts or fails with a
 * BackendError that says why.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BackendChoice, ConcreteBackend } from '../config/compute-options.ts';
import { BackendError } from '../errors.ts';
import { registerWasmTrainingKernels } from './wasm-kernels/index.ts';

/** The order `auto` tries, fastest first. */
export const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'onednn', 'wasm', 'cpu'];

/**
 * Why a backend could not be used: its package, module or addon is not there, it is there but
 * does not load, TensorFlow.js could not initialise it, or something else went wrong.
 */
export type BackendUnavailableCode = 'BACKEND_MISSING' | 'BACKEND_LOAD_FAILED' | 'BACKEND_INIT_FAILED' | 'UNEXPECTED';

/** One backend that was tried: for one that could not be used, `code` and `error` say why. */
export interface BackendAttempt {
  name: ConcreteBackend;
  code?: BackendUnavailableCode;
  /** The reason, for people. */
  error?: string;
}

/** What `selectBackend` started. */
export interface BackendSelection {
  /** The choice that is now running (`tf.getBackend()` may differ in spelling: see `tfName`). */
  name: ConcreteBackend;
  /** The name TensorFlow.js knows it by: both TensorFlow builds register as `tensorflow`. */
  tfName: string;
  /** Every backend tried, in order; the last one is the one chosen. */
  tried: BackendAttempt[];
  /** One line for the log: threads, SIMD, build (e.g. `wasm: SIMD build, 1 thread ...`). */
  detail: string;
  /** Compute threads the backend uses, when it says (wasm, cpu) or was told (onednn). */
  threads?: number;
}

/** Options for {@link selectBackend}. */
export interface BackendOptions {
  /**
   * Compute threads, for the backends that take a number: onednn (OpenMP) and wasm (XNNPACK,
   * which only honours it in the threaded build, never used under Node). Default: the
   * backend's own (one per core for onednn).
   */
  threads?: number;
}

/** Raised inside a loader; becomes the attempt's `code` and `error`. */
class Unavailable extends Error {
  constructor(
    readonly code: BackendUnavailableCode,
    message: string,
  ) {
    super(message);
  }
}

/** Starts `name` or throws Unavailable; resolves to the TensorFlow.js name, a log line and its threads. */
type Loader = (options: BackendOptions) => Promise<{ tfName: string; detail: string; threads?: number }>;

/** `tf.setBackend`, which resolves false (after logging a warning) when a factory fails. */
async function activate(tfName: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
  } catch (error) {
    throw new Unavailable('BACKEND_INIT_FAILED', `tf.setBackend('${tfName}') failed: ${message(error)}`);
  }
  if (!ok) throw new Unavailable('BACKEND_INIT_FAILED', `tf.setBackend('${tfName}') resolved false: the backend did not initialise`);
}

/**
 * tfjs-node and tfjs-node-gpu are optional dependencies: importing one registers the native
 * TensorFlow backend under the name `tensorflow`. The specifier is a variable so that the type
 * checker does not require the package.
 */
function tensorflowLoader(packageName: string): Loader {
  return async () => {
    try {
      await import(packageName);
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
      throw new Unavailable(missing ? 'BACKEND_MISSING' : 'BACKEND_LOAD_FAILED', `${packageName} is not installed or does not load: ${firstLine(error)}`);
    }
    await activate('tensorflow');
    return { tfName: 'tensorflow', detail: `tensorflow: ${packageName} (libtensorflow)` };
  };
}

/** The onednn backend lives in ./onednn/register.ts; a missing module or addon is "unavailable". */
const loadOnednn: Loader = async (options) => {
  // Loaded by URL so that a missing addon or module is an answer here, not an import error at start-up.
  let module: {
    registerOnednnBackend?: (options: { threads?: number }) => Promise<boolean>;
    onednnUnavailableReason?: () => string;
    onednnUnavailableCode?: () => string;
  };
  try {
    module = (await import(new URL('./onednn/register.ts', import.meta.url).href)) as typeof module;
  } catch (error) {
    throw new Unavailable('BACKEND_LOAD_FAILED', `shared/backend/onednn/register.ts does not load: ${firstLine(error)}`);
  }
  if (typeof module.registerOnednnBackend !== 'function') {
    throw new Unavailable('BACKEND_LOAD_FAILED', 'shared/backend/onednn/register.ts has no registerOnednnBackend');
  }
  const registered: unknown = await module.registerOnednnBackend({ threads: options.threads });
  if (registered !== true) {
    const reason = typeof module.onednnUnavailableReason === 'function' ? module.onednnUnavailableReason() : 'native addon not built';
    const loadFailed = typeof module.onednnUnavailableCode === 'function' && module.onednnUnavailableCode() === 'ONEDNN_ADDON_LOAD_FAILED';
    throw new Unavailable(loadFailed ? 'BACKEND_LOAD_FAILED' : 'BACKEND_MISSING', reason);
  }
  await activate('onednn');
  return { tfName: 'onednn', detail: `onednn: native oneDNN kernels, ${options.threads ?? 'default'} threads`, threads: options.threads };
};

/**
 * Under Node tfjs-backend-wasm 4.22 always loads its SIMD build without threads: its
 * WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false there (tfjs issue 3830), and
 * forcing the flag fails because the threaded build starts its workers from Blob URLs, which
 * Node's worker_threads cannot load. So `threads` is passed on but XNNPACK reports 1.
 */
const loadWasm: Loader = async (options) => {
  registerWasmTrainingKernels();
  if (options.threads !== undefined) setThreadsCount(options.threads);
  await activate('wasm');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threaded = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  const build = simd && threaded ? 'threaded-SIMD' : simd ? 'SIMD' : 'plain';
  const note = threaded ? '' : ' (the threaded build is not used under Node)';
  return { tfName: 'wasm', detail: `wasm: ${build} build, ${getThreadsCount()} thread(s)${note}`, threads: getThreadsCount() };
};

const loadCpu: Loader = async () => {
  await activate('cpu');
  return { tfName: 'cpu', detail: 'cpu: plain JavaScript kernels, 1 thread', threads: 1 };
};

const LOADERS: Record<ConcreteBackend, Loader> = {
  'tensorflow-gpu': tensorflowLoader('@tensorflow/tfjs-node-gpu'),
  tensorflow: tensorflowLoader('@tensorflow/tfjs-node'),
  onednn: loadOnednn,
  wasm: loadWasm,
  cpu: loadCpu,
};

/**
 * Makes `choice` the current TensorFlow.js backend. For `auto`, tries `AUTO_ORDER` and keeps
 * the first that loads and whose `tf.setBackend` resolves true; the caller prints `name`
 * (and `detail`). Backends that were tried and failed are listed with their reason.
 * @throws BackendError when an explicit choice (or, for `auto`, every backend) is unavailable.
 */
export async function selectBackend(choice: BackendChoice, options: BackendOptions = {}): Promise<BackendSelection> {
  const candidates = choice === 'auto' ? AUTO_ORDER : [choice];
  const tried: BackendAttempt[] = [];
  let lastError: unknown;
  for (const name of candidates) {
    try {
      const { tfName, detail, threads } = await LOADERS[name](options);
      tried.push({ name });
      return { name, tfName, tried, detail, ...(threads !== undefined ? { threads } : {}) };
    } catch (error) {
      // Anything a loader throws, expected (Unavailable) or not, means "not this one".
      tried.push({ name, code: error instanceof Unavailable ? error.code : 'UNEXPECTED', error: message(error) });
      lastError = error;
    }
  }
  const reasons = tried.map((attempt) => `${attempt.name}: ${attempt.error}`).join('; ');
  const text = choice === 'auto' ? `no TensorFlow.js backend could be started (${reasons})` : `backend ${reasons}`;
  throw new BackendError(text, { cause: lastError, tried });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Module-not-found errors carry a long require stack; the first line says enough. */
function firstLine(error: unknown): string {
  return message(error).split('\n')[0] ?? '';
}
