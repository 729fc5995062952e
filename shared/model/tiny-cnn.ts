import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { addConvParameters, addDenseParameters, convolve, dense } from './layer-ops.ts';
import { ParameterSet } from './parameter-set.ts';
import type { UniformSource } from './parameter-init.ts';
import type { ConvLayer } from './resnet18-architecture.ts';
import type { ForwardMode, TrainableModel } from './trainable-model.ts';

const CONV1: ConvLayer = { kind: 'conv', name: 'conv1', kernelSize: 3, inChannels: 1, outChannels: 8, stride: 2, padding: 1 };
const CONV2: ConvLayer = { kind: 'conv', name: 'conv2', kernelSize: 3, inChannels: 8, outChannels: 16, stride: 2, padding: 1 };
const CLASSES = 10;

/**
 * A tiny CNN without batch norm: conv3x3/2 -> ReLU -> conv3x3/2 -> ReLU -> global mean ->
 * dense. With no batch statistics, N workers must follow one process's trajectory up to float
 * rounding; the equivalence tests use it, and it makes quick smoke runs.
 */
export class TinyCnn implements TrainableModel {
  readonly kind = 'tiny-cnn' as const;
  readonly classes = CLASSES;

  constructor(readonly params: ParameterSet) {}

  static create(rng: UniformSource): TinyCnn {
    const params = new ParameterSet();
    addConvParameters(params, CONV1, rng);
    addConvParameters(params, CONV2, rng);
    addDenseParameters(params, 'dense', CONV2.outChannels, CLASSES, rng);
    return new TinyCnn(params);
  }

  forward(x: tf.Tensor4D, _mode: ForwardMode, onStage?: (output: tf.Tensor) => void): tf.Tensor2D {
    const y1 = tf.relu(convolve(x, this.params, CONV1, true));
    const y2 = tf.relu(convolve(y1, this.params, CONV2));
    const pooled = tf.mean(y2, [1, 2]) as tf.Tensor2D;
    const logits = dense(pooled, this.params, 'dense');
    for (const stage of [y1, y2, pooled, logits]) onStage?.(stage);
    return logits;
  }

  buildLayersMirror(imageSize: number): tfl.LayersModel {
    const input = tfl.input({ shape: [imageSize, imageSize, 1], name: 'images' });
    let y: tfl.SymbolicTensor = input;
    for (const layer of [CONV1, CONV2]) {
      y = tfl.layers.zeroPadding2d({ padding: layer.padding, name: `${layer.name}_pad` }).apply(y) as tfl.SymbolicTensor;
      y = tfl.layers
        .conv2d({ name: layer.name, filters: layer.outChannels, kernelSize: layer.kernelSize, strides: layer.stride, activation: 'relu' })
        .apply(y) as tfl.SymbolicTensor;
    }
    y = tfl.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(y) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: CLASSES, name: 'dense' }).apply(y) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: logits, name: 'tiny_cnn' });
  }

  dispose(): void {
    this.params.dispose();
  }
}
