/**
 * The onednn backend's convolution kernels against the pure-JavaScript cpu backend, on the
 * ResNet-18 layer shapes (28x28 Fashion-MNIST inputs at batch 2, and the first layers at
 * 96x96, batch 1) and on edge shapes: batch 1, odd sizes, stride 2 over odd inputs,
 * valid/same/explicit and asymmetric padding, ceil rounding, non-square filters, dilation, and
 * filters with taps that only ever meet padding (which the native code crops away).
 *
 * Tolerance: max|onednn - cpu| / max|cpu| <= 1e-4. Both compute in float32 but sum in
 * different orders (oneDNN blocks over channels and spatial tiles); the difference of two
 * float32 sums of K terms is about sqrt(K) * 6e-8 of the terms' scale: under 2e-5 for the
 * largest reductions here (K = 4608 for a 3x3x512 filter, 2*13*13 = 338 rows x 49 taps for
 * filter gradients). 1e-4 leaves a 5x margin, while an indexing or padding bug gives errors
 * of order 1.
 *
 * The addon must be built (CI installs libdnnl-dev): without it every test fails.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { registerOnednnBackend, onednnUnavailableReason } from '../shared/backend/onednn/register.ts';
import { compareBackends, seededInput, type InputSpec } from './helpers/backend-comparison.ts';
import { loadAddon } from '../shared/backend/onednn/addon.ts';
import '../shared/train/register-gradients.ts';

const TOLERANCE = 1e-4;

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

interface ConvCase {
  name: string;
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
  dilations?: number;
  rounding?: 'floor' | 'round' | 'ceil';
}

const p = (n: number): tf.backend_util.ExplicitPadding => [
  [0, 0],
  [n, n],
  [n, n],
  [0, 0],
];

/** ResNet-18 convolutions for 28x28x1 inputs, batch 2 (stem pads 2 as the model does). */
const RESNET_28: ConvCase[] = [
  { name: 'stem 7x7/2 28->13', x: [2, 28, 28, 1], filter: [7, 7, 1, 64], strides: 2, pad: p(2) },
  { name: 'stage2 3x3 64 at 7', x: [2, 7, 7, 64], filter: [3, 3, 64, 64], strides: 1, pad: p(1) },
  { name: 'stage3 3x3/2 64->128 7->4', x: [2, 7, 7, 64], filter: [3, 3, 64, 128], strides: 2, pad: p(1) },
  { name: 'stage3 1x1/2 projection', x: [2, 7, 7, 64], filter: [1, 1, 64, 128], strides: 2, pad: 'valid' },
  { name: 'stage3 3x3 128 at 4', x: [2, 4, 4, 128], filter: [3, 3, 128, 128], strides: 1, pad: p(1) },
  { name: 'stage4 3x3/2 128->256 4->2', x: [2, 4, 4, 128], filter: [3, 3, 128, 256], strides: 2, pad: p(1) },
  { name: 'stage4 1x1/2 projection', x: [2, 4, 4, 128], filter: [1, 1, 128, 256], strides: 2, pad: 'valid' },
  { name: 'stage4 3x3 256 at 2', x: [2, 2, 2, 256], filter: [3, 3, 256, 256], strides: 1, pad: p(1) },
  { name: 'stage5 3x3/2 256->512 2->1', x: [2, 2, 2, 256], filter: [3, 3, 256, 512], strides: 2, pad: p(1) },
  { name: 'stage5 1x1/2 projection', x: [2, 2, 2, 256], filter: [1, 1, 256, 512], strides: 2, pad: 'valid' },
  { name: 'stage5 3x3 512 at 1', x: [2, 1, 1, 512], filter: [3, 3, 512, 512], strides: 1, pad: p(1) },
];

/** The first ResNet-18 convolutions for 96x96 inputs, batch 1. */
const RESNET_96: ConvCase[] = [
  { name: 'stem 7x7/2 96->47', x: [1, 96, 96, 1], filter: [7, 7, 1, 64], strides: 2, pad: p(2) },
  { name: 'stage3 3x3/2 64->128 24->12', x: [1, 24, 24, 64], filter: [3, 3, 64, 128], strides: 2, pad: p(1) },
];

