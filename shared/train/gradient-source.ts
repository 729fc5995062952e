/**
 * Where a training step's gradient comes from: the model's forward and backward pass
 * (`computeGradients`), or, for benchmarks, a simulated GPU (simulated-gpu-gradients.ts). The
 * training loop calls one of these between building the batch and the all-reduce, so the data
 * path, the all-reduce and the update are the same whichever computes.
 */
import type { CompiledTrainingOptions } from '../config/training-options.ts';
import type { TrainableModel } from '../model/trainable-model.ts';
import { checkGradient, type GradientCheck } from './finite-values.ts';
import { computeGradients, computeGradientsReleasing, type GradientRelease, type ImageBatch } from './gradient-step.ts';
import { SimulatedGpuGradients } from './simulated-gpu-gradients.ts';

/** Figures of the forward pass over one rank's slice, for the epoch's loss and accuracy. */
export interface SliceFigures {
  /** Sum of the per-example cross-entropies (not divided). */
  lossSum: number;
  /** Examples whose arg-max logit equals the label. */
  correct: number;
  /** What this rank's gradient is (finite-values.ts): its flag and its vote in the step's all-reduce. */
  check: GradientCheck;
}

/** Where one step writes this rank's gradient. */
export interface GradientTarget {
  /** The loss is sum(cross-entropy over the slice) / `lossDenominator` (the global batch size). */
  lossDenominator: number;
  /** `model.params.trainableCount` floats, in canonical parameter order; overwritten. */
  out: Float32Array;
}

/**
 * Computes this rank's gradient for its slice of a global batch (a non-empty batch). With
 * `release`, each bucket is handed out as soon as its values are final (its all-reduce may then
 * overwrite them with the sum), and the check returned covers only what the source saw before
 * that; the loop takes the bucket reducer's own check of each bucket beside it.
 */
export interface GradientSource {
  compute(batch: ImageBatch, target: GradientTarget, release?: GradientRelease): Promise<SliceFigures>;
}

/** The model's real gradients, in micro-batches of `microBatch` images (default: the whole slice). */
export class ModelGradients implements GradientSource {
  constructor(
    private readonly model: TrainableModel,
    private readonly microBatch: number | undefined,
  ) {}

  async compute(batch: ImageBatch, target: GradientTarget, release?: GradientRelease): Promise<SliceFigures> {
    const options = { ...target, microBatch: this.microBatch ?? batch.count };
    if (release) {
      // The buckets' sums may already be in `out`: the reducer checked each bucket before its all-reduce.
      const { lossSum, correct } = await computeGradientsReleasing(this.model, batch, options, release);
      return { lossSum, correct, check: 'bounded' };
    }
    const { lossSum, correct } = computeGradients(this.model, batch, options);
    return { lossSum, correct, check: checkGradient(target.out) };
  }
}

/** The source a run's options ask for: a simulated GPU with `simulateGpu`, the model otherwise. */
export function gradientSourceFor(model: TrainableModel, options: CompiledTrainingOptions): GradientSource {
  if (options.simulateGpu) return new SimulatedGpuGradients(options.simulateGpu);
  return new ModelGradients(model, options.microBatch);
}
