import { Mean, Sum, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { reduceAxisBlock } from './axis-block-reduction.ts';
import { stockWasmKernel } from './wasm-kernel-call.ts';

/**
 * Registration record replacing the stock wasm Sum or Mean: reductions over a run of adjacent
 * axes skip the stock kernel's transpose (see reduceAxisBlock); others run the stock kernel.
 */
function axisBlockReductionConfig(kernelName: typeof Sum | typeof Mean): KernelConfig {
  const stock = stockWasmKernel(kernelName);
  const kernelFunc = (args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: { axis: number | number[]; keepDims: boolean } }): TensorInfo => {
    const { axis, keepDims } = args.attrs;
    return reduceAxisBlock(args.backend, args.inputs.x, axis, keepDims, kernelName === Mean) ?? (stock.kernelFunc(args) as TensorInfo);
  };
  return { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelFunc, setupFunc: stock.setupFunc };
}

export const sumConfig = axisBlockReductionConfig(Sum);
export const meanConfig = axisBlockReductionConfig(Mean);
