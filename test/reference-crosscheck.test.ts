/**
 * Cross-check of our ResNet-18 against the seed's PyTorch program (test/reference/
 * resnet18_reference.py): the same initial weights and the same three batches go through both,
 * and the first batch's logits, every step's loss and every parameter's gradient, the batch norm
 * running statistics and the weights after three SGD steps must agree.
 *
 * Teacher forcing. Before steps 2 and 3 our model takes PyTorch's trainable weights, so both
 * sides compute each step at the same point. Free-running trajectories cannot be compared at
 * this learning rate and batch: the first update is about 15 times the stem kernel's size
 * (batch norm makes the loss scale-invariant in it, so its gradient is inversely proportional to
 * its tiny Xavier init), and ReLU and max-pool kinks make the gradient discontinuous; perturbing
 * PyTorch's own initial weights by 1e-5 (relative) changes its step-2 gradients by 100%. A
 * free-running comparison would test luck; teacher forcing tests our forward, backward, batch
 * norm update and SGD at three quite different points of the trajectory. Running statistics
 * are never forced: each side accumulates its own over the three steps.
 *
 * PyTorch runs in float32 (the reference we assert against) and float64 (logged: it shows how
 * much of each difference is float32 rounding, on either side).
 *
 * Backend: CROSSCHECK_BACKEND (default cpu; any choice selectBackend accepts), e.g.
 * `CROSSCHECK_BACKEND=wasm npx ava test/reference-crosscheck.test.ts`. The bounds were measured
 * on cpu; other backends sum in other orders, and their errors are logged for comparison.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { parseBackendChoice } from '../shared/config/compute-options.ts';
import { Prng } from '../shared/data/prng.ts';
import { resnet18Architecture } from '../shared/model/resnet18-architecture.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { computeGradients, type ImageBatch } from '../shared/train/gradient-step.ts';
import { applySgd } from '../shared/train/sgd.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';
import {
  fromTorchLayout,
  maxAbs,
  maxAbsDifference,
  readBundle,
  RESNET18_REFERENCE,
  runPython,
  toTorchLayout,
  writeBundle,
  type BundleTensor,
} from './helpers/pytorch.ts';

const BACKEND = parseBackendChoice(process.env.CROSSCHECK_BACKEND ?? 'cpu');
const SEED = 20240611;
const STEPS = 3;
/**
 * Small because tfjs-backend-cpu's Conv2DBackpropFilter is a naive element-by-element loop
 * (95% of a training step on that backend): one step of 4 images takes 10-15 s here.
 */
const BATCH = 4;
/** Fashion-MNIST's native size; the odd feature maps (13, 7) exercise the padding edges. */
const SIZE = 28;
const LEARNING_RATE = 0.05;

/**
 * Bounds on max |ours - PyTorch float32| / max |PyTorch float32|, per tensor. Both sides
 * compute in float32 with different summation orders (tfjs cpu: plain loops; PyTorch:
 * oneDNN/MKL blocked kernels), so every accumulation carries rounding of order 1e-7 relative,
 * compounded over 20 layers and batch norm's division by the standard deviation of small
 * batches. Each bound is 5-10x the maximum measured on cpu, where PyTorch float32 itself is
 * about as far from float64 as we are (the tests log all three distances).
 */
const TOLERANCE = {
  /** Measured 1.3e-5 (PyTorch float32 vs float64: 7.2e-6). */
  logits: 1e-4,
  /** Measured 2.7e-6 over the three steps (PyTorch float32 vs float64: 1.4e-6). */
  loss: 2e-5,
  /**
   * Measured 2.0e-4, worst in stage 5 where batch norm sees 4 values per channel and divides by
   * their small spread (PyTorch float32 vs float64: 2.0e-4 there too).
   */
  gradients: 1e-3,
  /** Measured 4.5e-6 (PyTorch float32 vs float64: 2.3e-6). */
  runningStats: 5e-5,
  /**
   * Measured 8.4e-5. Looser than the logits: at lr 0.05 the last update is as large as the
   * weights themselves (stage 5 kernels: lr * max |g| > max |w|), so the weights inherit the
   * gradients' relative error.
   */
  weights: 5e-4,
  /** Measured 5.4e-5, after three updates of that size (PyTorch float32 vs float64: 8.1e-6). */
  evalLogits: 5e-4,
};

/** Everything our side produced, weights in PyTorch layout. */
interface OurRun {
  firstLogits: Float32Array;
  losses: number[];
  gradients: Map<string, BundleTensor>[];
  final: Map<string, BundleTensor>;
  evalLogits: Float32Array;
}

/** Conv layers whose output goes straight into a batch norm: their bias has zero gradient. */
const BATCH_NORM_AFTER_CONV = batchNormAfterConv();

let workDir: string;
let ours: OurRun;
let reference: Map<string, BundleTensor>;
let trainableNames: string[];
let runningStatNames: string[];

function batchNormAfterConv(): Map<string, string> {
  const arch = resnet18Architecture();
  const pairs = new Map([[arch.stem.conv.name, arch.stem.bn.name]]);
  for (const unit of arch.stages.flat()) {
    pairs.set(unit.conv1.name, unit.bn1.name);
    pairs.set(unit.conv2.name, unit.bn2.name);
  }
  return pairs;
}

