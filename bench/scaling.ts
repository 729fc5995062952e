/**
 * `npm run bench -- scaling [--workers 1,2] [--batch-size 256] [--resize 96] [--steps 4]
 * [--backend auto] [--threads 1]`: cluster examples/sec of real worker processes (launched as
 * `launch --local` does) at the same global batch, with each step's time split into data,
 * compute, all-reduce and update (rank 0's, from the run's progress events). The first step of
 * each run is a warm-up and is not counted. Target: 2 workers >= 1.8x one worker. The defaults
 * are the seed's batch and image size; at 28x28 a step is dominated by per-parameter work and
 * the all-reduce, and two workers gain nothing. Beside ours, in the same run, PyTorch DDP
 * (gloo, bench/pytorch_ddp.py) at each worker count: one process and one thread per rank, the
 * same global batch split across ranks, the seed's ResNet-18.
 *
 * `--bucket-mb N|off` sets the runs' gradient buckets (default: the run default, 25).
 *
 * `--simulate-gpu [--gpu-examples-per-sec 2357.6]` (workers 1,2,4 and 12 steps by default):
 * scaling as GPUs would see it. Each worker's compute is a wait of (its share of the batch) /
 * examples-per-sec seconds, the seed's GPU time by default (run config `simulateGpu`,
 * shared/train/simulated-gpu-gradients.ts), while the data path, the all-reduce and the SGD
 * update run for real. Prints the scaling efficiency, throughput_N / (N * throughput_1), against
 * the targets 0.9 at 2 and 0.8 at 4 simulated GPUs on one host, and the milliseconds of each
 * step outside the simulated compute, which is what keeps the efficiency under 1.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { ensureRedis } from '../shared/redis/local-redis.ts';
import type { RunProgress } from '../shared/run/run-state.ts';
import type { SimulatedGpuOptions } from '../shared/config/training-options.ts';
import { PYTHON } from '../test/helpers/pytorch.ts';
import { runOnLocalWorkers } from './local-run.ts';

const PYTORCH_DDP = fileURLToPath(new URL('./pytorch_ddp.py', import.meta.url));
const execFileAsync = promisify(execFile);

interface ScalingResult {
  workers: number;
  examplesPerSec: number;
  split: { dataMs: number; computeMs: number; allReduceMs: number; updateMs: number; stepMs: number };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

interface ScalingFlags {
  batchSize: number;
  resize: number;
  steps: number;
  backend: string;
  threads: number;
  /** With a simulated GPU of this speed (run config `simulateGpu`), or the backend's real compute. */
  simulateGpu: SimulatedGpuOptions | undefined;
  /** The runs' `bucketMb` (undefined: the default). */
  bucketMb: string | undefined;
}

async function measure(redisUrl: string, scratch: string, workers: number, flags: ScalingFlags, label = `${workers}`): Promise<ScalingResult> {
  const { steps } = await runOnLocalWorkers(redisUrl, scratch, `scaling-${label}`, {
    workers,
    epochs: 1,
    batchSize: flags.batchSize,
    resize: flags.resize,
    lr: 0.05,
    seed: 0,
    limitTrain: flags.batchSize * flags.steps,
    limitTest: 1,
    backend: flags.backend,
    threads: flags.threads,
    simulateGpu: flags.simulateGpu,
    ...(flags.bucketMb === undefined ? {} : { bucketMb: flags.bucketMb }),
  });
  const timed = steps.filter((p) => (p.globalStep ?? 0) > 1 && p.timings);
  const part = (key: keyof NonNullable<RunProgress['timings']>) => mean(timed.map((p) => p.timings![key]));
  const split = { dataMs: part('dataMs'), computeMs: part('computeMs'), allReduceMs: part('allReduceMs'), updateMs: part('updateMs'), stepMs: 0 };
  split.stepMs = split.dataMs + split.computeMs + split.allReduceMs + split.updateMs;
  return { workers, examplesPerSec: (flags.batchSize / split.stepMs) * 1000, split };
}

/** The seed's GPU: examples/sec of one training step there (forward and backward). */
const SEED_GPU_EXAMPLES_PER_SEC = 2357.6;
/** Scaling efficiency targets of simulated GPUs on one host, by worker count (issue 10). */
const SIMULATED_TARGETS: ReadonlyMap<number, number> = new Map([
  [2, 0.9],
  [4, 0.8],
]);

