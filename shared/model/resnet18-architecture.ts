/**
 * The seed's ResNet-18 (d2l.ai, chapter "Residual Networks") as data: every convolution, batch
 * norm and the classifier, in the order PyTorch's `nn.Sequential` lists them. The forward pass,
 * the parameter initialiser, the tfjs-layers checkpoint mirror and the PyTorch export all read
 * this one description, so they cannot drift apart.
 */

/** A 2-D convolution with bias, NHWC activations and HWIO filters; padding is symmetric. */
export interface ConvLayer {
  kind: 'conv';
  /** Layer name, also the prefix of its weight names (`<name>/kernel`, `<name>/bias`). */
  name: string;
  kernelSize: number;
  inChannels: number;
  outChannels: number;
  stride: number;
  /** Zero padding on each side, in pixels (PyTorch's `padding`). */
  padding: number;
}

/** Batch normalisation over the channel axis (`<name>/gamma|beta|moving_mean|moving_variance`). */
export interface BatchNormLayer {
  kind: 'batchnorm';
  name: string;
  channels: number;
}

/** conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the input (projected when `shortcut`), -> ReLU. */
export interface ResidualUnit {
  name: string;
  conv1: ConvLayer;
  bn1: BatchNormLayer;
  conv2: ConvLayer;
  bn2: BatchNormLayer;
  /** 1x1 convolution with the unit's stride, present when the unit changes size or width. */
  shortcut?: ConvLayer;
}

export interface ResNet18Architecture {
  inputChannels: number;
  classes: number;
  stem: { conv: ConvLayer; bn: BatchNormLayer; pool: { size: number; stride: number; padding: number } };
  /** Stages 2-5, two residual units each. */
  stages: ResidualUnit[][];
  dense: { name: string; inFeatures: number; outFeatures: number };
}

/** PyTorch BatchNorm defaults that the reference uses: momentum 0.1 on the new value, eps 1e-5. */
export const BATCH_NORM_MOMENTUM = 0.1;
export const BATCH_NORM_EPSILON = 1e-5;

/** Widths of stages 2-5. */
const STAGE_CHANNELS = [64, 128, 256, 512] as const;

function conv(name: string, kernelSize: number, inChannels: number, outChannels: number, stride: number, padding: number): ConvLayer {
  return { kind: 'conv', name, kernelSize, inChannels, outChannels, stride, padding };
}

function batchNorm(name: string, channels: number): BatchNormLayer {
  return { kind: 'batchnorm', name, channels };
}

function residualUnit(name: string, inChannels: number, outChannels: number, stride: number): ResidualUnit {
  const unit: ResidualUnit = {
    name,
    conv1: conv(`${name}_conv1`, 3, inChannels, outChannels, stride, 1),
    bn1: batchNorm(`${name}_bn1`, outChannels),
    conv2: conv(`${name}_conv2`, 3, outChannels, outChannels, 1, 1),
    bn2: batchNorm(`${name}_bn2`, outChannels),
  };
  if (stride !== 1 || inChannels !== outChannels) {
    unit.shortcut = conv(`${name}_shortcut`, 1, inChannels, outChannels, stride, 0);
  }
  return unit;
}

/** The d2l ResNet-18 for `inputChannels` x H x W images and `classes` outputs. */
export function resnet18Architecture(inputChannels = 1, classes = 10): ResNet18Architecture {
  const stages: ResidualUnit[][] = [];
  let width = 64;
  STAGE_CHANNELS.forEach((channels, index) => {
    const stage = index + 2;
    // The first stage keeps the stem's size; later stages halve it in their first unit.
    const stride = stage === 2 ? 1 : 2;
    stages.push([residualUnit(`stage${stage}_unit1`, width, channels, stride), residualUnit(`stage${stage}_unit2`, channels, channels, 1)]);
    width = channels;
  });
  return {
    inputChannels,
    classes,
    stem: {
      conv: conv('stem_conv', 7, inputChannels, 64, 2, 2),
      bn: batchNorm('stem_bn', 64),
      pool: { size: 3, stride: 2, padding: 1 },
    },
    stages,
    dense: { name: 'dense', inFeatures: width, outFeatures: classes },
  };
}

/** Every convolution and batch norm in forward order, then the dense layer's name. */
export function layersInOrder(arch: ResNet18Architecture): (ConvLayer | BatchNormLayer)[] {
  const layers: (ConvLayer | BatchNormLayer)[] = [arch.stem.conv, arch.stem.bn];
  for (const unit of arch.stages.flat()) {
    layers.push(unit.conv1, unit.bn1, unit.conv2, unit.bn2);
    if (unit.shortcut) layers.push(unit.shortcut);
  }
  return layers;
}
