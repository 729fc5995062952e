/**
 * The wasm backend's fused batch-norm training kernels (shared/backend/wasm-kernels) against
 * the cpu backend, where batchNormTraining() is the composite tf.moments + tf.batchNorm +
 * tf.relu and its gradient is tfjs's tape through those ops.
 *
 * Tolerance: max|wasm - cpu| / max|cpu| <= 1e-4 per output. The wasm kernels sum in float64;
 * the cpu composite sums in float32 over up to a few thousand rows here, then subtracts
 * nearly equal terms in the gradient (g - mean(g) - xhat mean(g xhat)), so its rounding error
 * is some 1e-6 of the output's scale; 1e-4 leaves a wide margin while a wrong term (a missed
 * 1/n, the ReLU mask, a dropped dmean or dvariance) gives errors of order 1e-1 or more.
 *
 * Every test switches between the two backends, so they run serially.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compareBackends, seededInput, type InputSpec } from './helpers/backend-comparison.ts';
import { seededValues } from './helpers/seeded-values.ts';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from '../shared/backend/onednn/batch-norm-kernels.ts';
import { batchNormTraining } from '../shared/backend/onednn/batch-norm-training.ts';
import '../shared/train/register-gradients.ts';

const TOLERANCE = 1e-4;
const EPSILON = 1e-5;

test.before(async () => {
  const selected = await selectBackend('wasm');
  if (selected.name !== 'wasm') throw new Error(`expected wasm, got ${selected.name}`);
});

/** Shapes covering batch 1, odd channel counts, one pixel per example and rank 2. */
const SHAPES: number[][] = [
  [4, 7, 7, 16],
  [1, 5, 6, 3],
  [1, 1, 1, 5],
  [3, 1, 1, 9],
  [2, 9, 9, 64],
  [6, 11],
];

/** x scaled and shifted so that the statistics are not 0 and 1 to begin with. */
function bnInputs(shape: number[], seed: number): InputSpec[] {
  const channels = shape[shape.length - 1];
  const x = seededInput(shape, seed, 2);
  for (let i = 0; i < x.values.length; i++) x.values[i] = x.values[i] + 0.3 * ((i % channels) - channels / 2);
  const scale = { values: seededValues(channels, seed + 1).map((v) => 1 + 0.5 * v), shape: [channels] };
  return [x, scale, seededInput([channels], seed + 2)];
}

/** The fused kernel when on wasm (asserting it is registered), the composite op elsewhere. */
function forward(x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, relu: boolean): tf.Tensor[] {
  if (tf.getBackend() === 'wasm') {
    if (tf.getKernel(BATCH_NORM_TRAINING, 'wasm') === undefined) throw new Error('fused kernel not registered on wasm');
    return tf.engine().runKernel(BATCH_NORM_TRAINING, { x, scale, offset }, { epsilon: EPSILON, relu }) as tf.Tensor[];
  }
  const { y, mean, variance } = batchNormTraining(x, scale, offset, EPSILON, { relu });
  return [y, mean, variance];
}

for (const shape of SHAPES) {
  for (const relu of [false, true]) {
    test.serial(`forward kernel matches cpu: x ${shape.join('x')}${relu ? ' + relu' : ''}`, async (t) => {
      const { error, shapesMatch, actual } = await compareBackends('wasm', 'cpu', bnInputs(shape, 11), (x, scale, offset) =>
        forward(x, scale as tf.Tensor1D, offset as tf.Tensor1D, relu),
      );
      t.true(shapesMatch);
      t.deepEqual(actual.shapes, [shape, [shape[shape.length - 1]], [shape[shape.length - 1]]]);
      t.log(`scaled error ${error.toExponential(2)}`);
      t.true(error <= TOLERANCE, `scaled error ${error}`);
    });
  }
}

/**
 * A loss that reaches every output: y through seeded weights (so each element's gradient
 * differs), mean and variance directly (so dmean and dvariance are not zero).
 */
function lossOfAll(x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, w: tf.Tensor, a: tf.Tensor, b: tf.Tensor, relu: boolean): tf.Scalar {
  const { y, mean, variance } = batchNormTraining(x, scale, offset, EPSILON, { relu });
  return tf.addN([tf.sum(tf.mul(y, w)), tf.sum(tf.mul(mean, a)), tf.sum(tf.mul(variance, b))]) as tf.Scalar;
}

for (const shape of SHAPES) {
  for (const relu of [false, true]) {
    test.serial(`gradients (dx, dscale, doffset, via y, mean and variance) match cpu: x ${shape.join('x')}${relu ? ' + relu' : ''}`, async (t) => {
      const channels = shape[shape.length - 1];
      const inputs = [...bnInputs(shape, 21), seededInput(shape, 24), seededInput([channels], 25), seededInput([channels], 26)];
      const { error, shapesMatch, actual } = await compareBackends('wasm', 'cpu', inputs, (x, scale, offset, w, a, b) =>
        tf.grads((xx: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => lossOfAll(xx, s as tf.Tensor1D, o as tf.Tensor1D, w, a, b, relu))([x, scale, offset]),
      );
      t.true(shapesMatch);
      t.deepEqual(actual.shapes, [shape, [channels], [channels]]);
      t.log(`scaled error ${error.toExponential(2)}`);
      t.true(error <= TOLERANCE, `scaled error ${error}`);
    });
  }
}

test.serial('the gradient kernel without dmean and dvariance equals the one given zeros', async (t) => {
  await tf.setBackend('wasm');
  const shape = [2, 5, 5, 7];
  const [x, scale, offset] = bnInputs(shape, 31).map((s) => tf.tensor(s.values, s.shape));
  const dy = tf.tensor(seededValues(2 * 5 * 5 * 7, 32), shape);
  const [y, mean, variance] = forward(x, scale as tf.Tensor1D, offset as tf.Tensor1D, true);
  const inputs = { dy, x: x, y: y, scale: scale, mean: mean, variance: variance };
  const attrs = { epsilon: EPSILON, relu: true };
  const without = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, inputs, attrs) as tf.Tensor[];
  const zeros = tf.zeros([7]);
  const withZeros = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, { ...inputs, dmean: zeros, dvariance: zeros }, attrs) as tf.Tensor[];
  for (const [i, out] of without.entries()) t.deepEqual(out.dataSync(), withZeros[i].dataSync());
  tf.dispose([x, scale, offset, dy, y, mean, variance, zeros, ...without, ...withZeros]);
});

