/**
 * The wasm training kernels (shared/backend/wasm-kernels) against the pure-JavaScript cpu
 * backend on seeded random data: strides 1 and 2, kernels 1, 3 and 7, 'same', 'valid' and
 * explicit (also asymmetric) padding, odd sizes, batch 1; both Conv2DBackpropInput paths
 * (col2im below 16 input channels, stride phases above).
 *
 * Tolerance: max|wasm - cpu| / max|cpu| <= 1e-4. Both sides compute in float32 but sum in
 * different orders (XNNPACK's GEMM tiles against the cpu backend's loops); two float32 sums of
 * K terms differ by about sqrt(K) * 6e-8 of the terms' scale, under 1e-5 for the largest
 * reductions here (a few thousand terms: 7x7 taps x 8 channels, 2 x 15 x 15 pixels), so 1e-4
 * leaves a wide margin while an indexing or padding mistake gives errors of order 1.
 *
 * Every test here switches between the two backends, so they run serially.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { registerWasmTrainingKernels, wasmTrainingKernels } from '../shared/backend/wasm-kernels/index.ts';
import { compareBackends, seededInput } from './helpers/backend-comparison.ts';
import { seededValues } from './helpers/seeded-values.ts';
import '../shared/train/register-gradients.ts';
import { sgdUpdate } from '../shared/backend/sgd-update.ts';

const TOLERANCE = 1e-4;

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

interface ConvCase {
  x: [number, number, number, number];
  kernel: [number, number];
  outChannels: number;
  stride: number;
  pad: Pad;
}

const explicit = (top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding => [
  [0, 0],
  [top, bottom],
  [left, right],
  [0, 0],
];

const CONV_CASES: ConvCase[] = [
  // ResNet-18's shapes, scaled down: stem, 3x3 units, 1x1 shortcut.
  { x: [2, 15, 15, 1], kernel: [7, 7], outChannels: 8, stride: 2, pad: explicit(2, 2, 2, 2) },
  { x: [2, 9, 9, 16], kernel: [3, 3], outChannels: 8, stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 9, 9, 17], kernel: [3, 3], outChannels: 8, stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [2, 9, 9, 16], kernel: [1, 1], outChannels: 8, stride: 2, pad: 'valid' },
  // Batch 1, odd and non-square sizes, 'same' and 'valid', few channels (col2im path).
  { x: [1, 11, 13, 3], kernel: [3, 3], outChannels: 5, stride: 1, pad: 'same' },
  { x: [1, 10, 10, 3], kernel: [3, 3], outChannels: 5, stride: 2, pad: 'same' },
  { x: [2, 8, 8, 3], kernel: [3, 3], outChannels: 4, stride: 2, pad: 'valid' },
  { x: [1, 13, 13, 2], kernel: [7, 7], outChannels: 3, stride: 1, pad: 'valid' },
  { x: [3, 7, 7, 4], kernel: [1, 1], outChannels: 6, stride: 1, pad: 'valid' },
  // 7x7 and odd sizes through the phase path; asymmetric explicit padding.
  { x: [1, 13, 11, 16], kernel: [7, 7], outChannels: 3, stride: 2, pad: explicit(2, 2, 2, 2) },
  { x: [2, 12, 12, 16], kernel: [7, 7], outChannels: 4, stride: 2, pad: 'same' },
  { x: [1, 9, 8, 16], kernel: [3, 3], outChannels: 4, stride: 2, pad: explicit(2, 0, 0, 1) },
  { x: [2, 8, 8, 20], kernel: [3, 3], outChannels: 4, stride: 2, pad: 'valid' },
  // Small images: taps that only meet padding are dropped (1x1 and 2x2 inputs, as ResNet's
  // last stage at 28x28), and dy is smaller than the weights (the swapped-roles input
  // gradient, with dilation 2 for stride 2).
  { x: [2, 1, 1, 24], kernel: [3, 3], outChannels: 20, stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [3, 2, 2, 16], kernel: [3, 3], outChannels: 24, stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [1, 2, 2, 16], kernel: [3, 3], outChannels: 8, stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 3, 3, 32], kernel: [3, 3], outChannels: 32, stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 6, 6, 16], kernel: [3, 3], outChannels: 32, stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [1, 1, 3, 17], kernel: [3, 3], outChannels: 9, stride: 1, pad: 'same' },
  // 1x1 filters (a matMul for the filter gradient): padded, odd channel counts.
  { x: [2, 5, 5, 16], kernel: [1, 1], outChannels: 8, stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [1, 3, 3, 7], kernel: [1, 1], outChannels: 5, stride: 1, pad: 'valid' },
];

const describe = (c: ConvCase) => `x ${c.x.join('x')}, ${c.kernel.join('x')}x${c.outChannels}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;

function convOutputShape(c: ConvCase): number[] {
  const filter: [number, number, number, number] = [...c.kernel, c.x[3], c.outChannels];
  return tf.backend_util.computeConv2DInfo(c.x, filter, c.stride, 1, c.pad).outShape;
}

test.before(async () => {
  const selected = await selectBackend('wasm');
  if (selected.name !== 'wasm') throw new Error(`expected wasm, got ${selected.name}`);
});

test.serial('registering the kernels again keeps exactly one registration of each', (t) => {
  registerWasmTrainingKernels();
  registerWasmTrainingKernels();
  for (const config of wasmTrainingKernels) t.is(tf.getKernel(config.kernelName, 'wasm'), config, config.kernelName);
});

for (const c of CONV_CASES) {
  const filterShape = [...c.kernel, c.x[3], c.outChannels];
  const attrs: tf.NamedAttrMap = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC' };

  // Each filter is run twice: new weights may take the swapped-roles route, weights seen
  // before the stock one (whose packed operator XNNPACK caches).
  test.serial(`Conv2D and FusedConv2D (bias, relu) match cpu, with new and with seen weights: ${describe(c)}`, async (t) => {
    const inputs = [seededInput(c.x, 11), seededInput(filterShape, 12), seededInput([c.outChannels], 13)];
    const { error, shapesMatch, reference } = await compareBackends('wasm', 'cpu', inputs, (x, filter, bias) => {
      const fused = () => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: filter as tf.Tensor4D, bias, strides: c.stride, pad: c.pad, activation: 'relu' });
      const other = tf.mul(filter, 1) as tf.Tensor4D;
      const plain = () => tf.conv2d(x as tf.Tensor4D, other, c.stride, c.pad);
      return [fused(), fused(), plain(), plain()];
    });
    t.true(shapesMatch);
    t.deepEqual(reference.shapes[0], convOutputShape(c));
    t.true(error <= TOLERANCE, `scaled error ${error}`);
  });

  test.serial(`Conv2DBackpropInput matches cpu: ${describe(c)}`, async (t) => {
    const inputs = [seededInput(convOutputShape(c), 1), seededInput(filterShape, 2)];
    const { error, shapesMatch, reference } = await compareBackends(
      'wasm',
      'cpu',
      inputs,
      (dy, filter) => tf.engine().runKernel('Conv2DBackpropInput', { dy: dy, filter: filter }, { ...attrs, inputShape: c.x }) as tf.Tensor,
    );
    t.true(shapesMatch);
    t.deepEqual(reference.shapes[0], c.x);
    t.true(error <= TOLERANCE, `scaled error ${error}`);
  });

  test.serial(`Conv2DBackpropFilter matches cpu: ${describe(c)}`, async (t) => {
    const inputs = [seededInput(c.x, 3), seededInput(convOutputShape(c), 4)];
    const { error, shapesMatch, reference } = await compareBackends(
      'wasm',
      'cpu',
      inputs,
      (x, dy) => tf.engine().runKernel('Conv2DBackpropFilter', { x: x, dy: dy }, { ...attrs, filterShape }) as tf.Tensor,
    );
    t.true(shapesMatch);
    t.deepEqual(reference.shapes[0], filterShape);
    t.true(error <= TOLERANCE, `scaled error ${error}`);
  });
}

const POOL_CASES: { x: number[]; size: number; stride: number; pad: 'same' | 'valid' | number }[] = [
  { x: [2, 15, 15, 8], size: 3, stride: 2, pad: 1 },
  { x: [1, 10, 9, 3], size: 3, stride: 2, pad: 'same' },
  { x: [2, 9, 9, 4], size: 2, stride: 2, pad: 'valid' },
  { x: [1, 7, 8, 5], size: 3, stride: 1, pad: 'same' },
];

for (const c of POOL_CASES) {
  test.serial(`MaxPoolGrad matches cpu: x ${c.x.join('x')}, ${c.size}x${c.size} stride ${c.stride} pad ${c.pad}`, async (t) => {
    const outShape = tf.backend_util.computePool2DInfo(c.x as [number, number, number, number], c.size, c.stride, 1, c.pad).outShape;
    const { error, shapesMatch } = await compareBackends('wasm', 'cpu', [seededInput(c.x, 5), seededInput(outShape, 6)], (x, dy) => {
      const y = tf.maxPool(x as tf.Tensor4D, c.size, c.stride, c.pad);
      return tf.engine().runKernel('MaxPoolGrad', { dy: dy, input: x, output: y }, { filterSize: c.size, strides: c.stride, pad: c.pad }) as tf.Tensor;
    });
    t.true(shapesMatch);
    t.true(error <= TOLERANCE, `scaled error ${error}`);
  });
}

const TILE_CASES: { shape: number[]; reps: number[] }[] = [
  { shape: [1, 1, 1, 5], reps: [2, 3, 4, 1] },
  { shape: [2, 3], reps: [2, 2] },
  { shape: [3, 1, 2], reps: [1, 4, 3] },
  { shape: [4], reps: [3] },
  { shape: [2, 2, 3], reps: [1, 1, 1] },
];

for (const c of TILE_CASES) {
  test.serial(`Tile equals cpu for float32, int32 and bool: ${c.shape.join('x')} by ${c.reps.join('x')}`, async (t) => {
    const values = seededValues(
      c.shape.reduce((a, b) => a * b, 1),
      7,
      100,
    );
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        // Bool from 0/1 data: the stock wasm Cast to bool truncates instead of testing != 0.
        const data = dtype === 'bool' ? values.map((v) => (v > 0 ? 1 : 0)) : values;
        return tf.tidy(() => tf.tile(tf.tensor(data, c.shape, dtype), c.reps).arraySync());
      };
      const expected = await run('cpu');
      t.deepEqual(await run('wasm'), expected, dtype);
    }
  });
}

const REDUCTION_CASES: { axes: number[]; keepDims: boolean }[] = [
  { axes: [0, 1, 2], keepDims: false },
  { axes: [1, 2], keepDims: false },
  { axes: [0], keepDims: true },
  { axes: [1], keepDims: false },
  { axes: [0, 1], keepDims: true },
  // Shapes the stock kernels keep: innermost, and not one run of axes.
  { axes: [3], keepDims: false },
  { axes: [2, 3], keepDims: true },
  { axes: [0, 2], keepDims: false },
];

for (const c of REDUCTION_CASES) {
  test.serial(`Sum and Mean match cpu over axes ${c.axes.join(',')}${c.keepDims ? ' keeping dims' : ''}`, async (t) => {
    const { error, shapesMatch } = await compareBackends('wasm', 'cpu', [seededInput([3, 5, 7, 6], 8)], (x) => [
      tf.sum(x, c.axes, c.keepDims),
      tf.mean(x, c.axes, c.keepDims),
    ]);
    t.true(shapesMatch);
    t.true(error <= TOLERANCE, `scaled error ${error}`);
  });
}

/**
 * A tiny net with every op the ResNet-18 training step uses: fused conv (7x7 stride 2 pad 2,
 * 3x3 stride 1 and 2 pad 1, 1x1 stride 2, with bias where it reaches the loss: a bias in front
 * of batch norm has a gradient of zero up to rounding, which no relative error can compare),
 * batch norm on batch moments, relu, max pool 3x3 stride 2 pad 1, mean over [1, 2], matMul,
 * logSoftmax cross-entropy on oneHot labels.
 */
