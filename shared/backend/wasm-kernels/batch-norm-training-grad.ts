import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BATCH_NORM_TRAINING_GRAD } from '../onednn/batch-norm-kernels.ts';
import { channelLayout, checkedChannelVector, readChannels } from './channel-layout.ts';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/** Heap float indices of the tensors one gradient pass reads and writes. */
interface GradientViews {
  heap: Float32Array;
  x: number;
  dy: number;
  /** The forward output when ReLU was fused (dy counts only where y > 0), else -1. */
  y: number;
  dx: number;
}

/** Rows per sweep over the channels: 256 rows of 64 floats stay in the L2 cache. */
const ROWS_PER_CHUNK = 256;

/**
 * Per channel, the sum of g and of g * (x - mean) over all rows in float64, where g is dy
 * masked by y > 0 when ReLU was fused. The mask is a multiply by +(y > 0), which V8 compiles
 * without a branch (a branch mispredicts on half the elements: 8.4 ns per element against 3.6).
 * Four channels at a time in locals over chunks of rows, as in the forward moments.
 */
function gradientSums(v: GradientViews, rows: number, channels: number, mean: Float64Array): { sumG: Float64Array; sumGx: Float64Array } {
  const sumG = new Float64Array(channels);
  const sumGx = new Float64Array(channels);
  const blocked = channels - (channels % 4);
  for (let first = 0; first < rows; first += ROWS_PER_CHUNK) {
    const last = Math.min(first + ROWS_PER_CHUNK, rows);
    for (let c = 0; c < blocked; c += 4) sumFourChannels(v, first, last, channels, c, mean, sumG, sumGx);
    for (let c = blocked; c < channels; c++) sumOneChannel(v, first, last, channels, c, mean, sumG, sumGx);
  }
  return { sumG, sumGx };
}

function sumFourChannels(
  v: GradientViews,
  first: number,
  last: number,
  channels: number,
  c: number,
  mean: Float64Array,
  sumG: Float64Array,
  sumGx: Float64Array,
): void {
  const { heap } = v;
  const m0 = mean[c],
    m1 = mean[c + 1],
    m2 = mean[c + 2],
    m3 = mean[c + 3];
  let g0 = 0,
    g1 = 0,
    g2 = 0,
    g3 = 0,
    h0 = 0,
    h1 = 0,
    h2 = 0,
    h3 = 0;
  const masked = v.y >= 0;
  for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
    const x = v.x + offset;
    const dy = v.dy + offset;
    const y = v.y + offset;
    const a0 = masked ? heap[dy] * +(heap[y] > 0) : heap[dy];
    const a1 = masked ? heap[dy + 1] * +(heap[y + 1] > 0) : heap[dy + 1];
    const a2 = masked ? heap[dy + 2] * +(heap[y + 2] > 0) : heap[dy + 2];
    const a3 = masked ? heap[dy + 3] * +(heap[y + 3] > 0) : heap[dy + 3];
    g0 += a0;
    g1 += a1;
    g2 += a2;
    g3 += a3;
    h0 += a0 * (heap[x] - m0);
    h1 += a1 * (heap[x + 1] - m1);
    h2 += a2 * (heap[x + 2] - m2);
    h3 += a3 * (heap[x + 3] - m3);
  }
  sumG[c] += g0;
  sumG[c + 1] += g1;
  sumG[c + 2] += g2;
  sumG[c + 3] += g3;
  sumGx[c] += h0;
  sumGx[c + 1] += h1;
  sumGx[c + 2] += h2;
  sumGx[c + 3] += h3;
}

function sumOneChannel(
  v: GradientViews,
  first: number,
  last: number,
  channels: number,
  c: number,
  mean: Float64Array,
  sumG: Float64Array,
  sumGx: Float64Array,
): void {
  const { heap } = v;
  let g = 0;
  let h = 0;
  for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
    const a = v.y >= 0 ? heap[v.dy + offset] * +(heap[v.y + offset] > 0) : heap[v.dy + offset];
    g += a;
    h += a * (heap[v.x + offset] - mean[c]);
  }
  sumG[c] += g;
  sumGx[c] += h;
}

/**
 * dx = k1 * g - k2 * (x - mean) - k3 per channel, g masked as in gradientSums: rewritten as
 * k1 * g - k2 * x + (k2 * mean - k3), with four channels' constants in locals per sweep.
 */
function writeDx(v: GradientViews, rows: number, channels: number, mean: Float64Array, k1: Float64Array, k2: Float64Array, k3: Float64Array): void {
  const blocked = channels - (channels % 4);
  const k0 = Float64Array.from(mean, (m, c) => k2[c] * m - k3[c]);
  for (let first = 0; first < rows; first += ROWS_PER_CHUNK) {
    const last = Math.min(first + ROWS_PER_CHUNK, rows);
    for (let c = 0; c < blocked; c += 4) dxFourChannels(v, first, last, channels, c, k1, k2, k0);
    for (let c = blocked; c < channels; c++) {
      for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
        const g = v.y >= 0 ? v.heap[v.dy + offset] * +(v.heap[v.y + offset] > 0) : v.heap[v.dy + offset];
        v.heap[v.dx + offset] = k1[c] * g - k2[c] * v.heap[v.x + offset] + k0[c];
      }
    }
  }
}