function parseScalingFlags(argv: string[]): { flags: ScalingFlags; counts: number[] } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string' },
      'batch-size': { type: 'string', default: '256' },
      resize: { type: 'string', default: '96' },
      steps: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string', default: '1' },
      'simulate-gpu': { type: 'boolean', default: false },
      'gpu-examples-per-sec': { type: 'string', default: String(SEED_GPU_EXAMPLES_PER_SEC) },
      'bucket-mb': { type: 'string' },
    },
  });
  const simulated = values['simulate-gpu'];
  const flags: ScalingFlags = {
    batchSize: Number(values['batch-size']),
    resize: Number(values.resize),
    // Simulated steps take a fraction of a second: more of them for a steady mean.
    steps: Number(values.steps ?? (simulated ? 12 : 4)),
    backend: values.backend,
    threads: Number(values.threads),
    simulateGpu: simulated ? { examplesPerSec: Number(values['gpu-examples-per-sec']) } : undefined,
    bucketMb: values['bucket-mb'],
  };
  const counts = (values.workers ?? (simulated ? '1,2,4' : '1,2')).split(',').map(Number);
  return { flags, counts };
}

export async function runBenchmark(argv: string[]): Promise<void> {
  const { flags, counts } = parseScalingFlags(argv);
  const redis = await ensureRedis({ probeUrl: 'redis://127.0.0.1:1' });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-bench-scaling-'));
  const results: ScalingResult[] = [];
  let ceiling: number | undefined;
  try {
    for (const workers of counts) {
      process.stderr.write(`scaling: ${workers} worker(s), global batch ${flags.batchSize} at ${flags.resize}x${flags.resize}, ${flags.steps} steps...\n`);
      results.push(await measure(redis.url, scratch, workers, flags));
    }
    if (!flags.simulateGpu && counts.includes(2)) ceiling = await measureTwoAlone(redis.url, scratch, flags);
  } finally {
    await redis.close();
    await rm(scratch, { recursive: true, force: true });
  }
  if (flags.simulateGpu) {
    printSimulated(results, flags, flags.simulateGpu.examplesPerSec);
    return;
  }
  const ddp = await measureDdpAll(counts, flags);
  printReal(results, flags, ceiling, ddp);
}