function tinyNetLoss(x: tf.Tensor4D, labels: tf.Tensor1D, w: tf.Tensor[]): tf.Scalar {
  const [stem, gamma, beta, conv3, conv3s2, downBias, shortcut, shortcutBias, dense] = w as [
    tf.Tensor4D,
    tf.Tensor1D,
    tf.Tensor1D,
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor1D,
    tf.Tensor4D,
    tf.Tensor1D,
    tf.Tensor2D,
  ];
  const p = (n: number) => explicit(n, n, n, n);
  const bn = (h: tf.Tensor4D): tf.Tensor4D => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.batchNorm(h, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, 1e-5);
  };
  let h = tf.fused.conv2d({ x, filter: stem, strides: 2, pad: p(2) });
  h = tf.maxPool(tf.relu(bn(h)), 3, 2, 1);
  h = tf.relu(tf.add(bn(tf.fused.conv2d({ x: h, filter: conv3, strides: 1, pad: p(1) })), h)) as tf.Tensor4D;
  const down = tf.fused.conv2d({ x: h, filter: conv3s2, bias: downBias, strides: 2, pad: p(1) });
  h = tf.relu(tf.add(down, tf.fused.conv2d({ x: h, filter: shortcut, bias: shortcutBias, strides: 2, pad: 'valid' }))) as tf.Tensor4D;
  const logits = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, dense);
  const oneHot = tf.oneHot(tf.cast(labels, 'int32'), 10);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

