import * as tf from '@tensorflow/tfjs-core';
import {
  BATCH_NORM_EPSILON,
  BATCH_NORM_MOMENTUM,
  resnet18Architecture,
  type BatchNormLayer,
  type ConvLayer,
  type ResNet18Architecture,
  type ResidualUnit,
} from './resnet18-architecture.ts';
import { initialParameters, type ParameterSet } from './parameter-set.ts';
import type { UniformSource } from './parameter-init.ts';

/**
 * `train`: batch norm normalises with the batch's statistics and updates its running
 * statistics (PyTorch `model.train()`); `eval`: it uses the running statistics.
 */
export type ForwardMode = 'train' | 'eval';

/** Shapes seen during a forward pass, for `coordinator summary`. */
export type StageShapes = number[][];

/**
 * The seed's ResNet-18 as explicit TensorFlow.js operations over a {@link ParameterSet}.
 * The forward pass is written out by hand rather than with tfjs-layers so that batch norm
 * follows PyTorch exactly (unbiased variance in the running estimate) and so that gradients,
 * all-reduce and update stay three separate steps.
 */
export class ResNet18 {
  readonly architecture: ResNet18Architecture;
  readonly params: ParameterSet;

  constructor(params: ParameterSet, architecture = resnet18Architecture()) {
    this.params = params;
    this.architecture = architecture;
  }

  /** A freshly initialised model; the same `rng` state gives the same weights. */
  static create(rng: UniformSource, architecture = resnet18Architecture()): ResNet18 {
    return new ResNet18(initialParameters(architecture, rng), architecture);
  }

  /**
   * Logits [n, classes] for NHWC images x [n, h, w, channels]. In `train` mode the running
   * statistics are updated as a side effect, once per call (as one PyTorch forward would).
   * `onStage` receives each stage's output (stem, stages 2-5, pooled, logits) for summaries.
   */
  forward(x: tf.Tensor4D, mode: ForwardMode, onStage?: (output: tf.Tensor) => void): tf.Tensor2D {
    const { stem, stages } = this.architecture;
    let y = this.convolve(x, stem.conv);
    y = tf.relu(this.batchNorm(y, stem.bn, mode));
    const pool = stem.pool;
    y = tf.maxPool(y, pool.size, pool.stride, pool.padding);
    onStage?.(y);
    for (const stage of stages) {
      for (const unit of stage) y = this.residual(y, unit, mode);
      onStage?.(y);
    }
    const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
    onStage?.(pooled);
    const logits = this.dense(pooled);
    onStage?.(logits);
    return logits;
  }

  dispose(): void {
    this.params.dispose();
  }

  private residual(x: tf.Tensor4D, unit: ResidualUnit, mode: ForwardMode): tf.Tensor4D {
    let y = tf.relu(this.batchNorm(this.convolve(x, unit.conv1), unit.bn1, mode));
    y = this.batchNorm(this.convolve(y, unit.conv2), unit.bn2, mode);
    const shortcut = unit.shortcut ? this.convolve(x, unit.shortcut) : x;
    return tf.relu(tf.add(y, shortcut));
  }

  private convolve(x: tf.Tensor4D, layer: ConvLayer): tf.Tensor4D {
    const p = layer.padding;
    const pad: tf.conv_util.ExplicitPadding | 'valid' = p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]];
    return tf.fused.conv2d({
      x,
      filter: this.params.get(`${layer.name}/kernel`) as tf.Tensor4D,
      bias: this.params.get(`${layer.name}/bias`),
      strides: layer.stride,
      pad,
    });
  }

  private batchNorm(x: tf.Tensor4D, layer: BatchNormLayer, mode: ForwardMode): tf.Tensor4D {
    const gamma = this.params.get(`${layer.name}/gamma`) as tf.Tensor1D;
    const beta = this.params.get(`${layer.name}/beta`) as tf.Tensor1D;
    const movingMean = this.params.get(`${layer.name}/moving_mean`);
    const movingVariance = this.params.get(`${layer.name}/moving_variance`);
    if (mode === 'eval') {
      return tf.batchNorm(x, movingMean as tf.Tensor1D, movingVariance as tf.Tensor1D, beta, gamma, BATCH_NORM_EPSILON);
    }
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    updateRunningStats(movingMean, movingVariance, mean, variance, x.size / layer.channels);
    return tf.batchNorm(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, BATCH_NORM_EPSILON);
  }

  private dense(x: tf.Tensor2D): tf.Tensor2D {
    const { name } = this.architecture.dense;
    return tf.add(tf.matMul(x, this.params.get(`${name}/kernel`) as tf.Tensor2D), this.params.get(`${name}/bias`));
  }
}

/**
 * PyTorch's update: running = (1 - momentum) * running + momentum * batch, where the variance
 * entering the running estimate is the unbiased one (n / (n - 1) times the batch variance)
 * while normalisation itself uses the biased one.
 */
function updateRunningStats(movingMean: tf.Variable, movingVariance: tf.Variable, mean: tf.Tensor, variance: tf.Tensor, n: number): void {
  tf.tidy(() => {
    const m = BATCH_NORM_MOMENTUM;
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
    movingMean.assign(tf.add(tf.mul(movingMean, 1 - m), tf.mul(mean, m)));
    movingVariance.assign(tf.add(tf.mul(movingVariance, 1 - m), tf.mul(unbiased, m)));
  });
}