/** Deterministic images quantised like real pixels (k / 255), and uniform labels. */
function makeBatches(): ImageBatch[] {
  const rng = new Prng(SEED + 1);
  return Array.from({ length: STEPS }, () => {
    const x = new Float32Array(BATCH * SIZE * SIZE);
    for (let i = 0; i < x.length; i += 1) x[i] = Math.fround(rng.nextBelow(256) / 255);
    const labels = Int32Array.from({ length: BATCH }, () => rng.nextBelow(10));
    return { x, labels, count: BATCH, size: SIZE };
  });
}

function batchesBundle(batches: ImageBatch[]): Map<string, BundleTensor> {
  const out = new Map<string, BundleTensor>();
  batches.forEach((batch, i) => {
    // One channel: NHWC [n, h, w, 1] and NCHW [n, 1, h, w] are the same bytes.
    out.set(`batch${i + 1}/x`, { shape: [batch.count, 1, batch.size, batch.size], values: batch.x });
    out.set(`batch${i + 1}/labels`, { shape: [batch.count], values: Float32Array.from(batch.labels) });
  });
  return out;
}

function weightsInTorchLayout(model: TrainableModel): Map<string, BundleTensor> {
  const out = new Map<string, BundleTensor>();
  for (const { name, variable } of model.params.all()) {
    out.set(name, toTorchLayout({ shape: variable.shape, values: variable.dataSync() as Float32Array }));
  }
  return out;
}

/** Splits a flat gradient buffer (canonical order) into PyTorch-layout tensors by name. */
function splitGradients(model: TrainableModel, flat: Float32Array): Map<string, BundleTensor> {
  const out = new Map<string, BundleTensor>();
  let offset = 0;
  for (const { name, variable } of model.params.trainable) {
    out.set(name, toTorchLayout({ shape: variable.shape, values: flat.slice(offset, offset + variable.size) }));
    offset += variable.size;
  }
  return out;
}

/** Teacher forcing: our trainable weights become PyTorch's before `step`. */
function takeReferenceWeights(model: TrainableModel, step: number): void {
  for (const { name, variable } of model.params.trainable) {
    const theirs = fromTorchLayout(refTensor(`trajectory/step${step}/${name}`), variable.shape);
    tf.tidy(() => variable.assign(tf.tensor(theirs.values, variable.shape, 'float32')));
  }
}

function batchTensor(batch: ImageBatch): tf.Tensor4D {
  return tf.tensor4d(batch.x, [batch.count, batch.size, batch.size, 1]);
}

/** Train-mode logits of the first batch, from a twin so the real model's statistics stay untouched. */
function firstBatchLogits(batch: ImageBatch): Float32Array {
  const twin = createSeededModel('resnet18', SEED);
  const logits = tf.tidy(() => twin.forward(batchTensor(batch), 'train').dataSync() as Float32Array);
  twin.dispose();
  return logits;
}

/** Step `index` (0-based) of our run; from the second step on, at PyTorch's weights. */
function runStep(model: TrainableModel, batch: ImageBatch, index: number, run: OurRun): void {
  if (index > 0) takeReferenceWeights(model, index + 1);
  const result = computeGradients(model, batch, { lossDenominator: batch.count, microBatch: batch.count });
  run.losses.push(result.lossSum / batch.count);
  run.gradients.push(splitGradients(model, result.gradients));
  applySgd(model, result.gradients, LEARNING_RATE);
}

test.before(async () => {
  await selectBackend(BACKEND);
  workDir = await mkdtemp(join(tmpdir(), 'resnet18-crosscheck-'));
  const model = createSeededModel('resnet18', SEED);
  trainableNames = model.params.trainable.map((p) => p.name);
  runningStatNames = model.params.runningStats.map((p) => p.name);
  const batches = makeBatches();
  await writeBundle(join(workDir, 'weights'), weightsInTorchLayout(model));
  await writeBundle(join(workDir, 'batches'), batchesBundle(batches));
  const python = runPython(RESNET18_REFERENCE, [
    'crosscheck',
    '--weights',
    join(workDir, 'weights'),
    '--batches',
    join(workDir, 'batches'),
    '--out',
    join(workDir, 'reference'),
    '--lr',
    String(LEARNING_RATE),
    '--dtypes',
    'float32,float64',
    '--threads',
    '1',
  ]);
  python.catch(() => {}); // awaited below; this only keeps the rejection from going unhandled meanwhile
  // The first step needs nothing from PyTorch: it runs on this core while PyTorch uses the other.
  const run: OurRun = { firstLogits: firstBatchLogits(batches[0]), losses: [], gradients: [], final: new Map(), evalLogits: new Float32Array() };
  runStep(model, batches[0], 0, run);
  await python;
  reference = await readBundle(join(workDir, 'reference'));
  for (let i = 1; i < batches.length; i += 1) runStep(model, batches[i], i, run);
  run.final = weightsInTorchLayout(model);
  run.evalLogits = tf.tidy(() => model.forward(batchTensor(batches[0]), 'eval').dataSync() as Float32Array);
  model.dispose();
  ours = run;
});

