/**
 * What every native kernel shares: access to float32 tensor data without copying, and the cpu
 * kernel to fall back to when an input is outside what the native code handles (another
 * dtype, NCHW, an unusual broadcast). Fallbacks keep every model running; they are slow, not
 * wrong.
 */
import { getKernel, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { OnednnBackend } from './onednn-backend.ts';

/** Arguments tfjs passes to a kernel function, with the backend typed as ours. */
export interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: OnednnBackend;
  attrs?: NamedAttrMap;
}

/** The data of a float32 tensor as the Float32Array the backend stores, or null. */
export function float32Data(backend: OnednnBackend, info: TensorInfo | undefined): Float32Array | null {
  if (info === undefined || info.dtype !== 'float32') return null;
  const values = backend.data.get(info.dataId).values;
  return values instanceof Float32Array ? values : null;
}

/** The cpu backend's implementation of `kernelName`, looked up once. */
export function cpuKernel(kernelName: string): KernelFunc {
  const config = getKernel(kernelName, 'cpu');
  if (config === undefined) throw new Error(`no cpu kernel named ${kernelName}`);
  return config.kernelFunc;
}

/** Runs the cpu implementation with our backend (it stores data the same way). */
export function runCpu(fallback: KernelFunc, args: KernelArgs): TensorInfo | TensorInfo[] {
  return fallback(args);
}

/** Product of a shape's dimensions. */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}