/** The machine and its load, for the header line: figures from a loaded machine read differently. */
function machineLine(): string {
  return `${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

function splitColumns(r: ScalingResult): string {
  const s = r.split;
  return `${s.stepMs.toFixed(0).padStart(8)}  ${s.dataMs.toFixed(1).padStart(8)}  ${s.computeMs.toFixed(0).padStart(10)}  ${s.allReduceMs.toFixed(0).padStart(13)}  ${s.updateMs.toFixed(0).padStart(9)}`;
}

function printReal(results: ScalingResult[], flags: ScalingFlags, ceiling: number | undefined, ddp: Map<number, DdpResult>): void {
  const base = results[0];
  console.log(
    `\nscaling: ResNet-18, global batch ${flags.batchSize}, ${flags.resize}x${flags.resize}, backend ${flags.backend}, ${flags.threads} thread(s) per worker, ${machineLine()}`,
  );
  console.log('workers  examples/sec  vs first   step ms   data ms  compute ms  all-reduce ms  update ms  DDP examples/sec  DDP vs first  ours/DDP');
  const ddpBase = ddp.get(base.workers);
  for (const r of results) {
    const peer = ddp.get(r.workers);
    const peerColumns =
      peer === undefined || 'unavailable' in peer
        ? ''
        : `  ${peer.examplesPerSec.toFixed(1).padStart(16)}  ${ddpBase && !('unavailable' in ddpBase) ? (peer.examplesPerSec / ddpBase.examplesPerSec).toFixed(2).padStart(11) : '-'.padStart(11)}x  ${(r.examplesPerSec / peer.examplesPerSec).toFixed(2).padStart(8)}`;
    console.log(
      `${String(r.workers).padStart(7)}  ${r.examplesPerSec.toFixed(1).padStart(12)}  ${(r.examplesPerSec / base.examplesPerSec).toFixed(2).padStart(7)}x  ${splitColumns(r)}${peerColumns}`,
    );
  }
  for (const [workers, peer] of ddp) if ('unavailable' in peer) console.log(`PyTorch DDP at ${workers} rank(s): unavailable: ${peer.unavailable}`);
  const detail = [...ddp.values()].find((peer): peer is DdpFigures => !('unavailable' in peer))?.detail;
  if (detail) console.log(`DDP: ${detail}, same global batch split across ranks, mean of ${Math.max(1, flags.steps - 1)} steps after a warm-up`);
  const two = results.find((r) => r.workers === 2);
  if (ceiling !== undefined) {
    console.log(
      `ceiling: two 1-worker runs of half the batch at once, no ring: ${ceiling.toFixed(1)} examples/sec together, ${(ceiling / base.examplesPerSec).toFixed(2)}x one worker`,
    );
  }
  if (two && base.workers === 1) console.log(`target: 2 workers >= 1.8x one worker: ${(two.examplesPerSec / base.examplesPerSec).toFixed(2)}x`);
}

/** Milliseconds the simulated GPU of the largest rank's share of the batch takes, per step. */
function simulatedMsOf(flags: ScalingFlags, workers: number, examplesPerSec: number): number {
  return (Math.ceil(flags.batchSize / workers) / examplesPerSec) * 1000;
}

/**
 * The simulated-GPU table: efficiency against one worker, and the milliseconds of each step
 * beyond the simulated compute (data, all-reduce, update and the wait's overrun), which do not
 * shrink as the compute does; each target line says how many of those it allows.
 */
function printSimulated(results: ScalingResult[], flags: ScalingFlags, examplesPerSec: number): void {
  const base = results[0];
  console.log(
    `\nscaling with simulated GPUs: ResNet-18, global batch ${flags.batchSize}, ${flags.resize}x${flags.resize}, compute = share / ${examplesPerSec} s, backend ${flags.backend}, ${flags.threads} thread(s) per worker, ${machineLine()}`,
  );
  console.log('workers  examples/sec  efficiency   step ms   data ms  compute ms  all-reduce ms  update ms  simulated ms  beyond simulated ms');
  for (const r of results) {
    const simulatedMs = simulatedMsOf(flags, r.workers, examplesPerSec);
    const efficiency = (r.examplesPerSec / (r.workers * base.examplesPerSec)) * base.workers;
    const outside = r.split.stepMs - simulatedMs;
    console.log(
      `${String(r.workers).padStart(7)}  ${r.examplesPerSec.toFixed(1).padStart(12)}  ${efficiency.toFixed(2).padStart(10)}  ${splitColumns(r)}  ${simulatedMs.toFixed(1).padStart(12)}  ${outside.toFixed(1).padStart(19)}`,
    );
  }
  if (base.workers !== 1) return;
  for (const [workers, target] of SIMULATED_TARGETS) {
    const r = results.find((each) => each.workers === workers);
    if (!r) continue;
    const efficiency = r.examplesPerSec / (workers * base.examplesPerSec);
    // The step time that meets the target, less the simulated compute: what everything else may take.
    const budgetMs = base.split.stepMs / (workers * target) - simulatedMsOf(flags, workers, examplesPerSec);
    const outside = r.split.stepMs - simulatedMsOf(flags, workers, examplesPerSec);
    console.log(
      `target: efficiency >= ${target} at ${workers} simulated GPUs: ${efficiency.toFixed(2)} (${efficiency >= target ? 'met' : 'missed'}); it allows ${budgetMs.toFixed(0)} ms per step beyond the simulated compute, measured ${outside.toFixed(0)} ms`,
    );
  }
}

/** PyTorch DDP's figures at one world size, or why it did not run. */
type DdpResult = DdpFigures | { unavailable: string };

interface DdpFigures {
  detail: string;
  examplesPerSec: number;
}

/** PyTorch DDP at each worker count, one after another (after ours, so neither competes with the other). */
async function measureDdpAll(counts: number[], flags: ScalingFlags): Promise<Map<number, DdpResult>> {
  const results = new Map<number, DdpResult>();
  for (const workers of counts) {
    process.stderr.write(`scaling: PyTorch DDP (gloo), ${workers} rank(s)...\n`);
    results.set(
      workers,
      await measureDdp(workers, flags).catch((error: Error) => ({ unavailable: error.message.split('\n').filter(Boolean).slice(-2).join(' ') })),
    );
  }
  return results;
}

/** bench/pytorch_ddp.py with `workers` ranks: the mean step after one warm-up, as ours is counted. */
async function measureDdp(workers: number, flags: ScalingFlags): Promise<DdpFigures> {
  const args = [PYTORCH_DDP, '--world-size', String(workers), '--batch', String(flags.batchSize), '--size', String(flags.resize)];
  args.push('--warmup', '1', '--steps', String(Math.max(1, flags.steps - 1)));
  const env = { ...process.env, OMP_NUM_THREADS: String(flags.threads) };
  const { stdout } = await execFileAsync(PYTHON, args, { env, maxBuffer: 16 * 1024 * 1024 });
  const parsed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { detail: string; times_ms: number[] };
  return { detail: parsed.detail, examplesPerSec: (flags.batchSize / mean(parsed.times_ms)) * 1000 };
}

/**
 * What two workers could reach on this machine without any communication: two independent
 * 1-worker runs with half the batch each, at the same time. Cores that share caches and memory
 * bandwidth keep this under 2x; the distance from it to the 2-worker row is the ring's cost.
 */
async function measureTwoAlone(redisUrl: string, scratch: string, flags: ScalingFlags): Promise<number> {
  process.stderr.write('scaling: two independent 1-worker runs of half the batch at once (the ceiling)...\n');
  const half = { ...flags, batchSize: Math.floor(flags.batchSize / 2) };
  const pair = await Promise.all([0, 1].map((k) => measure(redisUrl, path.join(scratch, `alone-${k}`), 1, half, `alone-${k}`)));
  return pair.reduce((sum, r) => sum + r.examplesPerSec, 0);
}
