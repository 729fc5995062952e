/**
 * The `onednn` TensorFlow.js backend: native CPU kernels on oneDNN (Intel's deep-learning
 * primitives library, Debian package libdnnl-dev) for the operations that dominate a ResNet
 * training step, and the pure-JavaScript cpu backend for everything else.
 *
 * Design
 * - Storage. `OnednnBackend` subclasses `MathBackendCPU` from @tensorflow/tfjs-backend-cpu, so
 *   tensors are typed arrays in the cpu backend's DataStorage. The addon reads and writes those
 *   arrays in place (no copies across the boundary), and every cpu kernel runs unchanged on
 *   this backend's data.
 * - Kernels. Registration copies every cpu kernel config to backend name `onednn`
 *   (`getKernelsForBackend('cpu')`), so any model runs, then overrides the hot kernels with
 *   native ones: convolutions (Conv2D, FusedConv2D with bias and ReLU, Conv2DBackpropInput,
 *   Conv2DBackpropFilter). Each native kernel falls back to the cpu kernel for inputs outside
 *   what it handles (NCHW, other dtypes, unusual activations).
 * - Convolutions use oneDNN primitives with NHWC activations and HWIO filters (TensorFlow's
 *   layouts). oneDNN picks the filter layout (`format_tag::any`) and filters are reordered on
 *   each call; plain HWIO filters would select a GEMM path 1.3-1.9x slower. Primitives are
 *   cached per shape in the addon; scratchpads and reordered filters live in growable shared
 *   buffers, so a step allocates nothing natively once every shape has been seen.
 * - Output arrays are recycled: a disposed tensor's Float32Array goes back to a pool when no
 *   JavaScript code can still see it (see onednn-backend.ts), because fresh large arrays cost
 *   milliseconds each.
 * - Threads come from OpenMP (libgomp, shared by oneDNN and the addon's own loops). OpenMP
 *   reads OMP_NUM_THREADS when it loads, so `threads` is put in the environment before the
 *   addon is loaded, and also applied with omp_set_num_threads.
 * - Calls are synchronous on the JavaScript thread; crossing into the addon costs about 1 us.
 *
 * Building: `node-gyp rebuild` (binding.gyp, C++17, -ldnnl -fopenmp) into build/Release.
 * Without the addon, `registerOnednnBackend` resolves to false and nothing is registered.
 */
import '@tensorflow/tfjs-backend-cpu';
import { getKernelsForBackend, registerBackend, registerKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { addonLoadError, loadAddon, type OnednnAddon } from './addon.ts';
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
  if (error !== undefined) return error instanceof Error ? error.message : String(error);
  return 'build/Release/onednn_backend.node is missing (build it with node-gyp; needs libdnnl-dev)';
}

/**
 * Registers the `onednn` backend (it does not make it current: call `tf.setBackend('onednn')`).
 * Resolves to false, without throwing, when the addon is not built or cannot load; true once
 * registered. Calling it again is harmless; a later `threads` value is applied with
 * omp_set_num_threads.
 */
export async function registerOnednnBackend(options: OnednnBackendOptions = {}): Promise<boolean> {
  const addon: OnednnAddon | null = loadAddon(options.threads);
  if (addon === null) return false;
  if (options.threads !== undefined) addon.setThreads(options.threads);
  if (registered) return true;
  registerKernels();
  registerBackend(ONEDNN_BACKEND_NAME, () => new OnednnBackend(addon, options.maxPooledBytes), 1);
  registered = true;
  return true;
}
