/**
 * Times full ResNet-18 training steps on the `onednn` backend and splits each step by kernel,
 * next to PyTorch (Debian's python3-torch, /usr/bin/python3) training the same network on the
 * same number of threads in the same run.
 *
 *   npx tsx bench/onednn-kernels.ts [--size 28] [--batch 64] [--steps 6] [--warmup 2]
 *       [--threads 1] [--variant model|fused-bn|tuned|all] [--no-torch] [--top 25]
 *       [--kernel-clock wall|cpu|none]
 *
 * Variants: `model` is shared/model/resnet18.ts as written (batch norm as tf.moments +
 * tf.batchNorm, ReLU separate); `fused-bn` is the same parameters and layers with batch norm
 * (and the ReLU after it) through batchNormTraining, the fused native op; `tuned` is
 * `fused-bn` with the step's two copies done by copyTensorInto and sgdUpdate.
 *
 * `model` and `fused-bn` steps are the trainer's: computeGradients (forward, backward,
 * gradients copied to one Float32Array) then applySgd. `tuned` does the same work with
 * copyTensorInto (gradients stay recyclable) and sgdUpdate (one native pass per parameter). Examples/sec are reported from wall time and from this
 * process's CPU time: on a shared machine the CPU-time figure is the one that compares
 * (with one thread both measure the same work when the machine is idle).
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { registerOnednnBackend, onednnUnavailableReason } from '../shared/backend/onednn/register.ts';
import { batchNormTraining } from '../shared/backend/onednn/batch-norm-training.ts';
import type { OnednnBackend } from '../shared/backend/onednn/onednn-backend.ts';
import { copyTensorInto } from '../shared/backend/copy-tensor-into.ts';
import { sgdUpdate } from '../shared/backend/sgd-update.ts';
import { ResNet18 } from '../shared/model/resnet18.ts';
import { BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM, type BatchNormLayer, type ResidualUnit } from '../shared/model/resnet18-architecture.ts';
import { convolve, dense } from '../shared/model/layer-ops.ts';
import type { ForwardMode, TrainableModel } from '../shared/model/trainable-model.ts';
import { computeGradients, type ImageBatch } from '../shared/train/gradient-step.ts';
import { applySgd } from '../shared/train/sgd.ts';

const PYTHON = '/usr/bin/python3';

interface Options {
  size: number;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  variants: Variant[];
  torch: boolean;
  top: number;
  kernelClock: KernelClock;
}

type KernelClock = 'wall' | 'cpu' | 'none';
type Variant = 'model' | 'fused-bn' | 'tuned';
const VARIANTS: readonly Variant[] = ['model', 'fused-bn', 'tuned'];

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '28' },
      batch: { type: 'string' },
      steps: { type: 'string', default: '6' },
      warmup: { type: 'string', default: '2' },
      threads: { type: 'string', default: '1' },
      variant: { type: 'string', default: 'all' },
      'no-torch': { type: 'boolean', default: false },
      top: { type: 'string', default: '25' },
      'kernel-clock': { type: 'string', default: 'wall' },
    },
  });
  const size = Number(values.size);
  const variant = values.variant;
  if (variant !== 'all' && !VARIANTS.includes(variant as Variant)) throw new Error(`--variant must be ${VARIANTS.join(', ')} or all (got ${variant})`);
  const kernelClock = values['kernel-clock'];
  if (!['wall', 'cpu', 'none'].includes(kernelClock)) throw new Error(`--kernel-clock must be wall, cpu or none (got ${kernelClock})`);
  return {
    size,
    batch: Number(values.batch ?? (size >= 64 ? 32 : 64)),
    steps: Number(values.steps),
    warmup: Number(values.warmup),
    threads: Number(values.threads),
    variants: variant === 'all' ? [...VARIANTS] : [variant as Variant],
    torch: !values['no-torch'],
    top: Number(values.top),
    kernelClock: kernelClock as KernelClock,
  };
}

/** A deterministic generator for the weights (xorshift; the bench does not need the project's). */
function benchRng(seed: number): { uniform(lo: number, hi: number): number } {
  let s = seed >>> 0 || 1;
  return {
    uniform(lo, hi) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return lo + ((s >>> 0) / 4294967296) * (hi - lo);
    },
  };
}

/** ResNet18's layers and parameters, with batch norm (+ the ReLU after it) fused natively. */
class FusedBatchNormResNet18 implements TrainableModel {
  readonly kind = 'resnet18' as const;
  constructor(private readonly inner: ResNet18) {}

