import { Mean, type KernelConfig, type KernelFunc, type MeanAttrs, type MeanInputs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { reduceAxisBlock } from './axis-block-reduction.ts';
import { stockWasmKernel } from './wasm-kernel-call.ts';

const stockMean = stockWasmKernel(Mean);

/** Mean without the stock kernel's transpose for non-innermost axis runs; see reduceAxisBlock. */
function mean(args: { inputs: MeanInputs; backend: BackendWasm; attrs: MeanAttrs }): TensorInfo {
  const { axis, keepDims } = args.attrs;
  return reduceAxisBlock(args.backend, args.inputs.x as TensorInfo, axis, keepDims, true)
    ?? stockMean.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const meanConfig: KernelConfig = {
  kernelName: Mean,
  backendName: 'wasm',
  kernelFunc: mean as unknown as KernelFunc,
  setupFunc: stockMean.setupFunc,
};
