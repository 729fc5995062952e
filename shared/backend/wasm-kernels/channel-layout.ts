import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/** A channels-last tensor read as `rows` pixels of `channels` values each. */
export interface ChannelLayout {
  rows: number;
  channels: number;
}

/**
 * The layout of a non-empty float32 channels-last tensor. Throws TypeError otherwise: the
 * fused batch-norm kernels are only reached through batchNormTraining(), which routes every
 * other case to the composite ops, so a bad tensor here is a programming error.
 */
export function channelLayout(x: TensorInfo | undefined, name: string): ChannelLayout {
  if (x === undefined || x.dtype !== 'float32' || x.shape.length === 0) throw new TypeError(`${name} must be a float32 tensor with a channel axis`);
  const channels = x.shape[x.shape.length - 1];
  const size = util.sizeFromShape(x.shape);
  if (size === 0) throw new TypeError(`${name} must not be empty`);
  return { rows: size / channels, channels };
}

/** Throws TypeError unless `info` is a float32 tensor of exactly `channels` values. */
export function checkedChannelVector(info: TensorInfo | undefined, channels: number, name: string): TensorInfo {
  if (info === undefined || info.dtype !== 'float32' || util.sizeFromShape(info.shape) !== channels) {
    throw new TypeError(`${name} must be a float32 vector of ${channels} values`);
  }
  return info;
}

/** A per-channel vector's values as float64 (a copy, safe across heap growth). */
export function readChannels(backend: BackendWasm, info: TensorInfo): Float64Array {
  const at = heapFloatIndex(backend, info);
  return Float64Array.from(heapFloats(backend).subarray(at, at + util.sizeFromShape(info.shape)));
}
