/**
 * The `wasm` path of shared/backend/sgd-update.ts: p - lr * g computed in one JavaScript pass
 * from the wasm heap into a new tensor. The composite tf.mul + tf.sub took two kernels, an upload
 * of the gradient and two intermediate tensors per parameter: about 40 ms of a 460 ms step at
 * 28x28, batch 64. The weights are never changed in place: the stock XNNPACK convolutions cache
 * packed filters by tensor id.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/** Applies p <- p - learningRate * gradient when `variable` is held by `wasm`; false (nothing done) otherwise. */
export function wasmSgdUpdate(variable: tf.Variable, gradient: Float32Array, learningRate: number): boolean {
  const backend = tf.engine().registry['wasm'] as BackendWasm | undefined;
  if (backend === undefined || variable.dtype !== 'float32' || !backend.dataIdMap.has(variable.dataId)) return false;
  const out = backend.makeOutput(variable.shape.slice(), 'float32');
  const heap = heapFloats(backend); // after the allocation, which may have grown the heap
  const from = heapFloatIndex(backend, variable);
  const to = heapFloatIndex(backend, out);
  // float32 rounding as tfjs's mul then sub: the product rounded first, then the difference
  // (computed in float64 and rounded once on the store, which gives the float32 result exactly).
  const lr = Math.fround(learningRate);
  for (let i = 0; i < gradient.length; i += 1) heap[to + i] = heap[from + i]! - Math.fround(gradient[i]! * lr);
  const updated = tf.engine().makeTensorFromTensorInfo(out, backend);
  variable.assign(updated);
  updated.dispose();
  return true;
}
