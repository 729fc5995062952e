import { engine, getKernel, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { batchNormTrainingConfig } from './batch-norm-training.ts';
import { batchNormTrainingGradConfig } from './batch-norm-training-grad.ts';
import { conv2DConfig, fusedConv2DConfig } from './conv2d.ts';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.ts';
import { identityConfig } from './identity.ts';
import { maxPoolGradConfig } from './max-pool-grad.ts';
import { meanConfig, sumConfig } from './sum-and-mean.ts';
import { tileConfig } from './tile.ts';

/**
 * Kernels this project adds to or replaces in tfjs-backend-wasm 4.22 so that a ResNet-18
 * training step runs on wasm, and runs fast. Found by training a net with every op the model
 * uses (only Conv2DBackpropFilter was missing) and profiling each kernel of a ResNet-18 step
 * at 96x96, batch 32 and 28x28, batch 64; the others replace stock kernels that were slow
 * there:
 * - Conv2D, FusedConv2D: the stock kernels, run without the filter taps that only read padding
 *   (effective-taps.ts; ResNet's last stage at 28x28);
 * - Conv2DBackpropFilter, Conv2DBackpropInput: XNNPACK GEMMs and convs with the roles of the
 *   operands chosen per shape (see each file);
 * - OnednnBatchNormTraining and its gradient: the fused training batch norm that
 *   shared/backend/onednn/batch-norm-training.ts runs on wasm once these are registered;
 * - Identity (a shared buffer instead of a copy), MaxPoolGrad, Tile, Sum, Mean.
 */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  conv2DConfig,
  fusedConv2DConfig,
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  maxPoolGradConfig,
  tileConfig,
  sumConfig,
  meanConfig,
  identityConfig,
  batchNormTrainingConfig,
  batchNormTrainingGradConfig,
];

/**
 * Registers `wasmTrainingKernels` for the 'wasm' backend, replacing stock kernels of the same
 * name. Idempotent. Meant to be called before `tf.setBackend('wasm')`; when the backend is
 * already running, the setup steps that the engine would have run at its start are run here.
 */
export function registerWasmTrainingKernels(): void {
  const running = engine().registry['wasm'];
  for (const config of wasmTrainingKernels) {
    const current = getKernel(config.kernelName, 'wasm');
    if (current === config) continue;
    // registerKernel warns when a name is taken; replacing the stock kernel is the point.
    if (current !== undefined) unregisterKernel(config.kernelName, 'wasm');
    registerKernel(config);
    if (running !== undefined) config.setupFunc?.(running);
  }
}
