/**
 * `npm run bench -- overlap [--transport grpc,shm] [--bucket-mb 25] [--batch-size 256]
 * [--resize 96] [--steps 3] [--backend onednn] [--threads 1] [--model resnet18]`: two ranks (one
 * process each, a real TrainingLoop over the gRPC ring or shared memory) train the same steps
 * with gradient buckets and with one all-reduce after the backward pass, side by side. Per
 * configuration: mean step, compute and exposed all-reduce time (rank 0, first step left out as
 * a warm-up), the all-reduce time in all and the part of it that ran during the gradient
 * computation, and their ratio, the fraction hidden. Both runs must end with the same weights.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { ConcreteBackend } from '../shared/config/compute-options.ts';
import type { ModelKind } from '../shared/model/trainable-model.ts';
import type { StepTimings } from '../shared/train/training-loop.ts';
import { trainRanks } from '../test/helpers/bucket-train-handle.ts';

export async function runBenchmark(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      transport: { type: 'string', default: 'grpc,shm' },
      'bucket-mb': { type: 'string', default: '25' },
      'batch-size': { type: 'string', default: '256' },
      resize: { type: 'string', default: '96' },
      steps: { type: 'string', default: '3' },
      backend: { type: 'string', default: 'onednn' },
      threads: { type: 'string', default: '1' },
      model: { type: 'string', default: 'resnet18' },
    },
  });
  const batchSize = Number(values['batch-size']);
  const steps = Number(values.steps);
  const training = { epochs: 1, batchSize, resize: Number(values.resize), seed: 0, limitTrain: batchSize * steps, limitTest: 2, lr: 0.05 };
  const run = { worldSize: 2, backend: values.backend as ConcreteBackend, threads: Number(values.threads), model: values.model as ModelKind };
  console.log(
    `overlap: ${run.model}, 2 ranks, global batch ${batchSize} at ${training.resize}x${training.resize}, ${steps} steps, ${run.backend} with ${run.threads} thread(s) each, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`,
  );
  console.log('transport  buckets   step ms  compute ms  exposed all-reduce ms  all-reduce ms  overlapped ms  hidden  weights');
  for (const transport of values.transport.split(',') as Array<'grpc' | 'shm'>) {
    let reference: string | undefined;
    for (const bucketMb of ['off', values['bucket-mb']]) {
      const shmName = `/fmnist-bench-overlap-${process.pid}-${transport}-${bucketMb}`;
      const ranks = await trainRanks({ ...run, transport, shmName, training: { ...training, bucketMb } });
      reference ??= ranks[0].sha256;
      const m = meanOf(ranks[0].timings.slice(1));
      const hidden = m.allReduceBusyMs > 0 ? m.allReduceOverlappedMs / m.allReduceBusyMs : 0;
      console.log(
        `${transport.padEnd(9)}  ${bucketMb.padStart(7)}  ${m.stepMs.toFixed(0).padStart(8)}  ${m.computeMs.toFixed(0).padStart(10)}  ${m.allReduceMs.toFixed(0).padStart(21)}  ${m.allReduceBusyMs.toFixed(0).padStart(13)}  ${m.allReduceOverlappedMs.toFixed(0).padStart(13)}  ${(100 * hidden).toFixed(0).padStart(5)}%  ${ranks.every((r) => r.sha256 === reference) ? 'same' : 'DIFFERENT'}`,
      );
    }
  }
}

function meanOf(timings: StepTimings[]): StepTimings & { stepMs: number } {
  const keys = ['dataMs', 'computeMs', 'allReduceMs', 'updateMs', 'allReduceBusyMs', 'allReduceOverlappedMs'] as const;
  const mean = Object.fromEntries(
    keys.map((key) => [key, timings.reduce((sum, t) => sum + t[key], 0) / Math.max(1, timings.length)]),
  ) as unknown as StepTimings;
  return { ...mean, stepMs: mean.dataMs + mean.computeMs + mean.allReduceMs + mean.updateMs };
}
