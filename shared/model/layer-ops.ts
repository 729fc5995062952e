import * as tf from '@tensorflow/tfjs-core';
import type { ConvLayer } from './resnet18-architecture.ts';
import type { ParameterSet } from './parameter-set.ts';
import { defaultBiasBound, fillUniform, xavierBound, type UniformSource } from './parameter-init.ts';

/**
 * Convolution + bias with PyTorch's symmetric zero padding. `inputIsData`: x is the images, whose
 * gradient nobody needs; the fused op's gradient always computes it, the plain conv2d's does not.
 */
export function convolve(x: tf.Tensor4D, params: ParameterSet, layer: ConvLayer, inputIsData = false): tf.Tensor4D {
  const p = layer.padding;
  const pad: [[number, number], [number, number], [number, number], [number, number]] | 'valid' =
    p === 0
      ? 'valid'
      : [
          [0, 0],
          [p, p],
          [p, p],
          [0, 0],
        ];
  const filter = params.get(`${layer.name}/kernel`) as tf.Tensor4D;
  const bias = params.get(`${layer.name}/bias`);
  if (inputIsData) return tf.add(tf.conv2d(x, filter, layer.stride, pad), bias);
  return tf.fused.conv2d({ x, filter, bias, strides: layer.stride, pad });
}

/** x [n, in] times `<name>/kernel` [in, out] plus `<name>/bias`. */
export function dense(x: tf.Tensor2D, params: ParameterSet, name: string): tf.Tensor2D {
  return tf.add(tf.matMul(x, params.get(`${name}/kernel`) as tf.Tensor2D), params.get(`${name}/bias`));
}

/** Adds a conv layer's kernel (Xavier-uniform) and bias (PyTorch default) to `params`. */
export function addConvParameters(params: ParameterSet, layer: ConvLayer, rng: UniformSource): void {
  const { kernelSize: k, inChannels, outChannels, name } = layer;
  const receptive = k * k;
  const kernel = fillUniform(new Float32Array(k * k * inChannels * outChannels), xavierBound(inChannels * receptive, outChannels * receptive), rng);
  params.add(`${name}/kernel`, kernel, [k, k, inChannels, outChannels], true);
  const bias = fillUniform(new Float32Array(outChannels), defaultBiasBound(inChannels * receptive), rng);
  params.add(`${name}/bias`, bias, [outChannels], true);
}

/** Adds a dense layer's kernel (Xavier-uniform) and bias (PyTorch default) to `params`. */
export function addDenseParameters(params: ParameterSet, name: string, inFeatures: number, outFeatures: number, rng: UniformSource): void {
  const kernel = fillUniform(new Float32Array(inFeatures * outFeatures), xavierBound(inFeatures, outFeatures), rng);
  params.add(`${name}/kernel`, kernel, [inFeatures, outFeatures], true);
  params.add(`${name}/bias`, fillUniform(new Float32Array(outFeatures), defaultBiasBound(inFeatures), rng), [outFeatures], true);
}
