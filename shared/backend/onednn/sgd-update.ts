/**
 * Plain SGD on one variable, p <- p - lr * g, from a gradient held in a Float32Array (a slice
 * of the all-reduced buffer). On the `onednn` backend this is one native pass that updates the
 * variable's array in place when nothing else can see it (its own native output from the
 * previous step); otherwise, and on other backends, it is exactly tfjs's
 * `variable.assign(sub(variable, mul(g, lr)))`, with the same float32 rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OnednnBackend } from './onednn-backend.ts';

const NATIVE_BACKEND = 'onednn';

/** Applies p <- p - learningRate * gradient to a float32 variable; `gradient` has its size. */
export function sgdUpdate(variable: tf.Variable, gradient: Float32Array, learningRate: number): void {
  if (gradient.length !== variable.size) {
    throw new RangeError(`gradient has ${gradient.length} values, variable ${variable.name} ${variable.size}`);
  }
  const backend = tf.engine().registry[NATIVE_BACKEND] as OnednnBackend | undefined;
  if (backend !== undefined && variable.dtype === 'float32' && backend.data.has(variable.dataId)) {
    const own = backend.exclusiveFloat32(variable.dataId);
    if (own !== null) {
      backend.addon.scaledAdd(own, gradient, -learningRate, own);
      return;
    }
    const current = backend.data.get(variable.dataId).values;
    if (current instanceof Float32Array) {
      const out = backend.allocateFloat32(variable.size);
      backend.addon.scaledAdd(current, gradient, -learningRate, out);
      const updated = tf.engine().makeTensorFromTensorInfo(backend.makeNativeOutput(out, variable.shape.slice()), backend);
      variable.assign(updated);
      updated.dispose();
      return;
    }
  }
  tf.tidy(() => {
    const g = tf.tensor(gradient, variable.shape, 'float32');
    variable.assign(tf.sub(variable, tf.mul(g, learningRate)));
  });
}
