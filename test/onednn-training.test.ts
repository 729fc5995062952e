/**
 * Training on the onednn backend: the fused batch-norm op against its composite definition on
 * the cpu backend (outputs and every gradient), a small residual conv net's gradients against
 * the cpu backend, a 50-step loop whose tensor count stays flat and whose process memory
 * stays bounded (arrays released by disposed tensors are recycled, native caches stop growing),
 * and the SGD update and gradient copy helpers.
 *
 * Tolerance 1e-4 (max error over the tensor's max magnitude): the composite path rounds some
 * fifteen intermediate tensors to float32 and sums in a different order; gradients through a
 * network compound that. Indexing or formula errors show up as errors of order 1.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { registerOnednnBackend, onednnUnavailableReason } from '../shared/backend/onednn/register.ts';
import { batchNormTraining } from '../shared/backend/onednn/batch-norm-training.ts';
import { sgdUpdate } from '../shared/backend/sgd-update.ts';
import { copyTensorInto } from '../shared/backend/copy-tensor-into.ts';
import { compareBackends, seededInput, type InputSpec } from './helpers/backend-comparison.ts';
import { seededValues } from './helpers/seeded-values.ts';
import { loadAddon } from '../shared/backend/onednn/addon.ts';
import type { OnednnBackend } from '../shared/backend/onednn/onednn-backend.ts';
import '../shared/train/register-gradients.ts';

const TOLERANCE = 1e-4;

test.before(async (t) => {
  if (!(await registerOnednnBackend({ threads: 2 }))) t.fail(`onednn addon unavailable: ${onednnUnavailableReason()}`);
});

test.after.always(async () => {
  await tf.setBackend('cpu');
});

async function assertClose(
  t: import('ava').ExecutionContext,
  label: string,
  inputs: InputSpec[],
  compute: (...ts: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<void> {
  const { error, shapesMatch } = await compareBackends('onednn', 'cpu', inputs, compute);
  t.true(shapesMatch, `${label}: shapes differ`);
  t.true(error <= TOLERANCE, `${label}: scaled error ${error}`);
}

const BN_SHAPES = [
  [8, 13, 13, 64],
  [4, 4, 4, 128],
  [1, 3, 3, 512],
  [2, 5, 7, 3],
];

test.serial('fused batch norm matches moments + batchNorm (+ relu): outputs and gradients', async (t) => {
  for (const shape of BN_SHAPES) {
    const c = shape[3];
    // An offset mean (3) and spread (2) like real pre-activation statistics.
    const x = {
      values: seededValues(
        shape.reduce((a, b) => a * b, 1),
        1,
        2,
      ).map((v) => v + 3),
      shape,
    };
    const scale = { values: seededValues(c, 2).map((v) => v + 1.5), shape: [c] };
    const offset = seededInput([c], 3);
    const weights = seededInput(shape, 4);
    for (const relu of [false, true]) {
      const label = `${JSON.stringify(shape)} relu=${relu}`;
      await assertClose(t, `${label} forward`, [x, scale, offset], (xi, s, o) => {
        const r = batchNormTraining(xi, s as tf.Tensor1D, o as tf.Tensor1D, 1e-5, { relu });
        return [r.y, r.mean, r.variance];
      });
      await assertClose(t, `${label} gradients`, [x, scale, offset, weights], (xi, s, o, w) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(a, b as tf.Tensor1D, d as tf.Tensor1D, 1e-5, { relu }).y, w)))([
          xi,
          s,
          o,
        ]),
      );
    }
  }
});

test.serial('fused batch norm passes gradients that reach its mean and variance outputs', async (t) => {
  const shape = [4, 5, 5, 16];
  const inputs = [seededInput(shape, 5, 2), seededInput([16], 6), seededInput([16], 7), seededInput(shape, 8), seededInput([16], 9)];
  await assertClose(t, 'mean and variance in the loss', inputs, (xi, s, o, w, v) =>
    tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => {
      const r = batchNormTraining(a, b as tf.Tensor1D, d as tf.Tensor1D, 1e-3);
      return tf.addN([tf.sum(tf.mul(r.y, w)), tf.sum(tf.mul(r.mean, v)), tf.sum(tf.square(r.variance))]);
    })([xi, s, o]),
  );
});

/** A residual conv net with the ResNet-18 ops: conv7x7/2 + BN + relu + maxpool, a residual unit with a 1x1/2 projection, global mean, dense. */
interface TinyResNet {
  weights: tf.Variable[];
  forward(x: tf.Tensor4D, fusedBatchNorm: boolean): tf.Tensor2D;
}

