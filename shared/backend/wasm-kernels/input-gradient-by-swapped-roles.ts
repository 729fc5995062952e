import { Transpose, backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runStockConv2D } from './stock-conv2d.ts';
import { NS_PER_MULTIPLY_ADD, NS_PER_PACKED_VALUE, NS_PER_TRANSPOSED_ACTIVATION, NS_PER_TRANSPOSED_WEIGHT } from './conv-costs.ts';
import { activationAsFlippedFilter } from './flipped-activation-filter.ts';
import { disposeAll, runWasmKernel } from './wasm-kernel-call.ts';

/**
 * Padding (top, bottom, left, right) of the swapped-roles conv below, null where some side
 * would be negative (a forward conv that never read its last rows or columns).
 */
function swappedPadding(info: backend_util.Conv2DInfo): [number, number, number, number] | null {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const pad: [number, number, number, number] = [
    strideHeight * (outHeight - 1) - padInfo.top,
    inHeight - filterHeight + padInfo.top,
    strideWidth * (outWidth - 1) - padInfo.left,
    inWidth - filterWidth + padInfo.left,
  ];
  return pad.every((p) => p >= 0) ? pad : null;
}

/**
 * Whether the swapped-roles input gradient applies and is expected to beat the phase
 * convolutions. The phase route packs (and first transposes) the weights; this one packs dy.
 * But its conv slides all of dy's oh*ow pixels over each dx pixel, where the phases slide
 * only the kh*kw taps, and where dx is larger than the filter most of those products read
 * padding: it wins where dy is small next to the weights and dx is not much larger than the
 * filter, as in ResNet's last stages (3x3 activations at 96x96, 2x2 and 1x1 at 28x28).
 */
export function prefersSwappedRoles(info: backend_util.Conv2DInfo): boolean {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || swappedPadding(info) === null) return false;
  const { batchSize, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const channelPairs = batchSize * inChannels * outChannels;
  const weights = filterHeight * filterWidth * inChannels * outChannels;
  const dySize = batchSize * outHeight * outWidth * outChannels;
  const dxSize = batchSize * inHeight * inWidth * inChannels;
  const phases =
    channelPairs * outHeight * outWidth * filterHeight * filterWidth * NS_PER_MULTIPLY_ADD + weights * (NS_PER_PACKED_VALUE + NS_PER_TRANSPOSED_WEIGHT);
  const swapped =
    channelPairs * inHeight * inWidth * outHeight * outWidth * NS_PER_MULTIPLY_ADD +
    dySize * (NS_PER_PACKED_VALUE + NS_PER_TRANSPOSED_ACTIVATION) +
    dxSize * NS_PER_TRANSPOSED_ACTIVATION;
  return swapped < phases;
}

/**
 * Input gradient of an NHWC conv2d with the roles of weights and dy swapped:
 * dx[n, ih, iw, ci] = sum over oh, ow, co of W[ih + pt - s*oh, iw + pl - s*ow, ci, co] *
 * dy[n, oh, ow, co]. Read with ci as the batch, W's taps as the image ([ci, kh, kw, co]) and dy
 * as the filter (flipped, [oh, ow, co, n], dilated by the stride), that is one stride-1 Conv2D
 * whose output is dx as [ci, ih, iw, n]. So XNNPACK packs dy instead of the weights: on the
 * 3x3 and 1x1 activations of ResNet's last stage dy has a sixteenth of the weights' values.
 * Callers check prefersSwappedRoles first.
 */
export function inputGradientBySwappedRoles(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const [top, bottom, left, right] = swappedPadding(info)!;
  const image = runWasmKernel(backend, Transpose, { x: filter }, { perm: [2, 0, 1, 3] });
  const dyFilter = activationAsFlippedFilter(backend, dy);
  const byChannel = runStockConv2D(
    backend,
    { x: image, filter: dyFilter },
    {
      strides: 1,
      dilations: [info.strideHeight, info.strideWidth],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  disposeAll(backend, [image, dyFilter]);
  const dx = runWasmKernel(backend, Transpose, { x: byChannel }, { perm: [3, 1, 2, 0] });
  backend.disposeData(byChannel.dataId);
  return dx;
}
