import { Reshape, Transpose, backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runStockConv2D } from './stock-conv2d.ts';
import { disposeAll, heapFloatIndex, heapFloats, runWasmKernel } from './wasm-kernel-call.ts';

/**
 * Input gradient for convolutions with few input channels (the stem's single grey channel),
 * where the phase convolutions of conv2d-backprop-input.ts would each have a handful of
 * output channels, a shape XNNPACK runs slowly. Instead one GEMM (a 1x1 Conv2D) gives every
 * pixel's contribution to every tap, cols[n, oh, ow, (kh, kw, ci)] = sum over co of
 * dy[n, oh, ow, co] * W[kh, kw, ci, co], and a JS loop adds each into the input pixel that the
 * tap read (col2im).
 */
export function conv2dBackpropInputCol2im(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight, filterWidth, inChannels, outChannels } = info;
  const taps = filterHeight * filterWidth * inChannels;
  const filterOi = runWasmKernel(backend, Transpose, { x: filter }, { perm: [3, 0, 1, 2] });
  const gemmFilter = runWasmKernel(backend, Reshape, { x: filterOi }, { shape: [1, 1, outChannels, taps] });
  const cols = runStockConv2D(backend, { x: dy, filter: gemmFilter }, { strides: 1, dilations: 1, pad: 'valid', dataFormat: 'NHWC' });
  disposeAll(backend, [filterOi, gemmFilter]);
  const dx = backend.makeOutput(info.inShape, 'float32');
  scatterAddColumns(backend, cols, dx, info);
  backend.disposeData(cols.dataId);
  return dx;
}

/** dx[n, oh*s + kh - pad, ow*s + kw - pad, ci] += cols[n, oh, ow, (kh, kw, ci)], in bounds. */
function scatterAddColumns(backend: BackendWasm, cols: TensorInfo, dx: TensorInfo, info: backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const heap = heapFloats(backend);
  const dxBase = heapFloatIndex(backend, dx);
  heap.fill(0, dxBase, dxBase + batchSize * inHeight * inWidth * inChannels);
  let from = heapFloatIndex(backend, cols);
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        for (let kh = 0; kh < filterHeight; kh++) {
          const ih = oh * strideHeight + kh - padInfo.top;
          if (ih < 0 || ih >= inHeight) {
            from += filterWidth * inChannels;
            continue;
          }
          for (let kw = 0; kw < filterWidth; kw++, from += inChannels) {
            const iw = ow * strideWidth + kw - padInfo.left;
            if (iw < 0 || iw >= inWidth) continue;
            const to = dxBase + ((n * inHeight + ih) * inWidth + iw) * inChannels;
            for (let c = 0; c < inChannels; c++) heap[to + c] += heap[from + c];
          }
        }
      }
    }
  }
}
