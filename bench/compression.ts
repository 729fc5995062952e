/**
 * `npm run bench -- compression [--workers 2] [--epochs 1] [--resize 28] [--batch-size 256]
 * [--lr 0.05] [--seed 0] [--limit-train N] [--limit-test N] [--backend auto] [--threads 1]`:
 * what `--grad-compression fp16` costs in accuracy. The same run (seed, data order, workers)
 * trains twice on real worker processes over the gRPC ring (FMNIST_COLLECTIVE_TRANSPORT=grpc, so
 * the gradients really travel as binary16), once with `none` and once with `fp16`, and the
 * bench prints the final epoch's train loss, train accuracy and test accuracy of both side by
 * side, and the largest absolute difference between their final weights (the last checkpoint's:
 * trainable weights, and apart from them the batch norm running statistics, whose variances are
 * large numbers that a slightly different trajectory moves by more).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GRAD_COMPRESSIONS, type GradCompression } from '../shared/config/training-options.ts';
import { ensureRedis } from '../shared/redis/local-redis.ts';
import type { EpochEntry } from '../shared/run/run-state.ts';
import { newestWeights } from '../test/helpers/checkpoint-weights.ts';
import { runOnLocalWorkers } from './local-run.ts';

interface CompressionResult {
  compression: GradCompression;
  last: EpochEntry;
  /** The final checkpoint's values by name (model.json's manifest over weights.bin). */
  weights: Map<string, Float32Array>;
}

const isRunningStatistic = (name: string) => /moving_(mean|variance)$/.test(name);

/** Largest |a - b| over the values whose names pass `include`, and how many values that was. */
function maxAbsDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>, include: (name: string) => boolean): { worst: number; count: number } {
  let worst = 0;
  let count = 0;
  for (const [name, values] of b) {
    if (!include(name)) continue;
    const other = a.get(name)!;
    for (let i = 0; i < values.length; i += 1) worst = Math.max(worst, Math.abs(other[i] - values[i]));
    count += values.length;
  }
  return { worst, count };
}

const optionalNumber = (value: string | undefined) => (value === undefined ? undefined : Number(value));

export async function runBenchmark(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string', default: '2' },
      epochs: { type: 'string', default: '1' },
      resize: { type: 'string', default: '28' },
      'batch-size': { type: 'string', default: '256' },
      lr: { type: 'string', default: '0.05' },
      seed: { type: 'string', default: '0' },
      'limit-train': { type: 'string' },
      'limit-test': { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string', default: '1' },
    },
  });
  const base = {
    workers: Number(values.workers),
    epochs: Number(values.epochs),
    resize: Number(values.resize),
    batchSize: Number(values['batch-size']),
    lr: Number(values.lr),
    seed: Number(values.seed),
    limitTrain: optionalNumber(values['limit-train']),
    limitTest: optionalNumber(values['limit-test']),
    backend: values.backend,
    threads: Number(values.threads),
  };
  const redis = await ensureRedis({ probeUrl: 'redis://127.0.0.1:1' });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-bench-compression-'));
  const env = { ...process.env, FMNIST_COLLECTIVE_TRANSPORT: 'grpc' };
  const results: CompressionResult[] = [];
  try {
    for (const compression of GRAD_COMPRESSIONS) {
      process.stderr.write(`compression: ${compression}, ${base.workers} workers, ${base.epochs} epoch(s) at ${base.resize}x${base.resize}...\n`);
      const dir = path.join(scratch, compression);
      const { run, checkpointDir } = await runOnLocalWorkers(redis.url, dir, `compression-${compression}`, { ...base, gradCompression: compression }, env);
      results.push({ compression, last: run.history.at(-1)!, weights: await newestWeights(checkpointDir) });
    }
  } finally {
    await redis.close();
    await rm(scratch, { recursive: true, force: true });
  }
  console.log(
    `\ncompression: ResNet-18, ${base.workers} workers over the gRPC ring, ${base.epochs} epoch(s), ${base.resize}x${base.resize}, batch ${base.batchSize}, lr ${base.lr}, seed ${base.seed}, backend ${base.backend}`,
  );
  console.log('gradients  train loss  train acc  test acc  seconds');
  for (const { compression, last } of results) {
    console.log(
      `${compression.padEnd(9)}  ${last.loss.toFixed(4).padStart(10)}  ${last.trainAcc.toFixed(4).padStart(9)}  ${last.testAcc.toFixed(4).padStart(8)}  ${last.seconds.toFixed(0).padStart(7)}`,
    );
  }
  const [none, fp16] = results;
  const trainable = maxAbsDifference(fp16.weights, none.weights, (name) => !isRunningStatistic(name));
  const statistics = maxAbsDifference(fp16.weights, none.weights, isRunningStatistic);
  console.log(`max |w_fp16 - w_none| over the ${trainable.count} trainable weights: ${trainable.worst.toExponential(3)}`);
  console.log(`max |w_fp16 - w_none| over the ${statistics.count} batch norm running statistics: ${statistics.worst.toExponential(3)}`);
  console.log(`test acc fp16 - none: ${((fp16.last.testAcc - none.last.testAcc) * 100).toFixed(2)} points`);
}
