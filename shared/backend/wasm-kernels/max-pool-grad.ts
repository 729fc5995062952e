import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type MaxPoolGradInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats, stockWasmKernel } from './wasm-kernel-call.ts';

const stockMaxPoolGrad = stockWasmKernel(MaxPoolGrad);

/** Heap float indices and pooling geometry for one gradient pass. */
interface PoolPass {
  heap: Float32Array;
  x: number;
  y: number;
  dy: number;
  dx: number;
  info: backend_util.Conv2DInfo;
}

/** Index in x of the first maximum of one window and channel, row-major, or -1 (all NaN). */
function firstMaximum(p: PoolPass, n: number, rows: [number, number], cols: [number, number], c: number): number {
  const { heap, info } = p;
  let best = -Infinity;
  let at = -1;
  for (let ih = rows[0]; ih < rows[1]; ih++) {
    for (let iw = cols[0]; iw < cols[1]; iw++) {
      const index = ((n * info.inHeight + ih) * info.inWidth + iw) * info.inChannels + c;
      if (heap[p.x + index] > best) {
        best = heap[p.x + index]!;
        at = index;
      }
    }
  }
  return at;
}

/**
 * Adds one window's dy to the first position (row-major) where x equals the window's pooled
 * value y, channel by channel: a scan that stops at the match and whose comparison is almost
 * never true, where a running maximum over the whole window mispredicts on about every other
 * element (24 ms against 49 for the ResNet stem's pool at 96x96, batch 32). A channel whose y
 * matches no element (an `output` not produced by this pool) falls back to searching the
 * maximum.
 */
function scatterWindow(p: PoolPass, n: number, rows: [number, number], cols: [number, number], yAt: number): void {
  const { heap, info } = p;
  const channels = info.inChannels;
  const rowStride = info.inWidth * channels;
  const imageAt = n * info.inHeight * rowStride;
  const dyAt = p.dy + yAt - p.y;
  const xAt = p.x + imageAt;
  for (let c = 0; c < channels; c++) {
    const target = heap[yAt + c];
    let at = -1;
    for (let ih = rows[0]; ih < rows[1] && at < 0; ih++) {
      for (let iw = cols[0], index = ih * rowStride + iw * channels + c; iw < cols[1]; iw++, index += channels) {
        if (heap[xAt + index] === target) {
          at = imageAt + index;
          break;
        }
      }
    }
    if (at < 0) at = firstMaximum(p, n, rows, cols, c);
    if (at >= 0) heap[p.dx + at] += heap[dyAt + c];
  }
}

/**
 * Max-pool gradient in JS on the wasm heap: each window's dy goes to the first maximum of the
 * window in row-major order (padding excluded), as the cpu backend does. The stock wasm
 * kernel took a third of a second for the ResNet stem's pool (batch 32, 47x47x64); this
 * visits every window once, with the channels innermost so the loops read memory in order.
 */
function maxPoolGrad(args: { inputs: MaxPoolGradInputs; backend: BackendWasm; attrs: MaxPoolGradAttrs }): TensorInfo {
  const { backend } = args;
  const dy = args.inputs.dy as TensorInfo;
  const x = args.inputs.input as TensorInfo;
  const y = args.inputs.output as TensorInfo;
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs;
  const info = backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  if (info.dataFormat !== 'channelsLast' || x.dtype !== 'float32' || y === undefined || y.dtype !== 'float32') {
    return stockMaxPoolGrad.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const dx = backend.makeOutput(x.shape, 'float32');
  const heap = heapFloats(backend);
  const pass: PoolPass = {
    heap,
    x: heapFloatIndex(backend, x),
    y: heapFloatIndex(backend, y),
    dy: heapFloatIndex(backend, dy),
    dx: heapFloatIndex(backend, dx),
    info,
  };
  heap.fill(0, pass.dx, pass.dx + x.shape.reduce((a, b) => a * b, 1));
  let yAt = pass.y;
  for (let n = 0; n < info.batchSize; n++) {
    for (let oh = 0; oh < info.outHeight; oh++) {
      const top = oh * info.strideHeight - info.padInfo.top;
      const rows: [number, number] = [Math.max(top, 0), Math.min(top + info.effectiveFilterHeight, info.inHeight)];
      for (let ow = 0; ow < info.outWidth; ow++, yAt += info.inChannels) {
        const left = ow * info.strideWidth - info.padInfo.left;
        scatterWindow(pass, n, rows, [Math.max(left, 0), Math.min(left + info.effectiveFilterWidth, info.inWidth)], yAt);
      }
    }
  }
  return dx;
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
  setupFunc: stockMaxPoolGrad.setupFunc,
};
