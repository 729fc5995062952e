/**
 * `npm run bench -- step [--threads N] [--backends cpu,wasm,onednn] [--configs 96x32,28x64]
 * [--warmup 2] [--steps 5] [--budget 20] [--cpu-steps]`
 *
 * Examples/sec of ResNet-18 on each TensorFlow.js backend, beside the seed's PyTorch program
 * (bench/pytorch_step.py) measured on the same machine in the same run with the same number
 * of threads:
 * - step: one training step, `computeGradients` (forward in train mode, cross-entropy,
 *   backward, gradients read back into one flat buffer) then `applySgd` (lr 0.05): what a
 *   one-worker training loop does per batch.
 * - forward: one train-mode forward pass (batch statistics, running statistics updated) with
 *   no gradient tape, logits read back: the cost of the step's forward half on its own.
 * Each backend runs in its own child process (tfjs backends share global kernel registries, so
 * one process per backend keeps the numbers clean); one that fails to start is reported as
 * unavailable with the reason. Each measurement is warmed up, then timed step by step: up to
 * `--steps` runs, stopping early once `--budget` seconds have gone by (at least one run);
 * the median is reported.
 *
 * tfjs-backend-cpu is measured for the forward pass only unless `--cpu-steps` is given: its
 * Conv2DBackpropFilter is a naive element-by-element loop, and one training step takes minutes
 * at these sizes. Its 96x96 forward pass is skipped for the same reason (tens of seconds each).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../shared/errors.ts';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { parseBackendChoice, type ConcreteBackend } from '../shared/config/compute-options.ts';
import { Prng } from '../shared/data/prng.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { computeGradients, type ImageBatch } from '../shared/train/gradient-step.ts';
import { applySgd } from '../shared/train/sgd.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PYTORCH_STEP = fileURLToPath(new URL('./pytorch_step.py', import.meta.url));
/** Debian's interpreter: the one with python3-torch. */
const PYTHON = '/usr/bin/python3';
const LEARNING_RATE = 0.05;
/** The line a child prints its result on; tfjs may print banners on stdout too. */
const RESULT_MARKER = 'STEP_BENCH_RESULT ';
/** A child that has not answered by then is killed and reported as failed. */
const CHILD_TIMEOUT_MS = 15 * 60_000;

/** Image side and batch size of one measured configuration. */
export interface Config {
  size: number;
  batch: number;
}

/** Options after parsing; see the module comment for the flags. */
interface StepOptions {
  threads: number;
  backends: ConcreteBackend[];
  configs: Config[];
  warmup: number;
  steps: number;
  budgetSeconds: number;
  cpuSteps: boolean;
  /** Internal: measure this backend in this process and print the result. */
  child?: ConcreteBackend;
}

/** Seconds per run, or why the measurement was not made. */
type Timing = { seconds: number[] } | { skipped: string };

interface ConfigResult extends Config {
  forward: Timing;
  step: Timing;
}

/** What one backend (or PyTorch) produced: its log line and results, or why it could not run. */
type BackendResult = { detail: string; results: ConfigResult[] } | { unavailable: string };

const DEFAULTS = { backends: 'cpu,wasm,onednn', configs: '96x32,28x64', warmup: 2, steps: 5, budgetSeconds: 20 };

function positiveInteger(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} needs a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseConfigs(text: string): Config[] {
  return text.split(',').map((item) => {
    const match = /^(\d+)x(\d+)$/.exec(item.trim());
    if (!match) throw new ConfigError(`--configs takes SIZExBATCH items (e.g. 96x32), got ${JSON.stringify(item)}`);
    return { size: positiveInteger('--configs size', match[1]), batch: positiveInteger('--configs batch', match[2]) };
  });
}

function parseBackends(text: string): ConcreteBackend[] {
  return text.split(',').map((name) => {
    const choice = parseBackendChoice(name);
    if (choice === 'auto') throw new ConfigError('--backends lists concrete backends, not auto');
    return choice;
  });
}

/** Parses the flags; unknown flags and bad values throw ConfigError. */
export function parseStepOptions(argv: string[]): StepOptions {
  const raw = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === '--cpu-steps') switches.add(flag);
    else if (['--threads', '--backends', '--configs', '--warmup', '--steps', '--budget', '--child'].includes(flag)) raw.set(flag, argv[(i += 1)] ?? '');
    else throw new ConfigError(`unknown flag ${JSON.stringify(flag)} for the step benchmark`);
  }
  const warmup = Number(raw.get('--warmup') ?? DEFAULTS.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new ConfigError(`--warmup needs a non-negative integer, got ${raw.get('--warmup')}`);
  const budgetSeconds = Number(raw.get('--budget') ?? DEFAULTS.budgetSeconds);
  if (!(budgetSeconds > 0)) throw new ConfigError(`--budget needs a positive number of seconds, got ${raw.get('--budget')}`);
  const child = raw.get('--child');
  return {
    threads: raw.has('--threads') ? positiveInteger('--threads', raw.get('--threads')) : availableParallelism(),
    backends: parseBackends(raw.get('--backends') ?? DEFAULTS.backends),
    configs: parseConfigs(raw.get('--configs') ?? DEFAULTS.configs),
    warmup,
    steps: raw.has('--steps') ? positiveInteger('--steps', raw.get('--steps')) : DEFAULTS.steps,
    budgetSeconds,
    cpuSteps: switches.has('--cpu-steps'),
    child: child === undefined ? undefined : parseBackends(child)[0],
  };
}