test.serial('a training step of a net with every model op runs on wasm with gradients matching cpu', async (t) => {
  const c = 6;
  const shapes = [[7, 7, 1, c], [c], [c], [3, 3, c, c], [3, 3, c, 2 * c], [2 * c], [1, 1, c, 2 * c], [2 * c], [2 * c, 10]];
  const inputs = [
    seededInput([4, 23, 23, 1], 10),
    { values: Float32Array.from([1, 3, 3, 9]), shape: [4] },
    ...shapes.map((shape, i) => seededInput(shape, 20 + i, 0.5)),
  ];
  const grads = (x: tf.Tensor, labels: tf.Tensor, ...w: tf.Tensor[]) =>
    tf.grads((...ws: tf.Tensor[]) => tinyNetLoss(x as tf.Tensor4D, labels as tf.Tensor1D, ws))(w);
  const { error, shapesMatch, actual } = await compareBackends('wasm', 'cpu', inputs, grads);
  t.true(shapesMatch);
  t.is(actual.values.length, shapes.length);
  t.true(error <= TOLERANCE, `scaled error ${error}`);

  const before = tf.memory().numTensors;
  await compareBackends('wasm', 'cpu', inputs, grads);
  t.is(tf.memory().numTensors, before, 'no tensors leak from a step');
});

