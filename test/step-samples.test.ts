import test from 'ava';
import { MAX_STEP_SAMPLES, sampleStride, StepSampler, type SampledStep, type StepSample } from '../shared/run/step-samples.ts';

/** A step of `stepsPerEpoch` per epoch whose phases take 1, 10, 4 and 5 ms (20 ms in all). */
function step(globalStep: number, stepsPerEpoch: number, loss = 1): SampledStep {
  return {
    epoch: Math.ceil(globalStep / stepsPerEpoch),
    stepsPerEpoch,
    globalStep,
    loss,
    examplesPerSec: 3200, // 64 examples in 20 ms
    timings: { dataMs: 1, computeMs: 10, allReduceMs: 4, updateMs: 5 },
  };
}

function feed(sampler: StepSampler, from: number, to: number, stepsPerEpoch: number): StepSample[] {
  const samples: StepSample[] = [];
  for (let g = from; g <= to; g += 1) {
    const sample = sampler.add(step(g, stepsPerEpoch, g));
    if (sample) samples.push(sample);
  }
  return samples;
}

test('the stride keeps a run within MAX_STEP_SAMPLES windows', (t) => {
  t.is(sampleStride(20), 1);
  t.is(sampleStride(MAX_STEP_SAMPLES), 1);
  t.is(sampleStride(MAX_STEP_SAMPLES + 1), 2);
  t.is(sampleStride(2350), 5, "the seed's 10 epochs of 235 steps");
});

test("a short run gets one sample per step with that step's figures", (t) => {
  const samples = feed(new StepSampler(2), 1, 20, 10);
  t.deepEqual(
    samples.map((s) => s.globalStep),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  t.deepEqual(samples[10], {
    globalStep: 11,
    epoch: 2,
    steps: 1,
    examples: 64,
    seconds: 0.02,
    loss: 11,
    dataMs: 1,
    computeMs: 10,
    allReduceMs: 4,
    updateMs: 5,
  });
});

test('a long run folds windows of the stride, ends with the last step and stays within the bound', (t) => {
  const epochs = 7;
  const stepsPerEpoch = 163; // 1141 steps: stride 3, and the last window is a single step
  const samples = feed(new StepSampler(epochs), 1, epochs * stepsPerEpoch, stepsPerEpoch);
  t.is(samples.length, 381);
  t.true(samples.length <= MAX_STEP_SAMPLES + 1);
  t.true(samples.slice(0, -1).every((s, i) => s.globalStep === 3 * (i + 1) && s.steps === 3));
  t.deepEqual(samples.at(-1), {
    globalStep: 1141,
    epoch: 7,
    steps: 1,
    examples: 64,
    seconds: 0.02,
    loss: 1141,
    dataMs: 1,
    computeMs: 10,
    allReduceMs: 4,
    updateMs: 5,
  });
  const second = samples[1];
  t.is(second.loss, (4 + 5 + 6) / 3, 'the mean loss of steps 4, 5, 6');
  t.is(second.examples, 192);
  t.is(second.computeMs, 10, 'phase times are means per step');
  t.true(Math.abs(second.seconds - 0.06) < 1e-12);
  t.is(
    samples.reduce((sum, s) => sum + s.steps, 0),
    1141,
  );
});

test('after a resume the windows fall on the same steps, the first one covering only the steps re-run', (t) => {
  const stepsPerEpoch = 400; // 2 epochs, 800 steps: stride 2
  const resumed = feed(new StepSampler(2), 8, 12, stepsPerEpoch);
  t.deepEqual(
    resumed.map((s) => [s.globalStep, s.steps]),
    [
      [8, 1],
      [10, 2],
      [12, 2],
    ],
  );
});
