import { ConfigError } from '../errors.ts';
import { MODEL_KINDS, type ModelKind } from '../model/trainable-model.ts';

/** What a training run is asked to do; every field optional, defaults as in the seed program. */
export interface TrainingOptions {
  /** The network: the seed's ResNet-18, or a tiny CNN without batch norm (tests, smoke runs). @default 'resnet18' */
  model?: string;
  /** @default 10 */
  epochs?: number;
  /** Global batch size, summed over all workers. @default 256 */
  batchSize?: number;
  /** SGD learning rate. @default 0.05 */
  lr?: number;
  /** Side, in pixels, the 28x28 images are bilinearly resized to. @default 96 */
  resize?: number;
  /** Seed of weight initialisation and data order. @default 0 */
  seed?: number;
  /** Use only the first N training images. @default all 60,000 */
  limitTrain?: number;
  /** Use only the first N test images. @default all 10,000 */
  limitTest?: number;
  /**
   * Images per forward/backward pass on each worker; gradients of the chunks are summed.
   * @default the worker's whole share of the batch (no accumulation)
   */
  microBatch?: number;
  /** Write a checkpoint every K steps (0: only at epoch ends). @default 0 */
  checkpointEvery?: number;
  /**
   * What a step whose summed gradient holds a NaN or an infinity does: `fail` the run
   * (GRADIENT_NONFINITE, naming the step and the ranks), or `skip` the update on every rank.
   * @default 'fail'
   */
  nonfinite?: string;
  /**
   * Gradient bucket size in MiB (PyTorch DDP's bucket_cap_mb): the gradient is all-reduced in
   * buckets, last layers first, each as soon as the backward pass has finished it. 0 or 'off':
   * one all-reduce after the backward pass. The result is the same bits either way.
   * @default 25
   */
  bucketMb?: number | string;
  /**
   * How gradients travel in the all-reduce of a cluster run: `none` (float32, the sum is
   * bit-identical to one process's), or `fp16` (Horovod's `Compression.fp16`: each rank rounds its
   * gradient to IEEE binary16 and every partial sum is rounded again; half the bytes on the gRPC
   * ring, the loss, counts and votes that ride along stay float32). A run stored before the
   * option existed has none. `coordinator train` (one process, nothing to send) refuses `fp16`.
   * @default 'none'
   */
  gradCompression?: string;
  /**
   * A benchmarking aid, not a way to train: each rank's gradient computation becomes a wait of
   * (its share of the batch) / `examplesPerSec` seconds, as a GPU of that speed would take,
   * and a finite stand-in gradient (shared/train/simulated-gpu-gradients.ts), while the data
   * path, the all-reduce and the update run for real. `bench scaling --simulate-gpu` uses it to
   * see how the cluster would scale with GPUs; the loss it reports is 0.
   * @default undefined (the model's real gradients)
   */
  simulateGpu?: SimulatedGpuOptions;
}

/** How fast the simulated GPU of {@link TrainingOptions.simulateGpu} is. */
export interface SimulatedGpuOptions {
  /** Training examples per second of one simulated GPU (forward and backward), > 0; the seed's GPU did 2,357.6. */
  examplesPerSec: number;
}

/** Validated options with every default filled in. */
export interface CompiledTrainingOptions {
  model: ModelKind;
  epochs: number;
  batchSize: number;
  lr: number;
  resize: number;
  seed: number;
  limitTrain: number | undefined;
  limitTest: number | undefined;
  microBatch: number | undefined;
  checkpointEvery: number;
  nonfinite: NonFinitePolicy;
  /** Gradient bucket size in MiB, 0 when off (one all-reduce after the backward pass). */
  bucketMb: number;
  gradCompression: GradCompression;
  simulateGpu: SimulatedGpuOptions | undefined;
}

/** What a step does with a gradient that is not all finite numbers (see TrainingOptions.nonfinite). */
export const NONFINITE_POLICIES = ['fail', 'skip'] as const;
export type NonFinitePolicy = (typeof NONFINITE_POLICIES)[number];

/** How gradients travel in the all-reduce (see TrainingOptions.gradCompression). */
export const GRAD_COMPRESSIONS = ['none', 'fp16'] as const;
export type GradCompression = (typeof GRAD_COMPRESSIONS)[number];

export const TRAINING_DEFAULTS = {
  epochs: 10,
  batchSize: 256,
  lr: 0.05,
  resize: 96,
  seed: 0,
  checkpointEvery: 0,
  nonfinite: 'fail',
  bucketMb: 25,
  gradCompression: 'none',
} as const;

/** Largest bucket size accepted (MiB): past the whole model's gradient it changes nothing. */
const MAX_BUCKET_MB = 4096;