test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function refTensor(name: string): BundleTensor {
  const tensor = reference.get(name);
  if (!tensor) throw new Error(`the reference wrote no ${name}`);
  return tensor;
}

/** How far apart ours, PyTorch float32 and PyTorch float64 are, each relative to `scale`. */
interface Errors {
  vs32: number;
  vs64: number;
  torch32vs64: number;
}

/** Max differences divided by max |PyTorch float32| of `name` or, when given, of `scaleName`. */
function errorsOf(oursValues: ArrayLike<number>, name: string, scaleName = name): Errors {
  const t32 = refTensor(`float32/${name}`).values;
  const t64 = refTensor(`float64/${name}`).values;
  const scale = maxAbs(refTensor(`float32/${scaleName}`).values);
  return {
    vs32: maxAbsDifference(oursValues, t32) / scale,
    vs64: maxAbsDifference(oursValues, t64) / scale,
    torch32vs64: maxAbsDifference(t32, t64) / scale,
  };
}

function describe(label: string, e: Errors): string {
  return `${label}: ours-torch32 ${e.vs32.toExponential(2)}, ours-torch64 ${e.vs64.toExponential(2)}, torch32-torch64 ${e.torch32vs64.toExponential(2)}`;
}

/** Checks every name, logs the worst, returns the ones above `bound`. */
function checkAll(
  t: { log(...values: unknown[]): void },
  label: string,
  entries: { name: string; values: ArrayLike<number>; ref: string; scale?: string }[],
  bound: number,
): string[] {
  let worst: (Errors & { name: string }) | undefined;
  const failures: string[] = [];
  for (const { name, values, ref, scale } of entries) {
    const e = errorsOf(values, ref, scale);
    if (!worst || e.vs32 > worst.vs32) worst = { name, ...e };
    if (!(e.vs32 <= bound)) failures.push(`${name}: ${e.vs32.toExponential(2)}`);
  }
  if (worst) t.log(describe(`${label}, worst ${worst.name}`, worst));
  return failures;
}

/**
 * A conv bias feeding a batch norm has zero true gradient (BN subtracts the batch mean), so both
 * sides produce only rounding noise; its difference is measured against the following BN's
 * beta gradient, which is what the bias gradient would be without the mean subtraction.
 */
function gradientScaleFor(name: string, step: number): string | undefined {
  const [layer, suffix] = name.split('/');
  const bn = suffix === 'bias' ? BATCH_NORM_AFTER_CONV.get(layer) : undefined;
  return bn === undefined ? undefined : `step${step}/grad/${bn}/beta`;
}

test(`first-batch train-mode logits agree with PyTorch (${BACKEND})`, (t) => {
  const e = errorsOf(ours.firstLogits, 'step1/logits');
  t.log(describe('logits', e));
  t.true(e.vs32 <= TOLERANCE.logits, `relative error ${e.vs32}`);
});

test(`the loss of each of the ${STEPS} steps agrees with PyTorch (${BACKEND})`, (t) => {
  const errors = ours.losses.map((loss, i) => {
    const e = errorsOf([loss], `step${i + 1}/loss`);
    t.log(describe(`step ${i + 1} loss ${loss.toFixed(6)}`, e));
    return e.vs32;
  });
  t.true(Math.max(...errors) <= TOLERANCE.loss, `relative errors ${errors.join(', ')}`);
});

test(`every parameter's gradient agrees with PyTorch at each of the ${STEPS} steps (${BACKEND})`, (t) => {
  const failures = ours.gradients.flatMap((step, i) => {
    t.deepEqual([...step.keys()], trainableNames);
    const entries = trainableNames.map((name) => ({
      name,
      values: step.get(name)!.values,
      ref: `step${i + 1}/grad/${name}`,
      scale: gradientScaleFor(name, i + 1),
    }));
    return checkAll(t, `step ${i + 1} gradients`, entries, TOLERANCE.gradients).map((f) => `step ${i + 1} ${f}`);
  });
  t.deepEqual(failures, []);
});

test(`batch norm running statistics agree with PyTorch after ${STEPS} steps (${BACKEND})`, (t) => {
  const entries = runningStatNames.map((name) => ({ name, values: ours.final.get(name)!.values, ref: `final/${name}` }));
  t.deepEqual(checkAll(t, 'running statistics', entries, TOLERANCE.runningStats), []);
});

test(`every weight agrees with PyTorch after ${STEPS} SGD steps at lr ${LEARNING_RATE} (${BACKEND})`, (t) => {
  const entries = trainableNames.map((name) => ({ name, values: ours.final.get(name)!.values, ref: `final/${name}` }));
  t.deepEqual(checkAll(t, 'weights', entries, TOLERANCE.weights), []);
});

test(`eval-mode logits after the ${STEPS} steps agree with PyTorch (${BACKEND})`, (t) => {
  const e = errorsOf(ours.evalLogits, 'final/eval_logits');
  t.log(describe('eval logits', e));
  t.true(e.vs32 <= TOLERANCE.evalLogits, `relative error ${e.vs32}`);
});
