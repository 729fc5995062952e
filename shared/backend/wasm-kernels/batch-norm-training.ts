import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BATCH_NORM_TRAINING } from '../onednn/batch-norm-kernels.ts';
import { channelLayout, checkedChannelVector, readChannels } from './channel-layout.ts';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/** Rows per sweep over the channels: 256 rows of 64 floats stay in the L2 cache. */
const ROWS_PER_CHUNK = 256;

/**
 * Sums of (x - pivot) and (x - pivot)^2 per channel over all rows, in float64. Shifting by a
 * sample (the first row) keeps this one-pass variance accurate when |mean| >> std, as in the
 * native kernel (native/batch-norm.cc). Four channels at a time in locals when the channel
 * count allows: V8 then keeps the accumulators in registers (1.2 ns per element against 2.2);
 * over chunks of rows, so that the sweeps over the channels reread cached lines.
 */
function shiftedMoments(heap: Float32Array, xAt: number, rows: number, channels: number, pivot: Float64Array): { sums: Float64Array; squares: Float64Array } {
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  const blocked = channels % 4 === 0 ? channels : 0;
  for (let first = 0; first < rows && blocked > 0; first += ROWS_PER_CHUNK) {
    const last = Math.min(first + ROWS_PER_CHUNK, rows);
    for (let c = 0; c < blocked; c += 4) {
      const p0 = pivot[c],
        p1 = pivot[c + 1],
        p2 = pivot[c + 2],
        p3 = pivot[c + 3];
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0,
        q0 = 0,
        q1 = 0,
        q2 = 0,
        q3 = 0;
      for (let r = first, at = xAt + first * channels + c; r < last; r++, at += channels) {
        const d0 = heap[at] - p0,
          d1 = heap[at + 1] - p1,
          d2 = heap[at + 2] - p2,
          d3 = heap[at + 3] - p3;
        s0 += d0;
        s1 += d1;
        s2 += d2;
        s3 += d3;
        q0 += d0 * d0;
        q1 += d1 * d1;
        q2 += d2 * d2;
        q3 += d3 * d3;
      }
      sums[c] += s0;
      sums[c + 1] += s1;
      sums[c + 2] += s2;
      sums[c + 3] += s3;
      squares[c] += q0;
      squares[c + 1] += q1;
      squares[c + 2] += q2;
      squares[c + 3] += q3;
    }
  }
  if (blocked === channels) return { sums, squares };
  for (let r = 0, at = xAt; r < rows; r++, at += channels) {
    for (let c = 0; c < channels; c++) {
      const d = heap[at + c] - pivot[c];
      sums[c] += d;
      squares[c] += d * d;
    }
  }
  return { sums, squares };
}

/**
 * y = x * factor + (shift - mean * factor) per channel, with ReLU as (v + |v|) / 2 when
 * `relu`: exact in float64, and without the branch on the sign, which mispredicts on half the
 * elements (7 ns per element against 2.8). Four channels' constants in locals per sweep.
 */
function normalise(
  heap: Float32Array,
  xAt: number,
  yAt: number,
  rows: number,
  channels: number,
  mean: Float64Array,
  factor: Float64Array,
  shift: Float64Array,
  relu: boolean,
): void {
  const bias = Float64Array.from(shift, (s, c) => s - mean[c] * factor[c]);
  const blocked = channels - (channels % 4);
  for (let first = 0; first < rows; first += ROWS_PER_CHUNK) {
    const last = Math.min(first + ROWS_PER_CHUNK, rows);
    for (let c = 0; c < blocked; c += 4) normaliseFourChannels(heap, xAt, yAt, first, last, channels, c, factor, bias, relu);
    for (let c = blocked; c < channels; c++) {
      for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
        const v = heap[xAt + offset] * factor[c] + bias[c];
        heap[yAt + offset] = relu ? 0.5 * (v + Math.abs(v)) : v;
      }
    }
  }
}