function tinyResNet(seed: number): TinyResNet {
  const shapes = [[7, 7, 1, 16], [16], [16], [16], [3, 3, 16, 32], [32], [32], [32], [3, 3, 32, 32], [32], [32], [32], [1, 1, 16, 32], [32], [32, 10], [10]];
  const weights = shapes.map((shape, i) => {
    const isGamma = i === 2 || i === 6 || i === 10;
    const values = seededValues(
      shape.reduce((a, b) => a * b, 1),
      seed + i,
      0.3,
    ).map((v) => (isGamma ? v + 1 : v));
    return tf.variable(tf.tensor(values, shape), true);
  });
  const [k1, b1, g1, be1, k2, b2, g2, be2, k3, b3, g3, be3, kp, bp, wd, bd] = weights as tf.Tensor[];
  const bn = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, relu: boolean, fused: boolean): tf.Tensor4D => {
    if (fused) return batchNormTraining(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5, { relu }).y as tf.Tensor4D;
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.batchNorm(x, mean, variance, b, g, 1e-5);
    return (relu ? tf.relu(y) : y) as tf.Tensor4D;
  };
  const conv = (x: tf.Tensor4D, k: tf.Tensor, b: tf.Tensor, stride: number, pad: number) =>
    tf.fused.conv2d({
      x,
      filter: k as tf.Tensor4D,
      bias: b,
      strides: stride,
      pad:
        pad === 0
          ? 'valid'
          : [
              [0, 0],
              [pad, pad],
              [pad, pad],
              [0, 0],
            ],
    });
  return {
    weights,
    forward(x, fused) {
      let y = bn(conv(x, k1, b1, 2, 2), g1, be1, true, fused);
      y = tf.maxPool(y, 3, 2, 1);
      let z = bn(conv(y, k2, b2, 2, 1), g2, be2, true, fused);
      z = bn(conv(z, k3, b3, 1, 1), g3, be3, false, fused);
      const out = tf.relu(tf.add(z, conv(y, kp, bp, 2, 0)));
      return tf.add(tf.matMul(tf.mean(out, [1, 2]) as tf.Tensor2D, wd as tf.Tensor2D), bd) as tf.Tensor2D;
    },
  };
}

function lossOf(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, 10);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

test.serial('a residual conv net has the same gradients on onednn as on cpu', async (t) => {
  const images = { values: seededValues(4 * 28 * 28, 20).map((v) => (v + 1) / 2), shape: [4, 28, 28, 1] };
  const labels = { values: Float32Array.from([3, 1, 4, 1]), shape: [4] };
  for (const fused of [false, true]) {
    let net: TinyResNet | undefined;
    const compute = (x: tf.Tensor, y: tf.Tensor) => {
      const { value, grads } = tf.variableGrads(() => lossOf(net!.forward(x as tf.Tensor4D, fused), y as tf.Tensor1D), net!.weights);
      return [value, ...net!.weights.map((w) => grads[w.name])];
    };
    // Weights are built on each backend from the same seeded values.
    const onBackend = async (name: string) => {
      await tf.setBackend(name);
      net = tinyResNet(100);
    };
    await onBackend('cpu');
    const reference = tf.tidy(() => compute(tf.tensor(images.values, images.shape), tf.tensor(labels.values)).map((g) => g.dataSync().slice()));
    tf.dispose(net!.weights);
    await onBackend('onednn');
    const actual = tf.tidy(() => compute(tf.tensor(images.values, images.shape), tf.tensor(labels.values)).map((g) => g.dataSync().slice()));
    tf.dispose(net!.weights);
    // Biases feeding a batch norm have a true gradient of zero, so both backends return float
    // noise there: such tensors are compared at a floor of 1e-3 of the largest gradient.
    const globalMax = Math.max(...reference.map((r) => Math.max(...r.map(Math.abs))));
    reference.forEach((expected, i) => {
      let maxDiff = 0;
      let maxRef = 0;
      expected.forEach((e, j) => {
        maxDiff = Math.max(maxDiff, Math.abs(actual[i][j] - e));
        maxRef = Math.max(maxRef, Math.abs(e));
      });
      const error = maxDiff / Math.max(maxRef, 1e-3 * globalMax);
      t.true(error <= TOLERANCE, `fused=${fused} output ${i}: scaled error ${error}`);
    });
  }
});

