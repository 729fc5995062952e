import { getKernel, type KernelConfig, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Runs one of the wasm backend's registered kernels directly, the way the backend's own
 * composite kernels do: no engine, no gradient tape, no tensor tracking. The caller owns the
 * returned buffer and frees it with `backend.disposeData(out.dataId)` unless it is the result.
 */
export function runWasmKernel(backend: BackendWasm, kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const kernel = getKernel(kernelName, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
  return kernel.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
}

/** Frees intermediate buffers made by `runWasmKernel`. */
export function disposeAll(backend: BackendWasm, infos: readonly TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * The wasm heap as floats. Take it again after any allocation: a heap growth replaces the
 * buffer and detaches earlier views. (The module's Emscripten typings are not in this
 * project's type roots, hence the narrow cast.)
 */
export function heapFloats(backend: BackendWasm): Float32Array {
  return (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
}

/** The wasm heap as bytes; same caveat as `heapFloats`. */
export function heapBytes(backend: BackendWasm): Uint8Array {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapByteOffset(backend: BackendWasm, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}

/**
 * The backend's own kernel registered under `kernelName`, captured before this project
 * replaces it so that cases a replacement does not handle can still run it. Its `setupFunc`
 * must be carried over to the replacement so that it is still called at backend start.
 */
export function stockWasmKernel(kernelName: string): KernelConfig {
  const kernel = getKernel(kernelName, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
  return kernel;
}

/** Index of a tensor's first float in `heapFloats(backend)`. */
export function heapFloatIndex(backend: BackendWasm, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset / Float32Array.BYTES_PER_ELEMENT;
}
