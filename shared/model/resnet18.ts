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
import { buildLayersMirror } from './layers-mirror.ts';
import { convolve, dense } from './layer-ops.ts';
import { batchNormTraining } from '../backend/onednn/batch-norm-training.ts';
import type { ForwardMode, TrainableModel } from './trainable-model.ts';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * The seed's ResNet-18 as explicit TensorFlow.js operations over a {@link ParameterSet}.
 * The forward pass is written out by hand rather than with tfjs-layers so that batch norm
 * follows PyTorch exactly (unbiased variance in the running estimate) and so that gradients,
 * all-reduce and update stay three separate steps.
 */
export class ResNet18 implements TrainableModel {
  readonly kind = 'resnet18' as const;
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
    let y = convolve(x, this.params, stem.conv, true);
    y = this.batchNorm(y, stem.bn, mode, true);
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

  get classes(): number {
    return this.architecture.classes;
  }

  buildLayersMirror(imageSize: number): tfl.LayersModel {
    return buildLayersMirror(this.architecture, imageSize);
  }

  dispose(): void {
    this.params.dispose();
  }

  private residual(x: tf.Tensor4D, unit: ResidualUnit, mode: ForwardMode): tf.Tensor4D {
    let y = this.batchNorm(this.convolve(x, unit.conv1), unit.bn1, mode, true);
    y = this.batchNorm(this.convolve(y, unit.conv2), unit.bn2, mode, false);
    const shortcut = unit.shortcut ? this.convolve(x, unit.shortcut) : x;
    return tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
  }

  private convolve(x: tf.Tensor4D, layer: ConvLayer): tf.Tensor4D {
    return convolve(x, this.params, layer);
  }

  /** Batch norm, then ReLU when `relu`; in train mode one fused op (native on onednn). */
  private batchNorm(x: tf.Tensor4D, layer: BatchNormLayer, mode: ForwardMode, relu: boolean): tf.Tensor4D {
    const gamma = this.params.get(`${layer.name}/gamma`) as tf.Tensor1D;
    const beta = this.params.get(`${layer.name}/beta`) as tf.Tensor1D;
    const movingMean = this.params.get(`${layer.name}/moving_mean`);
    const movingVariance = this.params.get(`${layer.name}/moving_variance`);
    if (mode === 'eval') {
      const y = tf.batchNorm(x, movingMean as tf.Tensor1D, movingVariance as tf.Tensor1D, beta, gamma, BATCH_NORM_EPSILON);
      return relu ? tf.relu(y) : y;
    }
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, BATCH_NORM_EPSILON, { relu });
    updateRunningStats(movingMean, movingVariance, mean, variance, x.size / layer.channels);
    return y as tf.Tensor4D;
  }

  private dense(x: tf.Tensor2D): tf.Tensor2D {
    return dense(x, this.params, this.architecture.dense.name);
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
