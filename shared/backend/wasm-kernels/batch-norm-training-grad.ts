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

/**
 * Per channel, the sum of g and of g * (x - mean) over all rows in float64, where g is dy
 * masked by y > 0 when ReLU was fused. The mask is a multiply by +(y > 0), which V8 compiles
 * without a branch (a branch mispredicts on half the elements: 8.4 ns per element against 3.6).
 */
function gradientSums(v: GradientViews, rows: number, channels: number, mean: Float64Array): { sumG: Float64Array; sumGx: Float64Array } {
  const { heap } = v;
  const sumG = new Float64Array(channels);
  const sumGx = new Float64Array(channels);
  for (let r = 0, offset = 0; r < rows; r++, offset += channels) {
    const x = v.x + offset;
    const dy = v.dy + offset;
    if (v.y >= 0) {
      const y = v.y + offset;
      for (let c = 0; c < channels; c++) {
        const g = heap[dy + c]! * +(heap[y + c]! > 0);
        sumG[c] += g;
        sumGx[c] += g * (heap[x + c]! - mean[c]!);
      }
    } else {
      for (let c = 0; c < channels; c++) {
        const g = heap[dy + c]!;
        sumG[c] += g;
        sumGx[c] += g * (heap[x + c]! - mean[c]!);
      }
    }
  }
  return { sumG, sumGx };
}

/** dx = k1 * g - k2 * (x - mean) - k3 per channel, g masked as in gradientSums. */
function writeDx(v: GradientViews, rows: number, channels: number, mean: Float64Array, k1: Float64Array, k2: Float64Array, k3: Float64Array): void {
  const { heap } = v;
  for (let r = 0, offset = 0; r < rows; r++, offset += channels) {
    const x = v.x + offset;
    const dy = v.dy + offset;
    const dx = v.dx + offset;
    if (v.y >= 0) {
      const y = v.y + offset;
      for (let c = 0; c < channels; c++) {
        const g = heap[dy + c]! * +(heap[y + c]! > 0);
        heap[dx + c] = k1[c]! * g - k2[c]! * (heap[x + c]! - mean[c]!) - k3[c]!;
      }
    } else {
      for (let c = 0; c < channels; c++) heap[dx + c] = k1[c]! * heap[dy + c]! - k2[c]! * (heap[x + c]! - mean[c]!) - k3[c]!;
    }
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
    const rstd = 1 / Math.sqrt(variance[c]! + epsilon);
    views.heap[doffsetAt + c] = sumG[c]!;
    views.heap[dscaleAt + c] = sumGx[c]! * rstd;
    k1[c] = scale[c]! * rstd;
    k2[c] = (scale[c]! * rstd * rstd * rstd * sumGx[c]! - 2 * (dvariance?.[c] ?? 0)) / rows;
    k3[c] = (scale[c]! * rstd * sumG[c]! - (dmean?.[c] ?? 0)) / rows;
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
