/**
 * The onednn backend's non-convolution kernels against the cpu backend: element-wise binary
 * ops under every broadcast pattern a ResNet step produces (and some it does not), unary ops
 * with NaN and signed zeros, Tile, Sum/Mean, MaxPool and its gradient (with ties), FusedBatchNorm
 * and BatchMatMul. Each case also checks that the native kernel ran (not the cpu fallback),
 * except where the fallback is the behaviour under test.
 *
 * Tolerances (max|onednn - cpu| / max|cpu|):
 * - 0 for + - * / max min relu step neg square abs, Tile and MaxPool: float32 results of one
 *   correctly rounded operation are identical whichever code computes them, and max pooling
 *   selects values without arithmetic;
 * - 1e-6 for squared difference and rsqrt (two roundings instead of one: <= 1 ulp), for
 *   Sum/Mean (both accumulate in double; tfjs's Mean divides before summing) and for
 *   MaxPoolGrad (an input that is the maximum of several overlapping windows receives their
 *   gradients summed in float32 here, in double then rounded once in tfjs: <= 1 ulp per add);
 * - 1e-5 for BatchMatMul (sgemm sums K = 512 float32 products in blocks; the cpu kernel
 *   accumulates in double: about sqrt(512) * 6e-8 = 1.4e-6) and FusedBatchNorm (per-channel
 *   factor precomputed and rounded to float32).
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { registerOnednnBackend, onednnUnavailableReason } from '../shared/backend/onednn/register.ts';
import { compareBackends, seededInput, type InputSpec } from './helpers/backend-comparison.ts';
import type { OnednnBackend } from '../shared/backend/onednn/onednn-backend.ts';
import '../shared/train/register-gradients.ts';

type Compute = (...ts: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

function nativeOutputs(): number {
  return (tf.findBackend('onednn') as OnednnBackend).nativeOutputs;
}

/** Compares onednn with cpu; `native` says whether the native kernel must have run. */
async function check(t: import('ava').ExecutionContext, label: string, inputs: InputSpec[], compute: Compute, tolerance: number, native = true): Promise<void> {
  const before = nativeOutputs();
  const { error, shapesMatch, actual } = await compareBackends('onednn', 'cpu', inputs, compute);
  const ran = nativeOutputs() > before;
  t.true(shapesMatch, `${label}: shapes ${JSON.stringify(actual.shapes)}`);
  t.true(error <= tolerance, `${label}: scaled error ${error}`);
  t.is(ran, native, `${label}: native kernel ${native ? 'did not run' : 'ran'}`);
}

/** Seeded values with NaN, +-0, +-Infinity and repeated values mixed in. */
function awkward(shape: number[], seed: number): InputSpec {
  const spec = seededInput(shape, seed);
  const specials = [Number.NaN, 0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 0.5];
  for (let i = 0; i < spec.values.length; i += 7) spec.values[i] = specials[(i / 7) % specials.length]!;
  return spec;
}

/** Non-negative values with many exact zeros, like a ReLU output feeding a max pool. */
function reluLike(shape: number[], seed: number): InputSpec {
  const spec = seededInput(shape, seed);
  spec.values.forEach((v, i) => (spec.values[i] = Math.max(0, v)));
  return spec;
}

test.before(async (t) => {
  if (!(await registerOnednnBackend({ threads: 2 }))) t.fail(`onednn addon unavailable: ${onednnUnavailableReason()}`);
});

test.after.always(async () => {
  await tf.setBackend('cpu');
});

const BROADCASTS: [string, number[], number[]][] = [
  ['same shape', [2, 7, 7, 64], [2, 7, 7, 64]],
  ['scalar right', [2, 5, 3, 8], []],
  ['scalar left', [], [3, 4, 5]],
  ['channel vector [C]', [4, 6, 6, 17], [17]],
  ['channel vector [1,1,1,C]', [2, 5, 5, 64], [1, 1, 1, 64]],
  ['column [N,1]', [64, 10], [64, 1]],
  ['outer product [N,1] x [1,C]', [9, 1], [1, 13]],
  ['middle axes broadcast', [2, 1, 5, 3], [2, 4, 5, 3]],
  ['rank 6 alternating', [2, 1, 3, 1, 2, 1], [1, 4, 1, 5, 1, 3]],
  ['size-1 everywhere', [1, 1, 1], [1, 1, 1]],
];

test.serial('binary kernels match the cpu backend under broadcasting, bit for bit', async (t) => {
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
    ['maximum', tf.maximum],
    ['minimum', tf.minimum],
  ];
  for (const [label, aShape, bShape] of BROADCASTS) {
    for (const [name, op] of ops) {
      await check(t, `${name} ${label}`, [awkward(aShape, 1), seededInput(bShape, 2)], (a, b) => op(a, b), 0);
    }
  }
});

test.serial('squared difference matches within one rounding', async (t) => {
  for (const [label, aShape, bShape] of BROADCASTS) {
    await check(t, label, [seededInput(aShape, 3), seededInput(bShape, 4)], (a, b) => tf.squaredDifference(a, b), 1e-6);
  }
});