test.serial('cropped filters are cached while their weights live and freed after', async (t) => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const other = tf.tensor4d(seededValues(9 * 4 * 4, 31), [3, 3, 4, 4]);
  const x = tf.tensor4d(seededValues(2 * 4, 32), [2, 1, 1, 4]);
  // A 1x1 image under a padded 3x3 filter: only the centre tap is used, and cached.
  const step = (w: tf.Tensor4D) =>
    tf.tidy(() => {
      const dy = tf.ones([2, 1, 1, 4]);
      tf.conv2d(x, w, 1, 'same').dataSync();
      (
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape }) as tf.Tensor
      ).dataSync();
    });
  // Also drops the crops of filters that earlier tests disposed.
  step(other);
  const baseline = backend.numDataIds();
  const weights = tf.tensor4d(seededValues(9 * 4 * 4, 33), [3, 3, 4, 4]);
  step(weights);
  const withCache = backend.numDataIds();
  t.is(withCache, baseline + 2, 'the weights and their one cached crop');
  step(weights);
  t.is(backend.numDataIds(), withCache, 'a second pass reuses the crop');
  weights.dispose();
  step(other);
  t.is(backend.numDataIds(), baseline, "the disposed weights' crop is freed");
  tf.dispose([x, other]);
});

test.serial('sgdUpdate on wasm gives the bits of assign(sub(p, mul(g, lr))) on cpu, never writing into the old weights', async (t) => {
  const size = 17 * 241;
  const initial = seededValues(size, 60);
  const gradients = [1, 2, 3].map((i) => seededValues(size, 60 + i));
  await tf.setBackend('cpu');
  const reference = tf.variable(tf.tensor2d(initial, [17, 241]));
  for (const g of gradients) tf.tidy(() => reference.assign(tf.sub(reference, tf.mul(tf.tensor2d(g, [17, 241]), 0.05))));
  const expected = reference.dataSync().slice();
  reference.dispose();

  await tf.setBackend('wasm');
  const p = tf.variable(tf.tensor2d(initial, [17, 241]));
  const before = tf.memory().numTensors;
  const snapshot = p.clone(); // shares p's data, as a cached packed filter would: it must not change
  sgdUpdate(p, gradients[0], 0.05);
  t.deepEqual(Float32Array.from(snapshot.dataSync()), initial);
  snapshot.dispose();
  for (const g of gradients.slice(1)) sgdUpdate(p, g, 0.05);
  t.deepEqual(Float32Array.from(p.dataSync()), expected);
  t.is(tf.memory().numTensors, before);
  p.dispose();
});
