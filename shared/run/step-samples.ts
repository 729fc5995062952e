/**
 * A run's per-step figures, kept compact for `coordinator report`: rank 0 folds consecutive
 * steps into windows and the run store keeps one sample per window. The window length (the
 * stride) is fixed by the run's total step count, so a run has at most MAX_STEP_SAMPLES + 1
 * samples however long it trains, and a resumed run folds the same windows again.
 */

/** Most windows of one run: the stride is ceil(total steps / MAX_STEP_SAMPLES). */
export const MAX_STEP_SAMPLES = 500;

/** Milliseconds per step spent in each phase, on rank 0 (means over a window). */
export interface PhaseMs {
  dataMs: number;
  computeMs: number;
  allReduceMs: number;
  updateMs: number;
}

/** The phases of a step, in the order a step runs them. */
export const STEP_PHASES = ['dataMs', 'computeMs', 'allReduceMs', 'updateMs'] as const satisfies readonly (keyof PhaseMs)[];

/** One window of consecutive steps. */
export interface StepSample extends PhaseMs {
  /** Global step (from 1) of the window's last step; the run store keys samples by it. */
  globalStep: number;
  /** 1-based epoch of the window's last step. */
  epoch: number;
  /** Steps folded into this sample. */
  steps: number;
  /** Examples of the global batches of these steps. */
  examples: number;
  /** Seconds these steps took on rank 0. */
  seconds: number;
  /** Mean loss over these steps. */
  loss: number;
}

/** What the sampler needs of a training step's report (shared/train/training-loop.ts StepReport). */
export interface SampledStep {
  epoch: number;
  stepsPerEpoch: number;
  globalStep: number;
  loss: number;
  examplesPerSec: number;
  timings: PhaseMs;
}

/** Steps per window for a run of `totalSteps` steps. */
export function sampleStride(totalSteps: number, maxSamples = MAX_STEP_SAMPLES): number {
  return Math.max(1, Math.ceil(totalSteps / maxSamples));
}

/**
 * Folds steps into windows that end at a multiple of the stride or at the run's last step.
 * A window that a resume entered half way covers only the steps seen since; its sample
 * replaces the one written before the stop (same global step).
 */
export class StepSampler {
  private window: { steps: number; examples: number; ms: PhaseMs; lossSum: number } = emptyWindow();

  /** @param epochs the run's epoch count (with each report's stepsPerEpoch, the total step count). */
  constructor(private readonly epochs: number) {}

  /** Adds one step; returns the finished window's sample when this step closes one. */
  add(step: SampledStep): StepSample | undefined {
    const w = this.window;
    const stepMs = STEP_PHASES.reduce((sum, phase) => sum + step.timings[phase], 0);
    w.steps += 1;
    w.examples += Math.round((step.examplesPerSec * stepMs) / 1000);
    w.lossSum += step.loss;
    for (const phase of STEP_PHASES) w.ms[phase] += step.timings[phase];
    const total = this.epochs * step.stepsPerEpoch;
    if (step.globalStep % sampleStride(total) !== 0 && step.globalStep !== total) return undefined;
    this.window = emptyWindow();
    return closeWindow(w, step);
  }
}

function emptyWindow() {
  return { steps: 0, examples: 0, ms: { dataMs: 0, computeMs: 0, allReduceMs: 0, updateMs: 0 }, lossSum: 0 };
}

function closeWindow(w: ReturnType<typeof emptyWindow>, last: SampledStep): StepSample {
  const sample: StepSample = {
    globalStep: last.globalStep,
    epoch: last.epoch,
    steps: w.steps,
    examples: w.examples,
    seconds: 0,
    loss: w.lossSum / w.steps,
    ...w.ms,
  };
  for (const phase of STEP_PHASES) {
    sample.seconds += w.ms[phase] / 1000;
    sample[phase] = w.ms[phase] / w.steps;
  }
  return sample;
}