  get params() {
    return this.inner.params;
  }

  get classes() {
    return this.inner.classes;
  }

  forward(x: tf.Tensor4D, mode: ForwardMode): tf.Tensor2D {
    const { stem, stages, dense: denseLayer } = this.inner.architecture;
    let y = this.batchNorm(convolve(x, this.params, stem.conv), stem.bn, mode, true);
    y = tf.maxPool(y, stem.pool.size, stem.pool.stride, stem.pool.padding);
    for (const stage of stages) for (const unit of stage) y = this.residual(y, unit, mode);
    return dense(tf.mean(y, [1, 2]) as tf.Tensor2D, this.params, denseLayer.name);
  }

  buildLayersMirror(imageSize: number) {
    return this.inner.buildLayersMirror(imageSize);
  }

  dispose(): void {
    this.inner.dispose();
  }

  private residual(x: tf.Tensor4D, unit: ResidualUnit, mode: ForwardMode): tf.Tensor4D {
    let y = this.batchNorm(convolve(x, this.params, unit.conv1), unit.bn1, mode, true);
    y = this.batchNorm(convolve(y, this.params, unit.conv2), unit.bn2, mode, false);
    const shortcut = unit.shortcut ? convolve(x, this.params, unit.shortcut) : x;
    return tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
  }

  private batchNorm(x: tf.Tensor4D, layer: BatchNormLayer, mode: ForwardMode, relu: boolean): tf.Tensor4D {
    if (mode === 'eval') throw new Error('the bench only trains');
    const p = (suffix: string) => this.params.get(`${layer.name}/${suffix}`);
    const { y, mean, variance } = batchNormTraining(x, p('gamma') as tf.Tensor1D, p('beta') as tf.Tensor1D, BATCH_NORM_EPSILON, { relu });
    const n = x.size / layer.channels;
    const m = BATCH_NORM_MOMENTUM;
    tf.tidy(() => {
      p('moving_mean').assign(tf.add(tf.mul(p('moving_mean'), 1 - m), tf.mul(mean, m)));
      p('moving_variance').assign(tf.add(tf.mul(p('moving_variance'), 1 - m), tf.mul(variance, (m * n) / (n - 1))));
    });
    return y as tf.Tensor4D;
  }
}

/**
 * Per-kernel time, gathered by wrapping every kernel registered for `onednn`. `wall` costs
 * about 0.1 us a call; `cpu` (the process's CPU time, all threads: the kernel's own only with
 * one thread) costs about 10 us a call, which then shows up as time outside kernels.
 */
class KernelTimer {
  readonly totals = new Map<string, { ms: number; calls: number }>();

  constructor(readonly clock: KernelClock) {}

  install(): void {
    if (this.clock === 'none') return;
    const now = this.clock === 'cpu' ? cpuNowMs : () => performance.now();
    for (const config of tf.getKernelsForBackend('onednn')) {
      const inner = config.kernelFunc;
      const name = config.kernelName;
      tf.unregisterKernel(name, 'onednn');
      tf.registerKernel({
        ...config,
        kernelFunc: (args) => {
          const start = now();
          const result = inner(args);
          const entry = this.totals.get(name) ?? { ms: 0, calls: 0 };
          entry.ms += now() - start;
          entry.calls += 1;
          this.totals.set(name, entry);
          return result;
        },
      });
    }
  }

  reset(): void {
    this.totals.clear();
  }
}

interface StepFigures {
  wallMs: number;
  cpuMs: number;
  gradMs: number;
  sgdMs: number;
}

function cpuNowMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function syntheticBatch(size: number, count: number): ImageBatch {
  const x = new Float32Array(count * size * size);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 255) / 255;
  const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
  return { x, labels, count, size };
}

function timedStep(model: TrainableModel, batch: ImageBatch, out: Float32Array): StepFigures {
  const wall0 = performance.now();
  const cpu0 = cpuNowMs();
  const { gradients } = computeGradients(model, batch, { lossDenominator: batch.count, microBatch: batch.count, out });
  const wall1 = performance.now();
  applySgd(model, gradients, 0.01);
  const wall2 = performance.now();
  return { wallMs: wall2 - wall0, cpuMs: cpuNowMs() - cpu0, gradMs: wall1 - wall0, sgdMs: wall2 - wall1 };
}