test.serial('int32 binary ops run on the cpu fallback', async (t) => {
  const before = nativeOutputs();
  await tf.setBackend('onednn');
  const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')).arraySync());
  t.deepEqual(sum, [5, 7, 9]);
  t.is(nativeOutputs(), before);
});

test.serial('unary kernels match the cpu backend, NaN and signed zeros included', async (t) => {
  const x = awkward([3, 5, 7, 11], 5);
  const exact: [string, Compute][] = [
    ['relu', (a) => tf.relu(a)],
    ['step', (a) => tf.step(a)],
    ['step alpha', (a) => tf.step(a, 0.25)],
    ['neg', (a) => tf.neg(a)],
    ['square', (a) => tf.square(a)],
    ['abs', (a) => tf.abs(a)],
    ['sqrt', (a) => tf.sqrt(tf.abs(a))],
    ['reciprocal', (a) => tf.reciprocal(a)],
  ];
  for (const [name, f] of exact) await check(t, name, [x], f, 0);
  await check(t, 'rsqrt', [x], (a) => tf.rsqrt(tf.abs(a)), 1e-6);
});

test.serial('Tile: broadcast tiles run natively, general tiles on the fallback', async (t) => {
  await check(t, 'broadcast tile', [seededInput([1, 1, 1, 64], 6)], (a) => tf.tile(a, [4, 5, 5, 1]), 0);
  await check(t, 'general tile', [seededInput([2, 3], 7)], (a) => tf.tile(a, [2, 2]), 0, false);
});

test.serial('Sum and Mean match over contiguous axes and fall back otherwise', async (t) => {
  const x = seededInput([8, 7, 7, 64], 8);
  const cases: [string, number | number[], boolean][] = [
    ['[0,1,2]', [0, 1, 2], false],
    ['[0,1,2] keepDims', [0, 1, 2], true],
    ['[1,2]', [1, 2], false],
    ['last axis', -1, false],
    ['all', [0, 1, 2, 3], false],
    ['first', 0, true],
  ];
  for (const [label, axis, keepDims] of cases) {
    await check(t, `sum ${label}`, [x], (a) => tf.sum(a, axis, keepDims), 1e-6);
    await check(t, `mean ${label}`, [x], (a) => tf.mean(a, axis, keepDims), 1e-6);
  }
  await check(t, 'sum [0,2] (gap)', [x], (a) => tf.sum(a, [0, 2]), 1e-6, false);
});

test.serial('a large single-axis sum is accurate to float rounding', async (t) => {
  await check(t, 'sum of 300k', [seededInput([300_000], 9)], (a) => tf.sum(a), 1e-6);
});

const POOLS: [string, number[], number, number, 'same' | 'valid' | number][] = [
  ['ResNet 28: 13 -> 7, 3x3/2 pad 1', [4, 13, 13, 64], 3, 2, 1],
  ['ResNet 96: 47 -> 24, 3x3/2 pad 1', [1, 47, 47, 64], 3, 2, 1],
  ['2x2/2 valid, odd input', [2, 7, 9, 5], 2, 2, 'valid'],
  ['3x3/1 same', [1, 6, 5, 3], 3, 1, 'same'],
  ['3x3/2 same, odd input', [3, 9, 9, 2], 3, 2, 'same'],
];

test.serial('MaxPool and its gradient match the cpu backend, ties included', async (t) => {
  for (const [label, shape, size, stride, pad] of POOLS) {
    const x = reluLike(shape, 10);
    await check(t, `maxPool ${label}`, [x], (a) => tf.maxPool(a as tf.Tensor4D, size, stride, pad), 0);
    const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], size, stride, 1, pad);
    const r = seededInput(info.outShape, 11);
    await check(
      t,
      `maxPoolGrad ${label}`,
      [x, r],
      (a, w) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, size, stride, pad), w)))(a),
      1e-6,
    );
  }
});

test.serial('FusedBatchNorm matches with and without scale and offset', async (t) => {
  const x = seededInput([4, 6, 6, 32], 12, 3);
  const mean = seededInput([32], 13);
  const variance = { values: seededInput([32], 14).values.map((v) => Math.abs(v) + 0.1), shape: [32] };
  const scale = seededInput([32], 15);
  const offset = seededInput([32], 16);
  await check(t, 'full', [x, mean, variance, offset, scale], (a, m, v, o, s) => tf.batchNorm(a, m, v, o, s, 1e-5), 1e-5);
  await check(t, 'no scale/offset', [x, mean, variance], (a, m, v) => tf.batchNorm(a, m, v, undefined, undefined, 1e-3), 1e-5);
});

test.serial('BatchMatMul matches for the dense layer and its gradients', async (t) => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['[64,512] x [512,10]', [64, 512], [512, 10], false, false],
    ['dx = dy x W^T', [64, 10], [512, 10], false, true],
    ['dW = X^T x dy', [64, 512], [64, 10], true, false],
    ['both transposed', [7, 5], [3, 7], true, true],
    ['batched', [3, 4, 6], [3, 6, 2], false, false],
    ['broadcast batch', [3, 4, 6], [6, 2], false, false],
  ];
  for (const [label, aShape, bShape, ta, tb] of cases) {
    await check(t, label, [seededInput(aShape, 17), seededInput(bShape, 18)], (a, b) => tf.matMul(a, b, ta, tb), 1e-5);
  }
});
