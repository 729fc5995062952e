/**
 * Plain SGD on one variable, p <- p - lr * g, from a gradient held in a Float32Array (a slice
 * of the all-reduced buffer). The `onednn` and `wasm` backends get one pass of their own
 * (onednn/sgd-update.ts, wasm-kernels/sgd-update.ts); every path gives exactly the bits of
 * tfjs's `variable.assign(sub(variable, mul(g, lr)))`, which the other backends run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { onednnSgdUpdate } from './onednn/sgd-update.ts';
import { wasmSgdUpdate } from './wasm-kernels/sgd-update.ts';

/** Applies p <- p - learningRate * gradient to a float32 variable; `gradient` has its size. */
export function sgdUpdate(variable: tf.Variable, gradient: Float32Array, learningRate: number): void {
  if (gradient.length !== variable.size) {
    throw new RangeError(`gradient has ${gradient.length} values, variable ${variable.name} ${variable.size}`);
  }
  if (onednnSgdUpdate(variable, gradient, learningRate) || wasmSgdUpdate(variable, gradient, learningRate)) return;
  tf.tidy(() => {
    const g = tf.tensor(gradient, variable.shape, 'float32');
    variable.assign(tf.sub(variable, tf.mul(g, learningRate)));
  });
}
