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
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs;
  const info = backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  if (info.dataFormat !== 'channelsLast' || x.dtype !== 'float32') {
    return stockMaxPoolGrad.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const dx = backend.makeOutput(x.shape, 'float32');
  const heap = heapFloats(backend);
  const xBase = heapFloatIndex(backend, x);
  const dyBase = heapFloatIndex(backend, dy);
  const dxBase = heapFloatIndex(backend, dx);
  const { inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  heap.fill(0, dxBase, dxBase + x.shape.reduce((a, b) => a * b, 1));

  const best = new Float32Array(channels);
  const at = new Int32Array(channels);
  let dyAt = dyBase;
  for (let n = 0; n < info.batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const top = oh * info.strideHeight - info.padInfo.top;
      const rowFrom = Math.max(top, 0);
      const rowTo = Math.min(top + info.effectiveFilterHeight, inHeight);
      for (let ow = 0; ow < outWidth; ow++, dyAt += channels) {
        const left = ow * info.strideWidth - info.padInfo.left;
        const colFrom = Math.max(left, 0);
        const colTo = Math.min(left + info.effectiveFilterWidth, inWidth);
        best.fill(-Infinity);
        at.fill(-1);
        for (let ih = rowFrom; ih < rowTo; ih++) {
          for (let iw = colFrom; iw < colTo; iw++) {
            const pixel = ((n * inHeight + ih) * inWidth + iw) * channels;
            for (let c = 0; c < channels; c++) {
              const value = heap[xBase + pixel + c];
              if (value > best[c]) {
                best[c] = value;
                at[c] = pixel + c;
              }
            }
          }
        }
        for (let c = 0; c < channels; c++) {
          if (at[c] >= 0) heap[dxBase + at[c]] += heap[dyAt + c];
        }
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
