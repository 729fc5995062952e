import { Sum, type KernelConfig, type KernelFunc, type SumAttrs, type SumInputs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { reduceAxisBlock } from './axis-block-reduction.ts';
import { stockWasmKernel } from './wasm-kernel-call.ts';

const stockSum = stockWasmKernel(Sum);

/** Sum without the stock kernel's transpose for non-innermost axis runs; see reduceAxisBlock. */
function sum(args: { inputs: SumInputs; backend: BackendWasm; attrs: SumAttrs }): TensorInfo {
  const { axis, keepDims } = args.attrs;
  return reduceAxisBlock(args.backend, args.inputs.x as TensorInfo, axis, keepDims, false)
    ?? stockSum.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const sumConfig: KernelConfig = {
  kernelName: Sum,
  backendName: 'wasm',
  kernelFunc: sum as unknown as KernelFunc,
  setupFunc: stockSum.setupFunc,
};
