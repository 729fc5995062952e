/**
 * The `onednn` TensorFlow.js backend: native CPU kernels on oneDNN (Intel's deep-learning
 * primitives library; Debian package libdnnl-dev, 2.x C++ API) for the operations that take
 * the time in a ResNet training step, and the pure-JavaScript cpu backend for everything else.
 *
 * Design
 * - Storage. `OnednnBackend` (onednn-backend.ts) subclasses `MathBackendCPU` from
 *   @tensorflow/tfjs-backend-cpu, so tensors are typed arrays in the cpu backend's DataStorage.
 *   The addon (native/*.cc, built into build/Release/onednn_backend.node) reads and writes those
 *   arrays in place: no copies cross the boundary, and every cpu kernel runs unchanged on this
 *   backend's data. Calls are synchronous on the JavaScript thread (about 1 us each); the work
 *   runs on OpenMP threads.
 * - Kernels. Registration copies every cpu kernel config to backend name `onednn`
 *   (`getKernelsForBackend('cpu')`), so any model runs, then overrides the hot ones:
 *   convolutions (Conv2D, FusedConv2D with bias and optional ReLU, Conv2DBackpropInput,
 *   Conv2DBackpropFilter) on oneDNN primitives; BatchMatMul on oneDNN's sgemm; and, as
 *   vectorised C++ loops, element-wise binary ops under any broadcast (Add, Sub, Multiply,
 *   RealDiv, SquaredDifference, Maximum, Minimum), unary ops (Relu, Step, Neg, Square, Sqrt,
 *   Rsqrt, Abs, Reciprocal), broadcast Tile, Sum and Mean over contiguous axes, MaxPool and
 *   MaxPoolGrad, and FusedBatchNorm. Each falls back to the cpu kernel for inputs it does not
 *   handle (NCHW, int32, a reduction over non-adjacent axes, an activation other than ReLU).
 * - Fused training ops, for models that opt in: `batchNormTraining` (batch-norm-training.ts:
 *   statistics, normalisation and ReLU in two passes, its gradient in two more, instead of
 *   the ~30 element-wise passes of tf.moments + tf.batchNorm and their gradients),
 *   `onednnSgdUpdate` (sgd-update.ts, behind shared/backend/sgd-update.ts: one pass, in place
 *   when nothing else sees the weights) and `copyOnednnTensorInto` (copy-into.ts, behind
 *   shared/backend/copy-tensor-into.ts: reads gradients without exposing recyclable arrays).
 *   On other backends they compute the same thing with ordinary ops.
 * - Convolutions use NHWC activations and HWIO filters (TensorFlow's layouts). oneDNN picks
 *   the filter layout (`format_tag::any`; plain HWIO makes it fall back to a GEMM path
 *   1.3-1.9x slower) and filters are reordered on each call. Filter taps that only ever meet
 *   padding (a 3x3 filter over a 1x1 map) are cropped away. Among oneDNN's implementations the
 *   addon prefers, by fixed rules on the shape (never by timing, so every process rounds the
 *   same way), direct JIT kernels on maps 4 pixels wide or less and the GEMM kernel for
 *   backward data with under 8 input channels. Plans are cached per shape and direction;
 *   scratchpads and reordered filters live in growable shared buffers.
 * - Element-wise code is built with -O3 and GCC function multiversioning (AVX-512, AVX2 or
 *   baseline x86-64 chosen at load time) and -ffp-contract=off, so results round exactly as
 *   tfjs's do whatever the CPU (+ - * / are bit-identical to the cpu backend).
 * - Output arrays are recycled: a disposed tensor's Float32Array goes back to a pool (1 GiB cap)
 *   when no JavaScript code can still see it (see onednn-backend.ts), because fresh large
 *   arrays cost milliseconds each (on this VM a first touch costs ~30 us per 4 KiB page).
 * - Threads come from OpenMP (libgomp, shared by oneDNN and the addon's loops). OpenMP reads
 *   OMP_NUM_THREADS when it loads, so `threads` is put in the environment before the addon is
 *   loaded, and also applied with omp_set_num_threads (so a later call can change it).
 *
 * Building: `node scripts/build-native.mjs` runs node-gyp on binding.gyp (C++17, exceptions,
 * -ldnnl -fopenmp). Without the addon, `registerOnednnBackend` resolves to false and registers
 * nothing. ONEDNN_ADDON_PATH points at a prebuilt addon elsewhere.
 */
