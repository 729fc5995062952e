/**
 * The `onednn` path of shared/backend/sgd-update.ts: one native pass that updates the
 * variable's array in place when nothing else can see it (its own native output from the
 * previous step), else writes a new native array.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OnednnBackend } from './onednn-backend.ts';

const NATIVE_BACKEND = 'onednn';

/** Applies p <- p - learningRate * gradient when `variable` is held by `onednn`; false (nothing done) otherwise. */
export function onednnSgdUpdate(variable: tf.Variable, gradient: Float32Array, learningRate: number): boolean {
  const backend = tf.engine().registry[NATIVE_BACKEND] as OnednnBackend | undefined;
  if (backend !== undefined && variable.dtype === 'float32' && backend.data.has(variable.dataId)) {
    const own = backend.exclusiveFloat32(variable.dataId);
    if (own !== null) {
      backend.addon.scaledAdd(own, gradient, -learningRate, own);
      return true;
    }
    const current = backend.data.get(variable.dataId).values;
    if (current instanceof Float32Array) {
      const out = backend.allocateFloat32(variable.size);
      backend.addon.scaledAdd(current, gradient, -learningRate, out);
      const updated = tf.engine().makeTensorFromTensorInfo(backend.makeNativeOutput(out, variable.shape.slice()), backend);
      variable.assign(updated);
      updated.dispose();
      return true;
    }
  }
  return false;
}