/** Deterministic images in [0, 1] and labels; the values do not change the cost. */
export function syntheticBatch({ size, batch }: Config): ImageBatch {
  const rng = new Prng(7);
  const x = new Float32Array(batch * size * size);
  for (let i = 0; i < x.length; i += 1) x[i] = rng.nextFloat();
  const labels = Int32Array.from({ length: batch }, () => rng.nextBelow(10));
  return { x, labels, count: batch, size };
}

/** Runs `fn` `warmup` times, then up to `steps` times (at least once) within the budget. */
function timedRuns(fn: () => void, options: StepOptions): number[] {
  for (let i = 0; i < options.warmup; i += 1) fn();
  const seconds: number[] = [];
  const start = performance.now();
  while (seconds.length < options.steps && (seconds.length === 0 || performance.now() - start < options.budgetSeconds * 1000)) {
    const t0 = performance.now();
    fn();
    seconds.push((performance.now() - t0) / 1000);
  }
  return seconds;
}

function forwardOnce(model: TrainableModel, batch: ImageBatch): void {
  tf.tidy(() => {
    const x = tf.tensor4d(batch.x, [batch.count, batch.size, batch.size, 1]);
    model.forward(x, 'train').dataSync();
  });
}

export function stepOnce(model: TrainableModel, batch: ImageBatch, out: Float32Array): void {
  const { gradients } = computeGradients(model, batch, { lossDenominator: batch.count, microBatch: batch.count, out });
  applySgd(model, gradients, LEARNING_RATE);
}

/** Why `backend` skips this measurement by default, if it does. */
function skipReason(backend: ConcreteBackend, config: Config, kind: 'forward' | 'step', options: StepOptions): string | undefined {
  if (backend !== 'cpu') return undefined;
  if (kind === 'step' && !options.cpuSteps) return 'skipped: minutes per step (naive Conv2DBackpropFilter); --cpu-steps runs it';
  if (config.size > 64 && kind === 'forward') return 'skipped: tens of seconds per pass';
  return undefined;
}

function measureConfig(backend: ConcreteBackend, config: Config, options: StepOptions): ConfigResult {
  const model = createSeededModel('resnet18', 1);
  const batch = syntheticBatch(config);
  const out = new Float32Array(model.params.trainableCount);
  const timing = (kind: 'forward' | 'step', fn: () => void): Timing => {
    const reason = skipReason(backend, config, kind, options);
    return reason === undefined ? { seconds: timedRuns(fn, options) } : { skipped: reason };
  };
  const forward = timing('forward', () => forwardOnce(model, batch));
  const step = timing('step', () => stepOnce(model, batch, out));
  model.dispose();
  return { ...config, forward, step };
}