function dxFourChannels(
  v: GradientViews,
  first: number,
  last: number,
  channels: number,
  c: number,
  k1: Float64Array,
  k2: Float64Array,
  k0: Float64Array,
): void {
  const { heap } = v;
  const a0 = k1[c],
    a1 = k1[c + 1],
    a2 = k1[c + 2],
    a3 = k1[c + 3];
  const b0 = k2[c],
    b1 = k2[c + 1],
    b2 = k2[c + 2],
    b3 = k2[c + 3];
  const e0 = k0[c],
    e1 = k0[c + 1],
    e2 = k0[c + 2],
    e3 = k0[c + 3];
  const masked = v.y >= 0;
  for (let r = first, offset = first * channels + c; r < last; r++, offset += channels) {
    const x = v.x + offset;
    const dy = v.dy + offset;
    const y = v.y + offset;
    const dx = v.dx + offset;
    const g0 = masked ? heap[dy] * +(heap[y] > 0) : heap[dy];
    const g1 = masked ? heap[dy + 1] * +(heap[y + 1] > 0) : heap[dy + 1];
    const g2 = masked ? heap[dy + 2] * +(heap[y + 2] > 0) : heap[dy + 2];
    const g3 = masked ? heap[dy + 3] * +(heap[y + 3] > 0) : heap[dy + 3];
    heap[dx] = a0 * g0 - b0 * heap[x] + e0;
    heap[dx + 1] = a1 * g1 - b1 * heap[x + 1] + e1;
    heap[dx + 2] = a2 * g2 - b2 * heap[x + 2] + e2;
    heap[dx + 3] = a3 * g3 - b3 * heap[x + 3] + e3;
  }
}

/** A per-channel gradient input that may be absent (an output no loss depends on). */
function optionalChannels(backend: BackendWasm, info: TensorInfo | undefined, channels: number, name: string): Float64Array | null {
  return info === undefined ? null : readChannels(backend, checkedChannelVector(info, channels, name));
}

/**
 * `OnednnBatchNormTrainingGrad` on the wasm heap, the native kernel's contract
 * (batch-norm-kernels.ts) and formula (native/batch-norm.cc): inputs dy, x, y, scale, mean,
 * variance and optionally dmean, dvariance (gradients reaching the batch statistics
 * directly); attrs epsilon, relu; outputs dx, dscale, doffset. With rstd = 1/sqrt(var + eps)
 * and g the masked dy:
 *   doffset = sum g, dscale = rstd * sum g (x - mean),
 *   dx = scale rstd (g - mean(g) - xhat mean(g xhat)) + dmean / n + 2 dvariance (x - mean) / n.
 * Two passes over x and dy, where the tape of the composite ops ran about fifteen kernels.
 */
function batchNormTrainingGrad(args: { inputs: Record<string, TensorInfo | undefined>; backend: BackendWasm; attrs: NamedAttrMap }): TensorInfo[] {
  const { backend, inputs, attrs } = args;
  const { rows, channels } = channelLayout(inputs['x'], 'x');
  const x = inputs['x']!;
  const dy = inputs['dy'];
  if (channelLayout(dy, 'dy').rows !== rows || dy!.shape[dy!.shape.length - 1] !== channels) throw new TypeError('dy must have the shape of x');
  const relu = attrs['relu'] === true;
  if (relu && (inputs['y'] === undefined || channelLayout(inputs['y'], 'y').rows !== rows)) throw new TypeError('with relu, y must have the shape of x');
  const scale = readChannels(backend, checkedChannelVector(inputs['scale'], channels, 'scale'));
  const mean = readChannels(backend, checkedChannelVector(inputs['mean'], channels, 'mean'));
  const variance = readChannels(backend, checkedChannelVector(inputs['variance'], channels, 'variance'));
  const dmean = optionalChannels(backend, inputs['dmean'], channels, 'dmean');
  const dvariance = optionalChannels(backend, inputs['dvariance'], channels, 'dvariance');
  const epsilon = attrs['epsilon'] as number;

  const dx = backend.makeOutput(x.shape.slice(), 'float32');
  const dscale = backend.makeOutput([channels], 'float32');
  const doffset = backend.makeOutput([channels], 'float32');
  const views: GradientViews = {
    heap: heapFloats(backend),
    x: heapFloatIndex(backend, x),
    dy: heapFloatIndex(backend, dy!),
    y: relu ? heapFloatIndex(backend, inputs['y']!) : -1,
    dx: heapFloatIndex(backend, dx),
  };
  const { sumG, sumGx } = gradientSums(views, rows, channels, mean);
  const k1 = new Float64Array(channels);
  const k2 = new Float64Array(channels);
  const k3 = new Float64Array(channels);
  const dscaleAt = heapFloatIndex(backend, dscale);
  const doffsetAt = heapFloatIndex(backend, doffset);
  for (let c = 0; c < channels; c++) {
    const rstd = 1 / Math.sqrt(variance[c] + epsilon);
    views.heap[doffsetAt + c] = sumG[c]!;
    views.heap[dscaleAt + c] = sumGx[c] * rstd;
    k1[c] = scale[c] * rstd;
    k2[c] = (scale[c] * rstd * rstd * rstd * sumGx[c] - 2 * (dvariance?.[c] ?? 0)) / rows;
    k3[c] = (scale[c] * rstd * sumG[c] - (dmean?.[c] ?? 0)) / rows;
  }
  writeDx(views, rows, channels, mean, k1, k2, k3);
  return [dx, dscale, doffset];
}

/** Registration record for `registerKernel`: the fused training op's gradient on wasm. */
export const batchNormTrainingGradConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAINING_GRAD,
  backendName: 'wasm',
  kernelFunc: batchNormTrainingGrad as unknown as KernelFunc,
};
