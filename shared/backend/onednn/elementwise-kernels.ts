/**
 * Element-wise kernels in native code: binary arithmetic with any NumPy-style broadcast
 * (collapsed to at most six strided dimensions), Tile when it is a pure broadcast, and the
 * unary functions a training step applies to whole activations (Relu, Step for its gradient,
 * Square, Rsqrt, ...). Results equal the cpu kernels' bit for bit for + - * / (float32
 * rounding of the exact result either way) and to within one rounding for rsqrt.
 */
import {
  Abs,
  Add,
  backend_util,
  Maximum,
  Minimum,
  Multiply,
  Neg,
  RealDiv,
  Reciprocal,
  Relu,
  Rsqrt,
  Sqrt,
  Square,
  SquaredDifference,
  Step,
  Sub,
  Tile,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, sizeOf, type KernelArgs } from './kernel-support.ts';

/** Operation codes of native/elementwise.h. */
const BINARY_OPS = { Add: 0, Sub: 1, Mul: 2, Div: 3, SquaredDifference: 4, Maximum: 5, Minimum: 6, CopyFirst: 7 } as const;
const UNARY_OPS = { Relu: 0, Step: 1, Neg: 2, Square: 3, Sqrt: 4, Rsqrt: 5, Abs: 6, Reciprocal: 7 } as const;

const MAX_RANK = 6;
/** [rank, dims x6, aStrides x6, bStrides x6], reused for every call. */
const geometry = new Int32Array(1 + 3 * MAX_RANK);

/**
 * Describes out = op(a, b) over the broadcast shape as strided loops in {@link geometry}:
 * size-1 output dimensions are dropped and neighbours that broadcast the same way merged.
 * False when more than six dimensions remain.
 */
export function fillBroadcastGeometry(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): boolean {
  const rank = outShape.length;
  const dims: number[] = [];
  const aVaries: boolean[] = [];
  const bVaries: boolean[] = [];
  for (let d = 0; d < rank; d++) {
    const size = outShape[d];
    if (size === 1) continue;
    const aDim = aShape[d - (rank - aShape.length)] ?? 1;
    const bDim = bShape[d - (rank - bShape.length)] ?? 1;
    const av = aDim !== 1;
    const bv = bDim !== 1;
    const last = dims.length - 1;
    if (last >= 0 && aVaries[last] === av && bVaries[last] === bv) {
      dims[last] *= size;
    } else {
      dims.push(size);
      aVaries.push(av);
      bVaries.push(bv);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    aVaries.push(true);
    bVaries.push(true);
  }
  if (dims.length > MAX_RANK) return false;
  geometry.fill(0);
  geometry[0] = dims.length;
  let aStride = 1;
  let bStride = 1;
  for (let d = dims.length - 1; d >= 0; d--) {
    geometry[1 + d] = dims[d]!;
    geometry[1 + MAX_RANK + d] = aVaries[d] ? aStride : 0;
    geometry[1 + 2 * MAX_RANK + d] = bVaries[d] ? bStride : 0;
    if (aVaries[d]) aStride *= dims[d];
    if (bVaries[d]) bStride *= dims[d];
  }
  return true;
}

function makeBinary(kernelName: string, op: number): KernelConfig['kernelFunc'] {
  const fallback = cpuKernel(kernelName);
  return (rawArgs) => {
    const args = rawArgs as unknown as KernelArgs;
    const { backend } = args;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const aData = float32Data(backend, a);
    const bData = float32Data(backend, b);
    if (aData === null || bData === null) return runCpu(fallback, args);
    const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const size = sizeOf(outShape);
    if (size === 0 || !fillBroadcastGeometry(a.shape, b.shape, outShape)) return runCpu(fallback, args);
    const out = backend.allocateFloat32(size);
    backend.addon.binary(op, geometry, aData, bData, out);
    return backend.makeNativeOutput(out, outShape);
  };
}

function makeUnary(kernelName: string, op: number): KernelFunc {
  const fallback = cpuKernel(kernelName);
  return (rawArgs) => {
    const args = rawArgs as unknown as KernelArgs;
    const { backend } = args;
    const { x } = args.inputs as { x: TensorInfo };
    const xData = float32Data(backend, x);
    if (xData === null || xData.length === 0) return runCpu(fallback, args);
    const alpha = typeof args.attrs?.alpha === 'number' ? args.attrs.alpha : 0;
    const out = backend.allocateFloat32(xData.length);
    backend.addon.unary(op, xData, out, alpha);
    return backend.makeNativeOutput(out, x.shape.slice());
  };
}

const tileFallback = () => cpuKernel(Tile);

/** Tile where every repeated axis has size 1 is a broadcast copy. */
const tile: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { x } = args.inputs as { x: TensorInfo };
  const reps = (args.attrs?.reps ?? []) as number[];
  const xData = float32Data(backend, x);
  const isBroadcast = reps.length === x.shape.length && reps.every((r, d) => r === 1 || x.shape[d] === 1);
  if (xData === null || !isBroadcast) return runCpu(tileFallback(), args);
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const size = sizeOf(outShape);
  if (size === 0 || !fillBroadcastGeometry(x.shape, x.shape, outShape)) return runCpu(tileFallback(), args);
  const out = backend.allocateFloat32(size);
  backend.addon.binary(BINARY_OPS.CopyFirst, geometry, xData, xData, out);
  return backend.makeNativeOutput(out, outShape);
};

/** The element-wise kernels for backend `backendName`. */
export function elementwiseKernels(backendName: string): KernelConfig[] {
  const binary: [string, number][] = [
    [Add, BINARY_OPS.Add],
    [Sub, BINARY_OPS.Sub],
    [Multiply, BINARY_OPS.Mul],
    [RealDiv, BINARY_OPS.Div],
    [SquaredDifference, BINARY_OPS.SquaredDifference],
    [Maximum, BINARY_OPS.Maximum],
    [Minimum, BINARY_OPS.Minimum],
  ];
  const unary: [string, number][] = [
    [Relu, UNARY_OPS.Relu],
    [Step, UNARY_OPS.Step],
    [Neg, UNARY_OPS.Neg],
    [Square, UNARY_OPS.Square],
    [Sqrt, UNARY_OPS.Sqrt],
    [Rsqrt, UNARY_OPS.Rsqrt],
    [Abs, UNARY_OPS.Abs],
    [Reciprocal, UNARY_OPS.Reciprocal],
  ];
  return [
    ...binary.map(([kernelName, op]) => ({ kernelName, backendName, kernelFunc: makeBinary(kernelName, op) })),
    ...unary.map(([kernelName, op]) => ({ kernelName, backendName, kernelFunc: makeUnary(kernelName, op) })),
    { kernelName: Tile, backendName, kernelFunc: tile },
  ];
}