test.serial('statistics stay accurate when the mean is far larger than the spread', async (t) => {
  await tf.setBackend('wasm');
  const rows = 4096;
  const channels = 3;
  const values = seededValues(rows * channels, 41).map((v, i) => 1000 * ((i % channels) + 1) + v);
  const [y, mean, variance] = tf.tidy(() =>
    forward(tf.tensor2d(values, [rows, channels]), tf.ones([channels]) as tf.Tensor1D, tf.zeros([channels]) as tf.Tensor1D, false),
  );
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += values[r * channels + c];
    const exactMean = sum / rows;
    let squares = 0;
    for (let r = 0; r < rows; r++) squares += (values[r * channels + c] - exactMean) ** 2;
    const exactVariance = squares / rows;
    t.true(Math.abs(mean.dataSync()[c] - exactMean) <= 1e-7 * Math.abs(exactMean) * 4, `mean ${c}`);
    // float32 inputs near 1000c carry about 6e-5 absolute rounding; the variance (about 1/3)
    // must come out to 1e-4 relative, which a naive E[x^2] - E[x]^2 in float32 cannot do.
    t.true(Math.abs(variance.dataSync()[c] - exactVariance) <= 1e-4 * exactVariance, `variance ${c}: ${variance.dataSync()[c]} vs ${exactVariance}`);
  }
  tf.dispose([y, mean, variance]);
});

test.serial('the kernels reject a scale whose length is not the channel count', async (t) => {
  await tf.setBackend('wasm');
  tf.tidy(() => {
    const x = tf.zeros([2, 3, 3, 4]);
    t.throws(() => void tf.engine().runKernel(BATCH_NORM_TRAINING, { x, scale: tf.ones([3]), offset: tf.zeros([4]) }, { epsilon: EPSILON, relu: false }), {
      instanceOf: TypeError,
    });
  });
});

test.serial('Identity on wasm shares the buffer and frees it only when both tensors are gone', async (t) => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const before = backend.numDataIds();
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const copy = tf.engine().runKernel('Identity', { x }) as tf.Tensor;
  t.is(backend.numDataIds(), before + 1, 'no second buffer');
  x.dispose();
  t.deepEqual(Array.from(copy.dataSync()), [1, 2, 3, 4]);
  copy.dispose();
  t.is(backend.numDataIds(), before);
});

/**
 * A small residual net as the model builds it in train mode: fused conv, batchNormTraining
 * with and without ReLU, residual add + relu, max pool, mean, dense, cross-entropy. The conv
 * bias in front of batch norm is an input, not differentiated: its gradient is zero up to
 * rounding, which no relative error can compare.
 */
function smallNetLoss(x: tf.Tensor4D, labels: tf.Tensor1D, convBias: tf.Tensor1D, w: tf.Tensor[]): tf.Scalar {
  const [stem, g1, b1, conv, g2, b2, dense] = w as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor2D];
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ];
  let h = tf.conv2d(x, stem, 2, pad);
  h = batchNormTraining(h, g1, b1, EPSILON, { relu: true }).y as tf.Tensor4D;
  h = tf.maxPool(h, 3, 2, 1);
  const branch = batchNormTraining(tf.fused.conv2d({ x: h, filter: conv, bias: convBias, strides: 1, pad }), g2, b2, EPSILON).y;
  h = tf.relu(tf.add(branch, h)) as tf.Tensor4D;
  const logits = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, dense);
  const oneHot = tf.oneHot(tf.cast(labels, 'int32'), 4);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

test.serial('gradients of a small residual net with fused batch norm match cpu', async (t) => {
  const c = 5;
  const shapes = [[3, 3, 1, c], [c], [c], [3, 3, c, c], [c], [c], [c, 4]];
  const inputs = [
    seededInput([3, 13, 13, 1], 50),
    { values: Float32Array.from([0, 3, 1]), shape: [3] },
    seededInput([c], 59),
    ...shapes.map((shape, i) => seededInput(shape, 60 + i, 0.5)),
  ];
  const grads = (x: tf.Tensor, labels: tf.Tensor, convBias: tf.Tensor, ...w: tf.Tensor[]) =>
    tf.grads((...ws: tf.Tensor[]) => smallNetLoss(x as tf.Tensor4D, labels as tf.Tensor1D, convBias as tf.Tensor1D, ws))(w);
  const { error, shapesMatch, actual } = await compareBackends('wasm', 'cpu', inputs, grads);
  t.true(shapesMatch);
  t.is(actual.values.length, shapes.length);
  t.log(`scaled error ${error.toExponential(2)}`);
  t.true(error <= TOLERANCE, `scaled error ${error}`);

  const before = tf.memory().numTensors;
  await compareBackends('wasm', 'cpu', inputs, grads);
  t.is(tf.memory().numTensors, before, 'no tensors leak from a step');
});
