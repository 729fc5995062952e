import { BatchMatMul, Reshape, Transpose, backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { disposeAll, heapFloatIndex, heapFloats, runWasmKernel } from './wasm-kernel-call.ts';

/** Whether every output pixel reads the input pixel at the same position (stride 1, no padding). */
function readsInputInPlace(info: backend_util.Conv2DInfo): boolean {
  return (
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    info.outHeight === info.inHeight &&
    info.outWidth === info.inWidth
  );
}

/** The input pixel each output pixel of a 1x1 conv reads, as [pixels, in channels]; zeros for padding. */
function sampledInput(backend: BackendWasm, x: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, padInfo } = info;
  const sampled = backend.makeOutput([batchSize * outHeight * outWidth, inChannels], 'float32');
  const heap = heapFloats(backend);
  const xAt = heapFloatIndex(backend, x);
  let to = heapFloatIndex(backend, sampled);
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const ih = oh * strideHeight - padInfo.top;
      for (let ow = 0; ow < outWidth; ow++, to += inChannels) {
        const iw = ow * strideWidth - padInfo.left;
        if (ih < 0 || ih >= inHeight || iw < 0 || iw >= inWidth) {
          heap.fill(0, to, to + inChannels);
          continue;
        }
        const from = xAt + ((n * inHeight + ih) * inWidth + iw) * inChannels;
        for (let c = 0; c < inChannels; c++) heap[to + c] = heap[from + c]!;
      }
    }
  }
  return sampled;
}

/**
 * Filter gradient of a 1x1 conv (ResNet's shortcuts) as one matrix product:
 * dW[ci, co] = sum over pixels p of xs[p, ci] * dy[p, co], xs being the input pixels the conv
 * read (every s-th pixel for stride s). The wasm backend runs only A * B (no transposes) in
 * XNNPACK, so xs is transposed first, a small copy next to the product. Returns [1, ci, co].
 * The dilated-conv route of conv2d-backprop-filter.ts computed a 2x2 output and cropped it
 * for stride 2, with a filter the size of dy: 57 ms against 11 for the forward conv at ResNet's
 * first stride-2 shortcut (96x96, batch 32).
 */
export function filterGradientAsMatMul(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const pixels = info.batchSize * info.outHeight * info.outWidth;
  const sampled = readsInputInPlace(info) ? runWasmKernel(backend, Reshape, { x }, { shape: [pixels, info.inChannels] }) : sampledInput(backend, x, info);
  const byChannel = runWasmKernel(backend, Transpose, { x: sampled }, { perm: [1, 0] });
  const a = runWasmKernel(backend, Reshape, { x: byChannel }, { shape: [1, info.inChannels, pixels] });
  const b = runWasmKernel(backend, Reshape, { x: dy }, { shape: [1, pixels, info.outChannels] });
  const product = runWasmKernel(backend, BatchMatMul, { a, b }, { transposeA: false, transposeB: false });
  disposeAll(backend, [sampled, byChannel, a, b]);
  return product;
}