/** `bucketMb` as a number of MiB (0: off); a number or a numeric string, or 'off'. */
function bucketMbOf(value: number | string | undefined): number {
  const raw = value ?? TRAINING_DEFAULTS.bucketMb;
  const mb = raw === 'off' ? 0 : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof mb !== 'number' || !Number.isFinite(mb) || mb < 0 || mb > MAX_BUCKET_MB) {
    throw new ConfigError(`bucket-mb must be a number of MiB from 0 to ${MAX_BUCKET_MB}, or 'off', got ${JSON.stringify(value)}`, { option: 'bucket-mb' });
  }
  return mb;
}

function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${value}`, { option: name });
  }
  return value;
}

function optionalInteger(name: string, value: number | undefined, min: number): number | undefined {
  return value === undefined ? undefined : integer(name, value, min);
}

/** Fastest simulated GPU accepted, in examples/sec: beyond it the wait is below the timer's 1 ms resolution for any batch. */
const MAX_SIMULATED_EXAMPLES_PER_SEC = 1e7;

/** Checks {@link TrainingOptions.simulateGpu}; ConfigError (option `simulate-gpu`) when it is not `{ examplesPerSec }` with a rate in (0, 1e7]. */
function compileSimulatedGpu(value: SimulatedGpuOptions | undefined): SimulatedGpuOptions | undefined {
  if (value === undefined) return undefined;
  const keys = typeof value === 'object' && value !== null ? Object.keys(value) : [];
  const rate = keys.length === 1 && keys[0] === 'examplesPerSec' ? value.examplesPerSec : Number.NaN;
  if (!(typeof rate === 'number' && rate > 0 && rate <= MAX_SIMULATED_EXAMPLES_PER_SEC)) {
    throw new ConfigError(`simulate-gpu must be { examplesPerSec } with examples/sec in (0, ${MAX_SIMULATED_EXAMPLES_PER_SEC}], got ${JSON.stringify(value)}`, {
      option: 'simulate-gpu',
    });
  }
  return { examplesPerSec: rate };
}

/** Fills defaults and checks ranges; throws ConfigError naming the first bad option (its `option`: the flag name). */
export function compileTrainingOptions(options: TrainingOptions): CompiledTrainingOptions {
  const lr = options.lr ?? TRAINING_DEFAULTS.lr;
  if (!Number.isFinite(lr) || lr <= 0) throw new ConfigError(`lr must be a positive number, got ${lr}`, { option: 'lr' });
  const model = options.model ?? 'resnet18';
  if (!MODEL_KINDS.includes(model as ModelKind)) throw new ConfigError(`model must be one of ${MODEL_KINDS.join(', ')}, got '${model}'`, { option: 'model' });
  const nonfinite = options.nonfinite ?? TRAINING_DEFAULTS.nonfinite;
  if (!NONFINITE_POLICIES.includes(nonfinite as NonFinitePolicy)) {
    throw new ConfigError(`nonfinite must be one of ${NONFINITE_POLICIES.join(', ')}, got '${nonfinite}'`, { option: 'nonfinite' });
  }
  const gradCompression = options.gradCompression ?? TRAINING_DEFAULTS.gradCompression;
  if (!GRAD_COMPRESSIONS.includes(gradCompression as GradCompression)) {
    throw new ConfigError(`grad-compression must be one of ${GRAD_COMPRESSIONS.join(', ')}, got '${gradCompression}'`, { option: 'grad-compression' });
  }
  return {
    model: model as ModelKind,
    epochs: integer('epochs', options.epochs ?? TRAINING_DEFAULTS.epochs, 1),
    batchSize: integer('batch-size', options.batchSize ?? TRAINING_DEFAULTS.batchSize, 1),
    lr,
    resize: integer('resize', options.resize ?? TRAINING_DEFAULTS.resize, 8, 1024),
    seed: integer('seed', options.seed ?? TRAINING_DEFAULTS.seed, 0),
    limitTrain: optionalInteger('limit-train', options.limitTrain, 1),
    limitTest: optionalInteger('limit-test', options.limitTest, 1),
    microBatch: optionalInteger('micro-batch', options.microBatch, 1),
    checkpointEvery: integer('checkpoint-every', options.checkpointEvery ?? TRAINING_DEFAULTS.checkpointEvery, 0),
    nonfinite: nonfinite as NonFinitePolicy,
    bucketMb: bucketMbOf(options.bucketMb),
    gradCompression: gradCompression as GradCompression,
    simulateGpu: compileSimulatedGpu(options.simulateGpu),
  };
}

/**
 * What a run's config line (status, report) says of its gradient compression: nothing for
 * `none` or a run stored before the option existed, so those lines read as they always did.
 */
export function gradCompressionNote(gradCompression: string | undefined): string {
  return gradCompression === undefined || gradCompression === 'none' ? '' : `, gradients ${gradCompression}`;
}
