/**
 * A GPU that is not there, for `bench scaling --simulate-gpu` (TrainingOptions.simulateGpu):
 * a step's gradient computation takes (examples in the slice) / examplesPerSec seconds, as a
 * GPU of that speed would, and leaves the CPU and the event loop free meanwhile, as a GPU does,
 * so the wait is a timer and never a busy loop. The gradient it writes is a stand-in, cheap
 * and finite: every value is STAND_IN_GRADIENT * (slice / global batch), so the ranks' sum
 * is STAND_IN_GRADIENT whatever the world size, and every rank's update is p -= lr * that.
 *
 * The time is split as a GPU's step is: a forward part (1/3), then a backward part (2/3) that
 * produces the gradient. With buckets (`release`), the backward hands them out one by one, each
 * once its share of the backward time (by its size: the last layers' come first) has passed,
 * so their all-reduces overlap the rest of it as they would a GPU's backward pass.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimulatedGpuOptions } from '../config/training-options.ts';
import type { GradientRelease, ImageBatch } from './gradient-step.ts';
import type { GradientSource, GradientTarget, SliceFigures } from './gradient-source.ts';

/** The summed stand-in gradient of every parameter: small enough that weights drift by lr * 1e-3 per step. */
export const STAND_IN_GRADIENT = 1e-3;

/** Share of a step's simulated time spent in the forward pass; the backward takes the rest (about twice the forward, as on a GPU). */
export const FORWARD_SHARE = 1 / 3;

/** Resolves once performance.now() has reached `deadline` (ms); a timer can fire up to a millisecond early, hence the loop. */
async function waitUntil(deadline: number): Promise<void> {
  for (let left = deadline - performance.now(); left > 0; left = deadline - performance.now()) await sleep(Math.ceil(left));
}

export class SimulatedGpuGradients implements GradientSource {
  constructor(private readonly gpu: SimulatedGpuOptions) {}

  /** Milliseconds the simulated GPU takes for `examples` examples. */
  private stepMs(examples: number): number {
    return (examples / this.gpu.examplesPerSec) * 1000;
  }

  async compute(batch: ImageBatch, target: GradientTarget, release?: GradientRelease): Promise<SliceFigures> {
    const started = performance.now();
    const total = this.stepMs(batch.count);
    const backwardFrom = started + total * FORWARD_SHARE;
    await waitUntil(backwardFrom);
    await this.backward(batch.count, target, { from: backwardFrom, to: started + total }, release);
    // No forward pass ran: no loss, nothing classified. The stand-in is small and finite by
    // construction; a GPU checks its own gradient on the device (as PyTorch's GradScaler does).
    return { lossSum: 0, correct: 0, check: 'bounded' };
  }

  /**
   * Writes the stand-in gradient, then waits out the backward part, which hides the write's cost;
   * with buckets, bucket k is handed out once the backward has run for the share of its time
   * that the buckets up to k take of the gradient.
   */
  private async backward(examples: number, target: GradientTarget, window: { from: number; to: number }, release?: GradientRelease): Promise<void> {
    target.out.fill(STAND_IN_GRADIENT * (examples / target.lossDenominator));
    let done = 0;
    for (const [k, bucket] of (release?.buckets ?? []).entries()) {
      done += bucket.hi - bucket.lo;
      await waitUntil(window.from + ((window.to - window.from) * done) / target.out.length);
      release!.ready(k);
    }
    await waitUntil(window.to);
  }
}
