/**
 * Runs one computation on two backends with identical inputs and measures how far the results
 * are apart. Used by the onednn and wasm kernel tests (our kernels against the cpu backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededValues } from './seeded-values.ts';

/** An input as data and shape, so each backend builds its own tensor from the same values. */
export interface InputSpec {
  values: Float32Array;
  shape: number[];
}

/** An {@link InputSpec} of seeded values. */
export function seededInput(shape: number[], seed: number, scale = 1): InputSpec {
  return {
    values: seededValues(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
    shape,
  };
}

/** The results of one run: each output's data and shape. */
export interface Outputs {
  values: Float32Array[];
  shapes: number[][];
}

/**
 * Makes `backendName` current, builds the inputs on it, runs `compute`, copies the outputs
 * out and disposes everything it created.
 */
export async function runOnBackend(backendName: string, inputs: InputSpec[], compute: (...tensors: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<Outputs> {
  await tf.setBackend(backendName);
  const tensors = inputs.map((input) => tf.tensor(input.values, input.shape, 'float32'));
  try {
    const result = tf.tidy(() => compute(...tensors));
    const list = Array.isArray(result) ? result : [result];
    const outputs = { values: list.map((t) => Float32Array.from(t.dataSync())), shapes: list.map((t) => t.shape) };
    tf.dispose(list);
    return outputs;
  } finally {
    tf.dispose(tensors);
  }
}

/**
 * max |actual - expected| / max |expected|: the error relative to the tensor's scale, which
 * stays meaningful for elements near zero where an element-wise relative error explodes.
 * NaN when the shapes' sizes differ or any value is not finite in one and finite in the other.
 */
export function scaledError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Number.NaN;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (Number.isFinite(e) !== Number.isFinite(a)) return Number.NaN;
    if (!Number.isFinite(e)) {
      if (!Object.is(e, a) && !(Number.isNaN(e) && Number.isNaN(a))) return Number.NaN;
      continue;
    }
    maxDiff = Math.max(maxDiff, Math.abs(a - e));
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Runs `compute` on both backends and returns the worst {@link scaledError} over outputs. */
export async function compareBackends(
  actualBackend: string,
  referenceBackend: string,
  inputs: InputSpec[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<{ error: number; shapesMatch: boolean; actual: Outputs; reference: Outputs }> {
  const reference = await runOnBackend(referenceBackend, inputs, compute);
  const actual = await runOnBackend(actualBackend, inputs, compute);
  const shapesMatch = JSON.stringify(actual.shapes) === JSON.stringify(reference.shapes);
  let error = 0;
  for (const [i, expected] of reference.values.entries()) {
    const e = scaledError(actual.values[i] ?? new Float32Array(), expected);
    error = Number.isNaN(e) || Number.isNaN(error) ? Number.NaN : Math.max(error, e);
  }
  return { error, shapesMatch, actual, reference };
}
