import { backend_util, type DataId, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/**
 * The filter taps of an NHWC conv2d that ever meet a real input pixel, and the padding that
 * makes the conv with only those taps give the same output. On small images most taps of a
 * padded 3x3 conv only ever read padding: at 28x28 input ResNet-18's last stage runs on 1x1
 * (and 2x2) activations, where 8 of 9 taps multiply zeros, and every training step packs
 * (forward) and transposes (input gradient) all 2.4M weights of each such conv for nothing.
 */
export interface TapWindow {
  /** First tap row used, and one past the last. */
  rowFrom: number;
  rowTo: number;
  colFrom: number;
  colTo: number;
  /** Explicit padding of the cropped conv, NHWC. */
  pad: backend_util.ExplicitPadding;
}

/** Range [from, to) of taps k along one axis with some output o where o*stride + k - pad is in [0, size). */
function usedTaps(size: number, outSize: number, kernel: number, stride: number, pad: number): [number, number] | null {
  let from = -1;
  let to = -1;
  for (let k = 0; k < kernel; k++) {
    const firstOutput = Math.max(0, Math.ceil((pad - k) / stride));
    if (firstOutput < outSize && firstOutput * stride + k - pad < size) {
      if (from < 0) from = k;
      to = k + 1;
    }
  }
  return from < 0 ? null : [from, to];
}

/** Padding before and after for the cropped axis, or null when it cannot keep the output size. */
function croppedPadding(size: number, outSize: number, stride: number, pad: number, from: number, to: number): [number, number] | null {
  const before = pad - from;
  const after = (outSize - 1) * stride + (to - from) - size - before;
  return before < 0 || after < 0 ? null : [before, after];
}

/**
 * The window of used taps when it is smaller than the filter and a conv with it (explicit,
 * non-negative padding, same stride) has the same output shape; null otherwise, and for
 * dilated or channels-first convs.
 */
export function effectiveTaps(info: backend_util.Conv2DInfo): TapWindow | null {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || info.dataFormat !== 'channelsLast') return null;
  const rows = usedTaps(info.inHeight, info.outHeight, info.filterHeight, info.strideHeight, info.padInfo.top);
  const cols = usedTaps(info.inWidth, info.outWidth, info.filterWidth, info.strideWidth, info.padInfo.left);
  if (rows === null || cols === null) return null;
  if (rows[1] - rows[0] === info.filterHeight && cols[1] - cols[0] === info.filterWidth) return null;
  const vertical = croppedPadding(info.inHeight, info.outHeight, info.strideHeight, info.padInfo.top, rows[0], rows[1]);
  const horizontal = croppedPadding(info.inWidth, info.outWidth, info.strideWidth, info.padInfo.left, cols[0], cols[1]);
  if (vertical === null || horizontal === null) return null;
  return { rowFrom: rows[0], rowTo: rows[1], colFrom: cols[0], colTo: cols[1], pad: [[0, 0], vertical, horizontal, [0, 0]] };
}

/** The cropped filter's shape [rows, cols, in, out]. */
export function croppedFilterShape(window: TapWindow, filterShape: number[]): [number, number, number, number] {
  return [window.rowTo - window.rowFrom, window.colTo - window.colFrom, filterShape[2], filterShape[3]];
}

/**
 * Copies between a full [kh, kw, in, out] filter and its window: each tap is one contiguous
 * block of in*out floats in both.
 */
function copyTaps(backend: BackendWasm, full: TensorInfo, cropped: TensorInfo, window: TapWindow, toCropped: boolean): void {
  const [, filterWidth, inChannels, outChannels] = full.shape as [number, number, number, number];
  const block = inChannels * outChannels;
  const heap = heapFloats(backend);
  const fullAt = heapFloatIndex(backend, full);
  const croppedAt = heapFloatIndex(backend, cropped);
  const width = window.colTo - window.colFrom;
  for (let r = window.rowFrom; r < window.rowTo; r++) {
    for (let c = window.colFrom; c < window.colTo; c++) {
      const inFull = fullAt + (r * filterWidth + c) * block;
      const inCropped = croppedAt + ((r - window.rowFrom) * width + (c - window.colFrom)) * block;
      if (toCropped) heap.copyWithin(inCropped, inFull, inFull + block);
      else heap.copyWithin(inFull, inCropped, inCropped + block);
    }
  }
}

/** A new tensor holding the window's taps of `filter`; the caller disposes it. */
export function cropFilter(backend: BackendWasm, filter: TensorInfo, window: TapWindow): TensorInfo {
  const cropped = backend.makeOutput(croppedFilterShape(window, filter.shape), 'float32');
  copyTaps(backend, filter, cropped, window, true);
  return cropped;
}

/** A new full-size filter gradient: the window's taps from `cropped`, zeros elsewhere. */
export function embedTaps(backend: BackendWasm, cropped: TensorInfo, window: TapWindow, filterShape: number[]): TensorInfo {
  const full = backend.makeOutput(filterShape.slice(), 'float32');
  backend.typedArrayFromHeap(full).fill(0);
  copyTaps(backend, full, cropped, window, false);
  return full;
}

/**
 * Cropped copies of filters, kept while their source tensor lives so that a forward pass with
 * unchanged weights reuses both the copy and the XNNPACK operator the wasm Conv2D caches on
 * its id (packing the weights is the costly part of a conv on small images). Entries whose
 * source has been disposed are dropped, and their copies freed, at the next lookup.
 */
const croppedFilters = new Map<DataId, { key: string; cropped: TensorInfo }>();

/** The window's taps of `filter`, cached; owned by the cache, never disposed by the caller. */
export function cachedCroppedFilter(backend: BackendWasm, filter: TensorInfo, window: TapWindow): TensorInfo {
  for (const [source, entry] of croppedFilters) {
    if (!backend.dataIdMap.has(source)) {
      backend.disposeData(entry.cropped.dataId);
      croppedFilters.delete(source);
    }
  }
  const key = `${window.rowFrom},${window.rowTo},${window.colFrom},${window.colTo}`;
  const entry = croppedFilters.get(filter.dataId);
  if (entry !== undefined && entry.key === key && backend.dataIdMap.has(entry.cropped.dataId)) return entry.cropped;
  if (entry !== undefined) backend.disposeData(entry.cropped.dataId);
  const cropped = cropFilter(backend, filter, window);
  croppedFilters.set(filter.dataId, { key, cropped });
  return cropped;
}
