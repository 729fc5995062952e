import * as tfl from '@tensorflow/tfjs-layers';
import type { ConvLayer, BatchNormLayer, ResNet18Architecture, ResidualUnit } from './resnet18-architecture.ts';
import { BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM } from './resnet18-architecture.ts';

/**
 * The same network as a tfjs-layers functional model, used only to describe checkpoints in the
 * format `tf.loadLayersModel` reads. Layer names equal our parameter prefixes, so weight names
 * (`stem_conv/kernel`, ...) line up one to one. PyTorch's symmetric padding is a ZeroPadding2D
 * before a 'valid' convolution ('same' pads asymmetrically for stride 2); zero padding before
 * the max pool equals PyTorch's -inf padding because the pool follows a ReLU (inputs >= 0).
 */
export function buildLayersMirror(arch: ResNet18Architecture, imageSize: number): tfl.LayersModel {
  const input = tfl.input({ shape: [imageSize, imageSize, arch.inputChannels], name: 'images' });
  let y = conv(input, arch.stem.conv);
  y = tfl.layers.reLU({ name: 'stem_relu' }).apply(batchNorm(y, arch.stem.bn)) as tfl.SymbolicTensor;
  const pool = arch.stem.pool;
  y = tfl.layers.zeroPadding2d({ padding: pool.padding, name: 'stem_pool_pad' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.maxPooling2d({ poolSize: pool.size, strides: pool.stride, padding: 'valid', name: 'stem_pool' }).apply(y) as tfl.SymbolicTensor;
  for (const unit of arch.stages.flat()) y = residual(y, unit);
  y = tfl.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(y) as tfl.SymbolicTensor;
  const { name, outFeatures } = arch.dense;
  const logits = tfl.layers.dense({ units: outFeatures, name }).apply(y) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: 'resnet18' });
}

function residual(x: tfl.SymbolicTensor, unit: ResidualUnit): tfl.SymbolicTensor {
  let y = batchNorm(conv(x, unit.conv1), unit.bn1);
  y = tfl.layers.reLU({ name: `${unit.name}_relu1` }).apply(y) as tfl.SymbolicTensor;
  y = batchNorm(conv(y, unit.conv2), unit.bn2);
  const shortcut = unit.shortcut ? conv(x, unit.shortcut) : x;
  const sum = tfl.layers.add({ name: `${unit.name}_add` }).apply([y, shortcut]) as tfl.SymbolicTensor;
  return tfl.layers.reLU({ name: `${unit.name}_relu2` }).apply(sum) as tfl.SymbolicTensor;
}

function conv(x: tfl.SymbolicTensor, layer: ConvLayer): tfl.SymbolicTensor {
  const padded = layer.padding === 0 ? x : (tfl.layers.zeroPadding2d({ padding: layer.padding, name: `${layer.name}_pad` }).apply(x) as tfl.SymbolicTensor);
  return tfl.layers
    .conv2d({
      name: layer.name,
      filters: layer.outChannels,
      kernelSize: layer.kernelSize,
      strides: layer.stride,
      padding: 'valid',
      useBias: true,
    })
    .apply(padded) as tfl.SymbolicTensor;
}

function batchNorm(x: tfl.SymbolicTensor, layer: BatchNormLayer): tfl.SymbolicTensor {
  return tfl.layers
    .batchNormalization({
      name: layer.name,
      axis: -1,
      // tfjs-layers keeps `momentum` of the old value; PyTorch's momentum weighs the new one.
      momentum: 1 - BATCH_NORM_MOMENTUM,
      epsilon: BATCH_NORM_EPSILON,
    })
    .apply(x) as tfl.SymbolicTensor;
}