test.serial('50 training steps keep the tensor count flat and process memory bounded', async (t) => {
  await tf.setBackend('onednn');
  const backend = tf.backend() as OnednnBackend;
  const addon = loadAddon()!;
  const net = tinyResNet(200);
  const x = tf.tensor4d(
    seededValues(16 * 28 * 28, 30).map((v) => (v + 1) / 2),
    [16, 28, 28, 1],
  );
  const labels = tf.tensor1d(Float32Array.from({ length: 16 }, (_, i) => i % 10));
  const step = (fused: boolean) => {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => lossOf(net.forward(x, fused), labels), net.weights);
      for (const w of net.weights) w.assign(tf.sub(w, tf.mul(grads[w.name], 0.01)));
    });
  };
  const warmup = 10;
  let tensorsAfterWarmup = 0;
  let rssAfterWarmup = 0;
  let statsAfterWarmup = addon.stats();
  let freshAfterWarmup = 0;
  for (let i = 0; i < 50; i++) {
    step(i % 2 === 0);
    if (i === warmup - 1) {
      tensorsAfterWarmup = tf.memory().numTensors;
      rssAfterWarmup = process.memoryUsage().rss;
      statsAfterWarmup = addon.stats();
      freshAfterWarmup = backend.allocationStats.freshBytes;
    }
  }
  t.is(tf.memory().numTensors, tensorsAfterWarmup);
  t.deepEqual(addon.stats(), statsAfterWarmup, 'native caches stopped growing');
  // Memory stays bounded because every output array of the later steps is a recycled one: a
  // count of allocations, which unlike the process RSS does not depend on when the GC runs.
  const { freshBytes, reusedBytes } = backend.allocationStats;
  t.is(freshBytes, freshAfterWarmup, `${freshBytes - freshAfterWarmup} bytes of fresh output arrays after the warm-up`);
  t.true(reusedBytes > 0);
  t.log(`RSS grew by ${((process.memoryUsage().rss - rssAfterWarmup) / 2 ** 20).toFixed(1)} MiB over 40 steps`);
  const pooled = backend.pooledBytes;
  t.true(pooled > 0 && pooled < 64 * 2 ** 20, `pool holds ${pooled} bytes`);
  tf.dispose([x, labels, ...net.weights]);
});

test.serial('a native kernel given a wrong-length array throws instead of writing past it', (t) => {
  const addon = loadAddon()!;
  const error = t.throws(() => addon.unary(0, new Float32Array(8), new Float32Array(4), 0));
  t.true(error instanceof RangeError);
  const geometry = new Int32Array(17).fill(1);
  t.throws(() => addon.conv2dForward(geometry, new Float32Array(1), new Float32Array(1), null, false, new Float32Array(0)), { instanceOf: RangeError });
});

test.serial('sgdUpdate matches assign(sub(p, mul(g, lr))) bit for bit, in place only when nothing else sees p', async (t) => {
  const size = 5000;
  const initial = seededValues(size, 40);
  const gradients = [1, 2, 3, 4].map((i) => seededValues(size, 40 + i));
  // Reference: the composite update on the cpu backend.
  await tf.setBackend('cpu');
  const reference = tf.variable(tf.tensor1d(initial));
  for (const g of gradients) tf.tidy(() => reference.assign(tf.sub(reference, tf.mul(tf.tensor1d(g), 0.05))));
  const expected = reference.dataSync().slice();
  reference.dispose();

  await tf.setBackend('onednn');
  const backend = tf.backend() as OnednnBackend;
  const p = tf.variable(tf.tensor1d(initial));
  sgdUpdate(p, gradients[0], 0.05); // p's first array came from JavaScript: updated out of place
  const idAfterFirst = p.dataId;
  t.not(backend.exclusiveFloat32(p.dataId), null);
  sgdUpdate(p, gradients[1], 0.05); // now p owns a native array: in place
  t.is(p.dataId, idAfterFirst);
  const snapshot = p.clone(); // shares p's data: the next update must not write into it
  const snapshotValues = Float32Array.from(snapshot.dataSync());
  sgdUpdate(p, gradients[2], 0.05);
  t.deepEqual(Float32Array.from(snapshot.dataSync()), snapshotValues);
  const exposed = p.dataSync(); // JavaScript now holds p's array: the next update copies
  const exposedValues = Float32Array.from(exposed);
  sgdUpdate(p, gradients[3], 0.05);
  t.deepEqual(Float32Array.from(exposed), exposedValues);
  t.deepEqual(Float32Array.from(p.dataSync()), expected);
  tf.dispose([p, snapshot]);
});

test.serial('copyTensorInto copies values and leaves native arrays recyclable', async (t) => {
  await tf.setBackend('onednn');
  const backend = tf.backend() as OnednnBackend;
  const a = tf.tidy(() => tf.mul(tf.tensor1d(seededValues(100, 50)), 2));
  const out = new Float32Array(110);
  copyTensorInto(a, out, 10);
  t.not(backend.exclusiveFloat32(a.dataId), null);
  t.deepEqual(out.subarray(10), Float32Array.from(a.dataSync()));
  t.is(backend.exclusiveFloat32(a.dataId), null);
  t.throws(() => copyTensorInto(a, out, 20), { instanceOf: RangeError });
  a.dispose();
});