/** computeGradients + applySgd for one chunk, with the copies done by the onednn helpers. */
function tunedStep(model: TrainableModel, batch: ImageBatch, out: Float32Array): StepFigures {
  const wall0 = performance.now();
  const cpu0 = cpuNowMs();
  const variables = model.params.trainable.map((p) => p.variable);
  tf.tidy(() => {
    const x = tf.tensor4d(batch.x, [batch.count, batch.size, batch.size, 1]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const oneHot = tf.oneHot(labels, model.classes);
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.forward(x, 'train');
      return tf.div(tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))), batch.count) as tf.Scalar;
    }, variables);
    value.dataSync();
    let offset = 0;
    for (const v of variables) {
      copyTensorInto(grads[v.name], out, offset);
      offset += v.size;
    }
  });
  const wall1 = performance.now();
  let offset = 0;
  for (const v of variables) {
    sgdUpdate(v, out.subarray(offset, offset + v.size), 0.01);
    offset += v.size;
  }
  const wall2 = performance.now();
  return { wallMs: wall2 - wall0, cpuMs: cpuNowMs() - cpu0, gradMs: wall1 - wall0, sgdMs: wall2 - wall1 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const CONVOLUTION_KERNELS = new Set(['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter']);

function printKernelTable(timer: KernelTimer, steps: number, step: { wallMs: number; cpuMs: number }, top: number): void {
  if (timer.clock === 'none') return;
  const stepMs = timer.clock === 'cpu' ? step.cpuMs : step.wallMs;
  const rows = [...timer.totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const sum = (filter: (name: string) => boolean) => rows.filter(([k]) => filter(k)).reduce((total, [, v]) => total + v.ms, 0) / steps;
  const kernels = sum(() => true);
  const conv = sum((k) => CONVOLUTION_KERNELS.has(k));
  console.log(
    `  ${timer.clock} time: step ${stepMs.toFixed(1)} ms = convolutions ${conv.toFixed(1)} + other kernels ${(kernels - conv).toFixed(1)} + outside kernels ${(stepMs - kernels).toFixed(1)}`,
  );
  console.log(`  ${'kernel'.padEnd(28)}${'ms/step'.padStart(9)}${'share'.padStart(8)}${'calls'.padStart(7)}`);
  for (const [name, v] of rows.slice(0, top)) {
    const ms = v.ms / steps;
    console.log(`  ${name.padEnd(28)}${ms.toFixed(2).padStart(9)}${`${((100 * ms) / stepMs).toFixed(1)}%`.padStart(8)}${String(v.calls / steps).padStart(7)}`);
  }
}

interface VariantResult {
  variant: string;
  wallExamplesPerSec: number;
  cpuExamplesPerSec: number;
}

function benchVariant(variant: Variant, options: Options, timer: KernelTimer): Promise<VariantResult> {
  const base = ResNet18.create(benchRng(12345));
  const model: TrainableModel = variant === 'model' ? base : new FusedBatchNormResNet18(base);
  const step = variant === 'tuned' ? tunedStep : timedStep;
  const batch = syntheticBatch(options.size, options.batch);
  // The trainer reuses one gradient buffer across steps; so does the bench.
  const out = new Float32Array(model.params.trainableCount);
  for (let i = 0; i < options.warmup; i++) step(model, batch, out);
  timer.reset();
  const backend = tf.backend() as OnednnBackend;
  const allocated = backend.allocationStats;
  const figures: StepFigures[] = [];
  for (let i = 0; i < options.steps; i++) figures.push(step(model, batch, out));
  const fresh = (backend.allocationStats.freshBytes - allocated.freshBytes) / options.steps / 2 ** 20;
  const reused = (backend.allocationStats.reusedBytes - allocated.reusedBytes) / options.steps / 2 ** 20;
  const wall = median(figures.map((f) => f.wallMs));
  const cpu = median(figures.map((f) => f.cpuMs));
  console.log(
    `\n${variant}: median step ${wall.toFixed(1)} ms wall (${median(figures.map((f) => f.gradMs)).toFixed(1)} gradients + ${median(figures.map((f) => f.sgdMs)).toFixed(1)} sgd), ${cpu.toFixed(1)} ms CPU; tensors alive ${tf.memory().numTensors}`,
  );
  console.log(
    `  native outputs per step: ${reused.toFixed(1)} MiB recycled, ${fresh.toFixed(1)} MiB freshly allocated; pool holds ${(backend.pooledBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  const mean = (key: 'wallMs' | 'cpuMs') => figures.reduce((total, f) => total + f[key], 0) / figures.length;
  printKernelTable(timer, options.steps, { wallMs: mean('wallMs'), cpuMs: mean('cpuMs') }, options.top);
  model.dispose();
  return Promise.resolve({ variant, wallExamplesPerSec: (options.batch * 1000) / wall, cpuExamplesPerSec: (options.batch * 1000) / cpu });
}

/** The d2l ResNet-18 as the seed builds it (stem padding 2), timed like the TypeScript step. */
const TORCH_SCRIPT = String.raw`
import json, sys, time, torch
from torch import nn
from torch.nn import functional as F
size, batch, steps, warmup, threads = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
def bn(c): return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
class Residual(nn.Module):
    def __init__(self, cin, c, proj=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(cin, c, 1, stride=stride) if proj else None
        self.bn1, self.bn2 = bn(c), bn(c)
    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))
def stage(cin, c, first=False):
    return [Residual(cin, c, proj=True, stride=2) if not first else Residual(c, c), Residual(c, c)]
net = nn.Sequential(
    nn.Sequential(nn.Conv2d(1, 64, 7, stride=2, padding=2), bn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)),
    nn.Sequential(*stage(64, 64, True)), nn.Sequential(*stage(64, 128)), nn.Sequential(*stage(128, 256)),
    nn.Sequential(*stage(256, 512)), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))
net.train()
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x = torch.rand(batch, 1, size, size)
y = torch.arange(batch) % 10
def step():
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()
for _ in range(warmup): step()
walls, cpus = [], []
for _ in range(steps):
    w, c = time.perf_counter(), time.process_time()
    step()
    walls.append(time.perf_counter() - w); cpus.append(time.process_time() - c)
walls.sort(); cpus.sort()
print(json.dumps({"wall_ms": 1000 * walls[len(walls) // 2], "cpu_ms": 1000 * cpus[len(cpus) // 2], "torch": torch.__version__}))
`;

function benchTorch(options: Options): { wallExamplesPerSec: number; cpuExamplesPerSec: number; version: string } | null {
  if (!existsSync(PYTHON)) return null;
  const env = { ...process.env, OMP_NUM_THREADS: String(options.threads), MKL_NUM_THREADS: String(options.threads) };
  const args = ['-c', TORCH_SCRIPT, ...[options.size, options.batch, options.steps, options.warmup, options.threads].map(String)];
  const result = spawnSync(PYTHON, args, { env, encoding: 'utf8' });
  if (result.status !== 0) {
    console.log(`PyTorch reference failed: ${result.stderr.trim().split('\n').pop()}`);
    return null;
  }
  const figures = JSON.parse(result.stdout.trim().split('\n').pop()!) as { wall_ms: number; cpu_ms: number; torch: string };
  return {
    wallExamplesPerSec: (options.batch * 1000) / figures.wall_ms,
    cpuExamplesPerSec: (options.batch * 1000) / figures.cpu_ms,
    version: figures.torch,
  };
}

/** Entry point for bench/main.ts (`npm run bench -- onednn-kernels ...`). */
export async function runBenchmark(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (!(await registerOnednnBackend({ threads: options.threads }))) {
    throw new Error(`onednn backend unavailable: ${onednnUnavailableReason()}`);
  }
  await tf.setBackend('onednn');
  console.log(
    `ResNet-18 training step, ${options.size}x${options.size} images, batch ${options.batch}, ${options.threads} thread(s), ${options.steps} timed steps after ${options.warmup} warm-up`,
  );
  const timer = new KernelTimer(options.kernelClock);
  timer.install();
  const results: VariantResult[] = [];
  for (const variant of options.variants) results.push(await benchVariant(variant, options, timer));
  const torch = options.torch ? benchTorch(options) : null;
  console.log('\nexamples/sec (wall | CPU time):');
  for (const r of results) {
    const ratio = torch
      ? `  = ${(r.wallExamplesPerSec / torch.wallExamplesPerSec).toFixed(2)} | ${(r.cpuExamplesPerSec / torch.cpuExamplesPerSec).toFixed(2)} x PyTorch`
      : '';
    console.log(`  onednn ${r.variant.padEnd(9)}${r.wallExamplesPerSec.toFixed(1).padStart(7)} | ${r.cpuExamplesPerSec.toFixed(1).padStart(7)}${ratio}`);
  }
  if (torch)
    console.log(`  pytorch ${torch.version.padEnd(8)} ${torch.wallExamplesPerSec.toFixed(1).padStart(7)} | ${torch.cpuExamplesPerSec.toFixed(1).padStart(7)}`);
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  await runBenchmark(process.argv.slice(2));
}