const EDGES: ConvCase[] = [
  { name: 'batch 1, odd 11x13, stride 2, valid', x: [1, 11, 13, 3], filter: [3, 3, 3, 5], strides: 2, pad: 'valid' },
  { name: 'same, stride 2, 5x5 filter over 10x9', x: [3, 10, 9, 5], filter: [5, 5, 5, 7], strides: 2, pad: 'same' },
  { name: 'same, stride 1, odd channels', x: [2, 7, 5, 3], filter: [3, 3, 3, 17], strides: 1, pad: 'same' },
  {
    name: 'explicit asymmetric, 3x2 filter, strides [2,1]',
    x: [2, 9, 8, 4],
    filter: [3, 2, 4, 6],
    strides: [2, 1],
    pad: [
      [0, 0],
      [0, 2],
      [1, 0],
      [0, 0],
    ],
  },
  { name: 'numeric pad 1 with ceil rounding', x: [1, 8, 8, 2], filter: [3, 3, 2, 3], strides: 2, pad: 1, rounding: 'ceil' },
  { name: 'filter larger than input, same', x: [2, 1, 1, 8], filter: [3, 3, 8, 4], strides: 1, pad: 'same' },
  { name: 'valid with unread trailing rows', x: [1, 8, 8, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'valid' },
  // Only some filter taps ever read input here: the native code crops the filter.
  { name: '5x5 over 2x3 with pad 2, cropped taps', x: [3, 2, 3, 6], filter: [5, 5, 6, 5], strides: 1, pad: p(2) },
  { name: '3x3/2 over 2x2, only the lower-right 2x2 taps read', x: [2, 2, 2, 8], filter: [3, 3, 8, 4], strides: 2, pad: p(1) },
];

const DILATED: ConvCase[] = [
  { name: 'dilation 2, same', x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same', dilations: 2 },
  { name: 'dilation 2 over 2x2: only the centre tap reads input', x: [2, 2, 2, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same', dilations: 2 },
];

function outputShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.filter as [number, number, number, number],
    c.strides,
    c.dilations ?? 1,
    c.pad,
    c.rounding,
  );
  return info.outShape;
}

function inputsFor(c: ConvCase, seed: number): InputSpec[] {
  return [seededInput(c.x, seed), seededInput(c.filter, seed + 1, 0.5)];
}

async function assertClose(t: import('ava').ExecutionContext, inputs: InputSpec[], compute: (...ts: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<void> {
  const { error, shapesMatch, actual } = await compareBackends('onednn', 'cpu', inputs, compute);
  t.true(shapesMatch, `shapes ${JSON.stringify(actual.shapes)}`);
  t.true(error <= TOLERANCE, `scaled error ${error}`);
}

test.before(async (t) => {
  const ok = await registerOnednnBackend({ threads: 2 });
  if (!ok) t.fail(`onednn addon unavailable: ${onednnUnavailableReason()}`);
});

test.after.always(async () => {
  await tf.setBackend('cpu');
});

const ALL = [...RESNET_28, ...RESNET_96, ...EDGES];

test.serial('Conv2D matches the cpu backend on ResNet-18 and edge shapes', async (t) => {
  for (const c of [...ALL, ...DILATED]) {
    await assertClose(t, inputsFor(c, 11), (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad, 'NHWC', c.dilations ?? 1, c.rounding));
  }
});

test.serial('FusedConv2D with bias and relu matches the cpu backend', async (t) => {
  for (const c of [...ALL, ...DILATED]) {
    const bias = seededInput([c.filter[3]], 5, 0.5);
    for (const activation of ['relu', 'linear'] as const) {
      await assertClose(t, [...inputsFor(c, 21), bias], (x, w, b) =>
        tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: w as tf.Tensor4D,
          bias: b,
          strides: c.strides,
          pad: c.pad,
          dilations: c.dilations ?? 1,
          dimRoundingMode: c.rounding,
          activation,
        }),
      );
    }
  }
});

test.serial('FusedConv2D falls back to the cpu kernel for activations it does not fuse', async (t) => {
  const c = EDGES[0];
  await assertClose(t, [...inputsFor(c, 31), seededInput([c.filter[3]], 6)], (x, w, b) =>
    tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, bias: b, strides: c.strides, pad: c.pad, activation: 'elu' }),
  );
});

test.serial('Conv2DBackpropInput matches the cpu backend', async (t) => {
  for (const c of ALL) {
    const dy = seededInput(outputShape(c), 41);
    await assertClose(
      t,
      [dy, seededInput(c.filter, 42, 0.5)],
      (dyT, w) =>
        tf.engine().runKernel(
          'Conv2DBackpropInput',
          { dy: dyT, filter: w },
          {
            inputShape: c.x,
            strides: c.strides,
            pad: c.pad,
            dataFormat: 'NHWC',
            ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
          },
        ) as tf.Tensor,
    );
  }
});

test.serial('Conv2DBackpropFilter matches the cpu backend', async (t) => {
  for (const c of ALL) {
    const dy = seededInput(outputShape(c), 51);
    await assertClose(
      t,
      [seededInput(c.x, 52), dy],
      (x, dyT) =>
        tf.engine().runKernel(
          'Conv2DBackpropFilter',
          { x, dy: dyT },
          {
            filterShape: c.filter,
            strides: c.strides,
            pad: c.pad,
            dataFormat: 'NHWC',
            ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
          },
        ) as tf.Tensor,
    );
  }
});

test.serial('gradients of a fused conv + relu agree with the cpu backend', async (t) => {
  const c = RESNET_28[2];
  const bias = seededInput([c.filter[3]], 61, 0.5);
  const r = seededInput(outputShape(c), 62);
  await assertClose(t, [...inputsFor(c, 63), bias, r], (x, w, b, weights) => {
    const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(
        tf.mul(tf.fused.conv2d({ x: xi as tf.Tensor4D, filter: wi as tf.Tensor4D, bias: bi, strides: c.strides, pad: c.pad, activation: 'relu' }), weights),
      );
    return tf.grads(f)([x, w, b]);
  });
});

test.serial('NCHW convolutions run (on the cpu fallback) and match', async (t) => {
  const nchw = { values: seededInput([2, 3, 7, 6], 71).values, shape: [2, 3, 7, 6] };
  await assertClose(t, [nchw, seededInput([3, 3, 3, 4], 72)], (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same', 'NCHW'));
});

test.serial('native convolutions cache one plan per shape and direction', async (t) => {
  const addon = loadAddon();
  t.truthy(addon);
  await tf.setBackend('onednn');
  const c = EDGES[1];
  const before = addon!.stats().convolutionPlans;
  tf.tidy(() => {
    const x = tf.tensor4d(seededInput(c.x, 81).values, c.x as [number, number, number, number]);
    const w = tf.tensor4d(seededInput(c.filter, 82).values, c.filter as [number, number, number, number]);
    for (let i = 0; i < 3; i++) tf.conv2d(x, w, c.strides, c.pad);
  });
  // The shape was seen by earlier tests or is new: at most one plan added for three calls.
  t.true(addon!.stats().convolutionPlans - before <= 1);
});
