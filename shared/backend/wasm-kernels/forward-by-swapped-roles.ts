import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runStockConv2D } from './stock-conv2d.ts';
import { NS_PER_MULTIPLY_ADD, NS_PER_PACKED_VALUE, NS_PER_TRANSPOSED_ACTIVATION } from './conv-costs.ts';
import { activationAsFlippedFilter } from './flipped-activation-filter.ts';
import { disposeAll, heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/** Activations the swapped-roles forward applies itself after the conv. */
export type SwappedActivation = 'linear' | 'relu';

/** Padding (top, bottom, left, right) of the swapped-roles conv, null where some side would be negative. */
function swappedPadding(info: backend_util.Conv2DInfo): [number, number, number, number] | null {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const pad: [number, number, number, number] = [
    inHeight - filterHeight + padInfo.top,
    strideHeight * (outHeight - 1) - padInfo.top,
    inWidth - filterWidth + padInfo.left,
    strideWidth * (outWidth - 1) - padInfo.left,
  ];
  return pad.every((p) => p >= 0) ? pad : null;
}

/**
 * Whether a forward conv whose weights XNNPACK has not packed yet (new weights, as in every
 * training step) is cheaper with the roles swapped. The stock conv packs the weights, at some
 * 20 ns a value, and slides kh*kw taps over each output pixel; swapped, XNNPACK packs x
 * instead and slides x's ih*iw pixels over each output pixel. On the small activations of
 * ResNet's last stages (3x3 at 96x96, 2x2 and 1x1 at 28x28) x has a sixteenth of the weights'
 * values and no more pixels than the filter has taps.
 */
export function prefersSwappedForward(info: backend_util.Conv2DInfo): boolean {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || swappedPadding(info) === null) return false;
  const { batchSize, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const channelPairs = batchSize * inChannels * outChannels;
  const weights = filterHeight * filterWidth * inChannels * outChannels;
  const xSize = batchSize * inHeight * inWidth * inChannels;
  const ySize = batchSize * outHeight * outWidth * outChannels;
  const stock = channelPairs * outHeight * outWidth * filterHeight * filterWidth * NS_PER_MULTIPLY_ADD + weights * NS_PER_PACKED_VALUE;
  const swapped =
    channelPairs * outHeight * outWidth * inHeight * inWidth * NS_PER_MULTIPLY_ADD +
    xSize * NS_PER_PACKED_VALUE +
    (weights + ySize) * NS_PER_TRANSPOSED_ACTIVATION;
  return swapped < stock;
}

/**
 * The weights [kh, kw, ci, co] as an image [co, kh, kw, ci], flipped in both spatial axes:
 * each tap's [ci, co] block transposed into the rows of its mirrored tap.
 */
function weightsAsFlippedImage(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [height, width, inChannels, outChannels] = filter.shape as [number, number, number, number];
  const image = backend.makeOutput([outChannels, height, width, inChannels], 'float32');
  const heap = heapFloats(backend);
  const from = heapFloatIndex(backend, filter);
  const to = heapFloatIndex(backend, image);
  const taps = height * width;
  const rowStride = taps * inChannels;
  for (let tap = 0; tap < taps; tap++) {
    const source = from + tap * inChannels * outChannels;
    const target = to + (taps - 1 - tap) * inChannels;
    for (let ci = 0; ci < inChannels; ci++) {
      const row = source + ci * outChannels;
      for (let co = 0; co < outChannels; co++) heap[target + co * rowStride + ci] = heap[row + co]!;
    }
  }
  return image;
}

/** y[n, oh, ow, co] = activation(out[co, oh, ow, n] + bias[co]). */
function finishOutput(backend: BackendWasm, byChannel: TensorInfo, bias: TensorInfo | undefined, activation: SwappedActivation): TensorInfo {
  const [outChannels, outHeight, outWidth, batch] = byChannel.shape as [number, number, number, number];
  const y = backend.makeOutput([batch, outHeight, outWidth, outChannels], 'float32');
  const heap = heapFloats(backend);
  const from = heapFloatIndex(backend, byChannel);
  const to = heapFloatIndex(backend, y);
  const biasAt = bias === undefined ? -1 : heapFloatIndex(backend, bias);
  const pixels = outHeight * outWidth;
  for (let co = 0; co < outChannels; co++) {
    const shift = biasAt < 0 ? 0 : heap[biasAt + co];
    for (let p = 0; p < pixels; p++) {
      const row = from + (co * pixels + p) * batch;
      for (let n = 0; n < batch; n++) {
        const v = heap[row + n] + shift;
        heap[to + (n * pixels + p) * outChannels + co] = activation === 'relu' && v < 0 ? 0 : v;
      }
    }
  }
  return y;
}

/**
 * A forward NHWC conv2d with the roles of weights and x swapped:
 * y[n, oh, ow, co] = sum over ih, iw, ci of W[ih + pt - s*oh, iw + pl - s*ow, ci, co] *
 * x[n, ih, iw, ci]. Read with co as the batch, the weights as the image ([co, kh, kw, ci],
 * flipped) and x as the filter ([ih, iw, ci, n], flipped), that is one Conv2D with the
 * forward's stride whose output is y as [co, oh, ow, n], then bias and activation. Callers
 * check prefersSwappedForward first.
 */
export function forwardBySwappedRoles(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | undefined,
  activation: SwappedActivation,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const [top, bottom, left, right] = swappedPadding(info)!;
  const image = weightsAsFlippedImage(backend, filter);
  const xFilter = activationAsFlippedFilter(backend, x);
  const byChannel = runStockConv2D(
    backend,
    { x: image, filter: xFilter },
    {
      strides: [info.strideHeight, info.strideWidth],
      dilations: 1,
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  disposeAll(backend, [image, xFilter]);
  const y = finishOutput(backend, byChannel, bias, activation);
  backend.disposeData(byChannel.dataId);
  return y;
}
