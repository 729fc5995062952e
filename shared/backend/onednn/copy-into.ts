/**
 * The `onednn` path of shared/backend/copy-tensor-into.ts. `tensor.dataSync()` hands out the
 * backend's own array, which the `onednn` backend must then stop recycling (the caller may keep
 * it); copying here leaves the array recyclable, which saves a fresh allocation per gradient
 * per step when gradients are flattened into one buffer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OnednnBackend } from './onednn-backend.ts';

const NATIVE_BACKEND = 'onednn';

/** The onednn backend when it is registered and holds this tensor's data, else null. */
function nativeBackendHolding(tensor: tf.Tensor): OnednnBackend | null {
  const backend = tf.engine().registry[NATIVE_BACKEND] as OnednnBackend | undefined;
  return backend !== undefined && backend.data.has(tensor.dataId) ? backend : null;
}

/** Writes `tensor`'s values into `out` at `offset` when `onednn` holds it; false (nothing done) otherwise. */
export function copyOnednnTensorInto(tensor: tf.Tensor, out: Float32Array, offset: number): boolean {
  const backend = nativeBackendHolding(tensor);
  if (backend === null) return false;
  backend.copyInto(tensor.dataId, out, offset);
  return true;
}