/** The child's work: start `backend`, measure every config, print the result line. */
async function runChild(backend: ConcreteBackend, options: StepOptions): Promise<void> {
  let result: BackendResult;
  try {
    const selection = await selectBackend(backend, { threads: options.threads });
    result = { detail: selection.detail, results: options.configs.map((config) => measureConfig(backend, config, options)) };
  } catch (error) {
    // A backend that does not start (BackendError) or fails on a kernel is reported, not fatal.
    result = { unavailable: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`);
}

interface ProcessOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a child to completion (killed after CHILD_TIMEOUT_MS), collecting its output. */
function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<ProcessOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function lastLines(text: string, count: number): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}

function threadEnv(threads: number): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
}

function childArgs(backend: ConcreteBackend, options: StepOptions): string[] {
  const args = ['--import', 'tsx', BENCH_MAIN, 'step', '--child', backend, '--threads', String(options.threads)];
  args.push('--configs', options.configs.map((c) => `${c.size}x${c.batch}`).join(','));
  args.push('--warmup', String(options.warmup), '--steps', String(options.steps), '--budget', String(options.budgetSeconds));
  if (options.cpuSteps) args.push('--cpu-steps');
  return args;
}

/** Measures `backend` in a fresh Node process; a backend that does not start is `unavailable`. */
async function measureBackend(backend: ConcreteBackend, options: StepOptions): Promise<BackendResult> {
  const output = await runProcess(process.execPath, childArgs(backend, options), threadEnv(options.threads));
  const line = output.stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
  if (line) return JSON.parse(line.slice(RESULT_MARKER.length)) as BackendResult;
  return { unavailable: `the child process exited with code ${output.code}: ${lastLines(output.stderr, 3)}` };
}

/** The seed's PyTorch program, same configs and thread count. */
async function measurePytorch(options: StepOptions): Promise<BackendResult> {
  const args = [PYTORCH_STEP, '--threads', String(options.threads), '--configs', options.configs.map((c) => `${c.size}x${c.batch}`).join(',')];
  args.push('--warmup', String(options.warmup), '--steps', String(options.steps), '--budget', String(options.budgetSeconds));
  const output = await runProcess(PYTHON, args, threadEnv(options.threads));
  if (output.code !== 0) return { unavailable: `${PYTHON} exited with code ${output.code}: ${lastLines(output.stderr, 3)}` };
  const parsed = JSON.parse(output.stdout) as { detail: string; results: { size: number; batch: number; forward: number[]; step: number[] }[] };
  return {
    detail: parsed.detail,
    results: parsed.results.map((r) => ({ size: r.size, batch: r.batch, forward: { seconds: r.forward }, step: { seconds: r.step } })),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Examples per second from the median run, or undefined when not measured. */
function examplesPerSecond(timing: Timing, batch: number): number | undefined {
  return 'seconds' in timing ? batch / median(timing.seconds) : undefined;
}

/** (slowest - fastest) / median of the timed runs, in percent: how noisy the figure is. */
function spread(timing: Timing): string {
  if (!('seconds' in timing) || timing.seconds.length < 2) return '-';
  const { seconds } = timing;
  return `${(((Math.max(...seconds) - Math.min(...seconds)) / median(seconds)) * 100).toFixed(0)}%`;
}

function format(value: number | undefined, digits = 1): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a / b;
}

function printTable(rows: { name: string; result: BackendResult }[], pytorch: BackendResult, options: StepOptions): void {
  const lines: string[] = [];
  lines.push(`threads: ${options.threads}; warm-up ${options.warmup}, then up to ${options.steps} timed runs within ${options.budgetSeconds} s; medians`);
  for (const { name, result } of [...rows, { name: 'pytorch', result: pytorch }]) {
    lines.push(`  ${name}: ${'unavailable' in result ? `unavailable (${result.unavailable})` : result.detail}`);
  }
  lines.push('');
  lines.push(
    ['backend', 'config', 'step ex/s', 'fwd ex/s', 'step/fwd time', 'step vs torch', 'fwd vs torch', 'step spread']
      .map((h, i) => (i === 0 ? h.padEnd(12) : i === 1 ? h.padEnd(14) : h.padStart(14)))
      .join(''),
  );
  for (const config of options.configs) {
    const label = `${config.size}x${config.size} b${config.batch}`;
    const torch = resultFor(pytorch, config);
    const torchStep = torch && examplesPerSecond(torch.step, config.batch);
    const torchForward = torch && examplesPerSecond(torch.forward, config.batch);
    for (const { name, result } of [...rows, { name: 'pytorch', result: pytorch }]) {
      const r = resultFor(result, config);
      if (!r) {
        lines.push(`${name.padEnd(12)}${label.padEnd(14)}${'unavailable'.padStart(14)}`);
        continue;
      }
      const step = examplesPerSecond(r.step, config.batch);
      const forward = examplesPerSecond(r.forward, config.batch);
      // step/fwd time = (1 / step ex/s) / (1 / fwd ex/s).
      const cells = [
        format(step),
        format(forward),
        format(ratio(forward, step), 2),
        format(ratio(step, torchStep), 3),
        format(ratio(forward, torchForward), 3),
        spread(r.step),
      ];
      lines.push(`${name.padEnd(12)}${label.padEnd(14)}${cells.map((c) => c.padStart(14)).join('')}`);
      for (const timing of [r.step, r.forward])
        if ('skipped' in timing) lines.push(`${''.padEnd(26)}(${timing === r.step ? 'step' : 'forward'} ${timing.skipped})`);
    }
  }
  lines.push('');
  lines.push('step/fwd time: a training step costs this many forward passes (target for wasm: <= 3.5).');
  lines.push('vs torch: tfjs examples/sec divided by PyTorch examples/sec (1 = as fast as the seed).');
  lines.push('step spread: (slowest - fastest) / median step time; large values mean a busy machine.');
  process.stdout.write(`${lines.join('\n')}\n`);
}

function resultFor(result: BackendResult, config: Config): ConfigResult | undefined {
  if ('unavailable' in result) return undefined;
  return result.results.find((r) => r.size === config.size && r.batch === config.batch);
}

/** Entry point for `npm run bench -- step`; see the module comment. */
export async function runBenchmark(argv: string[]): Promise<void> {
  let options: StepOptions;
  try {
    options = parseStepOptions(argv);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`bench step: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.child !== undefined) {
    await runChild(options.child, options);
    return;
  }
  // One at a time: the measurements must not compete for the cores.
  const rows: { name: string; result: BackendResult }[] = [];
  for (const backend of options.backends) {
    process.stderr.write(`measuring ${backend} ...\n`);
    rows.push({ name: backend, result: await measureBackend(backend, options) });
  }
  process.stderr.write('measuring pytorch ...\n');
  const pytorch = await measurePytorch(options);
  printTable(rows, pytorch, options);
}
