/**
 * Sum and Mean over a contiguous run of axes (NHWC over [0, 1, 2] for batch-norm statistics
 * and bias gradients, [1, 2] for global average pooling, the last axis for losses), in native
 * code with double-precision accumulation like the cpu kernels' JavaScript numbers.
 */
import { backend_util, Mean, Sum, util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, sizeOf, type KernelArgs } from './kernel-support.ts';

/** x viewed as [outer, reduce, inner] for a reduction over `axes`, or null if they have gaps. */
export function reductionView(shape: readonly number[], axes: readonly number[]): { outer: number; reduce: number; inner: number } | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[0] + i) return null;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  return {
    outer: sizeOf(shape.slice(0, first)),
    reduce: sizeOf(shape.slice(first, last + 1)),
    inner: sizeOf(shape.slice(last + 1)),
  };
}

function makeReduction(kernelName: string, mean: boolean): KernelFunc {
  const fallback = cpuKernel(kernelName);
  return (rawArgs) => {
    const args = rawArgs as unknown as KernelArgs;
    const { backend } = args;
    const { x } = args.inputs as { x: TensorInfo };
    const axis = args.attrs?.axis as number | number[];
    const keepDims = args.attrs?.keepDims === true;
    const xData = float32Data(backend, x);
    if (xData === null || xData.length === 0) return runCpu(fallback, args);
    const axes = util.parseAxisParam(axis, x.shape);
    const view = reductionView(x.shape, axes);
    if (view === null) return runCpu(fallback, args);
    let [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    if (keepDims) outShape = backend_util.expandShapeToKeepDim(outShape, axes);
    const out = backend.allocateFloat32(view.outer * view.inner);
    backend.addon.reduceSum(xData, out, view.outer, view.reduce, view.inner, mean ? 1 / view.reduce : 1);
    return backend.makeNativeOutput(out, outShape);
  };
}

/** The reduction kernels for backend `backendName`. */
export function reductionKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: Sum, backendName, kernelFunc: makeReduction(Sum, false) },
    { kernelName: Mean, backendName, kernelFunc: makeReduction(Mean, true) },
  ];
}