function normaliseFourChannels(
  heap: Float32Array,
  xAt: number,
  yAt: number,
  first: number,
  last: number,
  channels: number,
  c: number,
  factor: Float64Array,
  bias: Float64Array,
  relu: boolean,
): void {
  const f0 = factor[c],
    f1 = factor[c + 1],
    f2 = factor[c + 2],
    f3 = factor[c + 3];
  const b0 = bias[c],
    b1 = bias[c + 1],
    b2 = bias[c + 2],
    b3 = bias[c + 3];
  for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
    const x = xAt + offset;
    const y = yAt + offset;
    const v0 = heap[x] * f0 + b0,
      v1 = heap[x + 1] * f1 + b1,
      v2 = heap[x + 2] * f2 + b2,
      v3 = heap[x + 3] * f3 + b3;
    if (relu) {
      heap[y] = 0.5 * (v0 + Math.abs(v0));
      heap[y + 1] = 0.5 * (v1 + Math.abs(v1));
      heap[y + 2] = 0.5 * (v2 + Math.abs(v2));
      heap[y + 3] = 0.5 * (v3 + Math.abs(v3));
    } else {
      heap[y] = v0;
      heap[y + 1] = v1;
      heap[y + 2] = v2;
      heap[y + 3] = v3;
    }
  }
}

/**
 * `OnednnBatchNormTraining` on the wasm heap, the same contract as the native kernel
 * (batch-norm-kernels.ts): inputs x (channels last, float32), scale, offset; attrs epsilon,
 * relu; outputs y, the batch mean and the biased batch variance. Two passes over x in plain JS
 * loops instead of the ten-odd kernels of tf.moments + tf.batchNorm + tf.relu (and their
 * tape), which took a fifth of a wasm forward pass at 96x96, batch 32.
 */
function batchNormTraining(args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: NamedAttrMap }): TensorInfo[] {
  const { backend, inputs, attrs } = args;
  const x = inputs['x'];
  const { rows, channels } = channelLayout(x, 'x');
  checkedChannelVector(inputs['scale'], channels, 'scale');
  checkedChannelVector(inputs['offset'], channels, 'offset');
  const epsilon = attrs['epsilon'] as number;
  const y = backend.makeOutput(x.shape.slice(), 'float32');
  const meanOut = backend.makeOutput([channels], 'float32');
  const varianceOut = backend.makeOutput([channels], 'float32');
  // Views are taken after the last allocation: a heap growth detaches older ones.
  const heap = heapFloats(backend);
  const xAt = heapFloatIndex(backend, x);
  const pivot = Float64Array.from(heap.subarray(xAt, xAt + channels));
  const { sums, squares } = shiftedMoments(heap, xAt, rows, channels, pivot);
  const scale = readChannels(backend, inputs['scale']);
  const offset = readChannels(backend, inputs['offset']);
  const meanAt = heapFloatIndex(backend, meanOut);
  const varianceAt = heapFloatIndex(backend, varianceOut);
  const mean = new Float64Array(channels);
  const factor = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const shifted = sums[c] / rows;
    const variance = Math.max(0, squares[c] / rows - shifted * shifted);
    heap[meanAt + c] = pivot[c] + shifted;
    heap[varianceAt + c] = variance;
    // Centre on the stored (float32) mean, the one the gradient kernel is given.
    mean[c] = heap[meanAt + c]!;
    factor[c] = scale[c] / Math.sqrt(variance + epsilon);
  }
  normalise(heap, xAt, heapFloatIndex(backend, y), rows, channels, mean, factor, offset, attrs['relu'] === true);
  return [y, meanOut, varianceOut];
}

/** Registration record for `registerKernel`: the fused training op's forward half on wasm. */
export const batchNormTrainingConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAINING,
  backendName: 'wasm',
  kernelFunc: batchNormTraining as unknown as KernelFunc,
};
