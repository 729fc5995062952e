import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapByteOffset, heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/**
 * Copies a float32 or int32 tensor held by the wasm backend into `out` at `offset` straight
 * from the wasm heap. `tensor.dataSync()` on wasm allocates a fresh array per call
 * (HEAPU8.slice); reading a ResNet-18 gradient (11.2M floats in 62 tensors) that way took
 * 16 to 250 ms, mostly in allocation and the garbage collection it sets off, against 3 ms
 * here. Returns false, copying nothing, when the tensor is not held by the wasm backend or is
 * of another dtype: the caller then falls back to dataSync.
 * @throws RangeError when the values do not fit in `out` at `offset`.
 */
export function copyWasmTensorInto(tensor: tf.Tensor, out: Float32Array, offset = 0): boolean {
  const backend = tf.engine().registry['wasm'] as BackendWasm | undefined;
  if (backend === undefined || !backend.dataIdMap.has(tensor.dataId)) return false;
  if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') return false;
  if (offset < 0 || offset + tensor.size > out.length) throw new RangeError(`${tensor.size} values do not fit at offset ${offset} of ${out.length}`);
  const info = { dataId: tensor.dataId, shape: tensor.shape, dtype: tensor.dtype };
  if (tensor.dtype === 'float32') {
    const at = heapFloatIndex(backend, info);
    out.set(heapFloats(backend).subarray(at, at + tensor.size), offset);
    return true;
  }
  const ints = new Int32Array(heapFloats(backend).buffer, heapByteOffset(backend, info), tensor.size);
  for (let i = 0; i < ints.length; i++) out[offset + i] = ints[i]!;
  return true;
}
