/**
 * Copies a tensor's values into a caller's Float32Array. `tensor.dataSync()` hands out the
 * backend's own array, which the `onednn` backend must then stop recycling (the caller may keep
 * it); copying through this function leaves the array recyclable, which saves a fresh
 * allocation per gradient per step when gradients are flattened into one buffer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OnednnBackend } from './onednn-backend.ts';

const NATIVE_BACKEND = 'onednn';

/** The onednn backend when it is registered and holds this tensor's data, else null. */
function nativeBackendHolding(tensor: tf.Tensor): OnednnBackend | null {
  const backend = tf.engine().registry[NATIVE_BACKEND] as OnednnBackend | undefined;
  return backend !== undefined && backend.data.has(tensor.dataId) ? backend : null;
}

/** Writes `tensor`'s values (float32 or int32) into `out` starting at `offset`. */
export function copyTensorInto(tensor: tf.Tensor, out: Float32Array, offset = 0): void {
  if (offset + tensor.size > out.length) throw new RangeError(`${tensor.size} values do not fit at offset ${offset} of ${out.length}`);
  const backend = nativeBackendHolding(tensor);
  if (backend !== null) {
    backend.copyInto(tensor.dataId, out, offset);
    return;
  }
  out.set(tensor.dataSync() as ArrayLike<number>, offset);
}
