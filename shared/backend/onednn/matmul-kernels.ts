/**
 * BatchMatMul through oneDNN's sgemm, for float32 operands whose batch shapes are equal or
 * where one operand is a single matrix (broadcast over the other's batch).
 */
import { backend_util, BatchMatMul, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, sizeOf, type KernelArgs } from './kernel-support.ts';

/** [batch, m, n, k, aBatchStride, bBatchStride, transposeA, transposeB], reused. */
const geometry = new Int32Array(8);

const fallback = () => cpuKernel(BatchMatMul);

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const batchMatMul: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const transposeA = args.attrs?.transposeA === true;
  const transposeB = args.attrs?.transposeB === true;
  const aData = float32Data(backend, a);
  const bData = float32Data(backend, b);
  if (aData === null || bData === null || a.shape.length < 2 || b.shape.length < 2) return runCpu(fallback(), args);
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  const aBatch = sizeOf(aBatchShape);
  const bBatch = sizeOf(bBatchShape);
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const m = transposeA ? a1 : a0;
  const k = transposeA ? a0 : a1;
  const n = transposeB ? b0 : b1;
  const kB = transposeB ? b1 : b0;
  const batchOk = sameShape(aBatchShape, bBatchShape) || aBatch === 1 || bBatch === 1;
  if (!batchOk || k !== kB || m * n * k === 0 || aBatch * bBatch === 0) return runCpu(fallback(), args);
  const batch = Math.max(aBatch, bBatch);
  const batchShape = backend_util.assertAndGetBroadcastShape(aBatchShape, bBatchShape);
  geometry.set([batch, m, n, k, aBatch === 1 ? 0 : m * k, bBatch === 1 ? 0 : k * n, transposeA ? 1 : 0, transposeB ? 1 : 0]);
  const out = backend.allocateFloat32(batch * m * n);
  backend.addon.batchMatMul(geometry, aData, bData, out);
  return backend.makeNativeOutput(out, [...batchShape, m, n]);
};

/** The matrix-product kernels for backend `backendName`. */
export function matMulKernels(backendName: string): KernelConfig[] {
  return [{ kernelName: BatchMatMul, backendName, kernelFunc: batchMatMul }];
}
