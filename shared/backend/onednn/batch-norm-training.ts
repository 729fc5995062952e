/**
 * Training-mode batch normalisation as one operation: the batch's per-channel mean and biased
 * variance over every axis but the last, the normalised output, and optionally ReLU.
 *
 * On the `onednn` backend it runs as one native kernel (two passes over x) with a native
 * gradient (two passes over x and dy), instead of the ten-odd element-wise kernels and their
 * gradients that `tf.moments` + `tf.batchNorm` + `tf.relu` record on the tape. On `wasm` the
 * same two kernels run as JS loops over the wasm heap once registerWasmTrainingKernels() has
 * registered them (shared/backend/wasm-kernels). On any other backend it is exactly that
 * composition, so results agree everywhere (to float rounding).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from './batch-norm-kernels.ts';

/** Backend name on which the fused kernels exist (kept here to avoid an import cycle). */
const NATIVE_BACKEND = 'onednn';
/** Backend on which the fused kernels exist once the project's wasm kernels are registered. */
const WASM_BACKEND = 'wasm';

/** Whether the current backend runs the fused kernels (else the composite ops are used). */
function fusedKernelsAvailable(): boolean {
  const backend = tf.getBackend();
  return backend === NATIVE_BACKEND || (backend === WASM_BACKEND && tf.getKernel(BATCH_NORM_TRAINING, WASM_BACKEND) !== undefined);
}

export interface BatchNormTrainingOptions {
  /** Apply ReLU to the output (fused on `onednn` and `wasm`). Default false. */
  relu?: boolean;
}

export interface BatchNormTrainingResult {
  /** (x - mean) / sqrt(variance + epsilon) * scale + offset, then ReLU if asked; x's shape. */
  y: tf.Tensor;
  /** Per-channel batch mean, shape [channels]. */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance (divided by the count), shape [channels]. */
  variance: tf.Tensor1D;
}

tf.registerGradient({
  kernelName: BATCH_NORM_TRAINING,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [true, true, true],
  gradFunc: (dy, saved, attrs) => {
    const [x, scale, y, mean, variance] = saved;
    const [dyY, dMean, dVariance] = Array.isArray(dy) ? dy : [dy];
    // One kernel yields all three gradients; computing it here (not in the closures, which
    // the tape runs in separate tidy scopes and only for inputs on the gradient path) keeps
    // each result alive until the tape has taken it.
    const [dx, dScale, dOffset] = tf.engine().runKernel(
      BATCH_NORM_TRAINING_GRAD,
      {
        dy: dyY,
        x: x,
        y: y,
        scale: scale,
        mean: mean,
        variance: variance,
        ...(dMean ? { dmean: dMean } : {}),
        ...(dVariance ? { dvariance: dVariance } : {}),
      },
      attrs,
    ) as tf.Tensor[];
    return { x: () => dx, scale: () => dScale, offset: () => dOffset };
  },
});

function composite(x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, epsilon: number, relu: boolean): BatchNormTrainingResult {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const normalised = tf.batchNorm(x, mean, variance, offset, scale, epsilon);
  return { y: relu ? tf.relu(normalised) : normalised, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Normalises x (channels last) with its own batch statistics. `scale` (gamma) and `offset`
 * (beta) have one value per channel. Differentiable with respect to x, scale and offset
 * (and through mean and variance, if those feed the loss).
 */
export function batchNormTraining(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  epsilon: number,
  options: BatchNormTrainingOptions = {},
): BatchNormTrainingResult {
  const relu = options.relu === true;
  if (!fusedKernelsAvailable() || x.dtype !== 'float32' || x.size === 0) {
    return composite(x, scale, offset, epsilon, relu);
  }
  const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING, { x, scale, offset }, { epsilon, relu }) as tf.Tensor[];
  return { y: y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