import '@tensorflow/tfjs-backend-cpu';
import { getKernelsForBackend, registerBackend, registerKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { ConfigError } from '../../errors.ts';
import { addonLoadError, addonPath, loadAddon, type OnednnAddon } from './addon.ts';
import { batchNormKernels } from './batch-norm-kernels.ts';
import { convolutionKernels } from './convolution-kernels.ts';
import { elementwiseKernels } from './elementwise-kernels.ts';
import { matMulKernels } from './matmul-kernels.ts';
import { OnednnBackend } from './onednn-backend.ts';
import { poolingKernels } from './pooling-kernels.ts';
import { reductionKernels } from './reduction-kernels.ts';

/** The name the backend registers under (`tf.setBackend(ONEDNN_BACKEND_NAME)`). */
export const ONEDNN_BACKEND_NAME = 'onednn';

/** Options for {@link registerOnednnBackend}. */
export interface OnednnBackendOptions {
  /**
   * OpenMP threads for native kernels. Default: OMP_NUM_THREADS when set, otherwise OpenMP's
   * own default (one per available core). Only the first call's value reaches OMP_NUM_THREADS.
   */
  threads?: number;
  /** Bytes of released output arrays kept for reuse. Default 1 GiB. */
  maxPooledBytes?: number;
}

let registered = false;

/** Native kernels that replace the cpu ones on this backend. */
function nativeKernels(): KernelConfig[] {
  return [
    ...convolutionKernels(ONEDNN_BACKEND_NAME),
    ...batchNormKernels(ONEDNN_BACKEND_NAME),
    ...poolingKernels(ONEDNN_BACKEND_NAME),
    ...elementwiseKernels(ONEDNN_BACKEND_NAME),
    ...reductionKernels(ONEDNN_BACKEND_NAME),
    ...matMulKernels(ONEDNN_BACKEND_NAME),
  ];
}

function registerKernels(): void {
  const native = nativeKernels();
  const overridden = new Set(native.map((k) => k.kernelName));
  for (const config of getKernelsForBackend('cpu')) {
    if (!overridden.has(config.kernelName)) registerKernel({ ...config, backendName: ONEDNN_BACKEND_NAME });
  }
  for (const config of native) registerKernel(config);
}

/** True when the native addon is built and loads. */
export function onednnAvailable(): boolean {
  return loadAddon() !== null;
}

/** Why the addon is unavailable: a load error, or a note that it was not built. */
export function onednnUnavailableReason(): string {
  const error = addonLoadError();
  if (error !== undefined) return error instanceof Error ? error.message : JSON.stringify(error);
  return `${addonPath()} is missing (build it with \`node scripts/build-native.mjs\`; needs libdnnl-dev)`;
}

/**
 * Why the addon is unavailable, as a code (once `registerOnednnBackend` resolved false): its
 * file is not there (not built), or it is there and does not load (e.g. libdnnl.so.2 missing).
 */
export function onednnUnavailableCode(): 'ONEDNN_ADDON_MISSING' | 'ONEDNN_ADDON_LOAD_FAILED' {
  return addonLoadError() === undefined ? 'ONEDNN_ADDON_MISSING' : 'ONEDNN_ADDON_LOAD_FAILED';
}

/**
 * Registers the `onednn` backend (it does not make it current: call `tf.setBackend('onednn')`).
 * Resolves to false, without throwing, when the addon is not built or cannot load; true once
 * registered. Calling it again is harmless; a later `threads` value is applied with
 * omp_set_num_threads.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async so that a bad option rejects, as callers await it
export async function registerOnednnBackend(options: OnednnBackendOptions = {}): Promise<boolean> {
  const { threads, maxPooledBytes } = options;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new ConfigError(`onednn threads must be a positive integer (got ${threads})`);
  }
  if (maxPooledBytes !== undefined && (!Number.isFinite(maxPooledBytes) || maxPooledBytes < 0)) {
    throw new ConfigError(`onednn maxPooledBytes must be a non-negative number (got ${maxPooledBytes})`);
  }
  const addon: OnednnAddon | null = loadAddon(options.threads);
  if (addon === null) return false;
  if (options.threads !== undefined) addon.setThreads(options.threads);
  if (registered) return true;
  registerKernels();
  registerBackend(ONEDNN_BACKEND_NAME, () => new OnednnBackend(addon, options.maxPooledBytes), 1);
  registered = true;
  return true;
}

export { batchNormTraining, type BatchNormTrainingOptions, type BatchNormTrainingResult } from './batch-norm-training.ts';
