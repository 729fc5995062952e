import {
  backend_util,
  Conv2DBackpropFilter,
  Reshape,
  Slice,
  Transpose,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runStockConv2D } from './stock-conv2d.ts';
import { croppedFilterShape, effectiveTaps, embedTaps } from './effective-taps.ts';
import { filterGradientAsMatMul } from './pointwise-filter-gradient.ts';
import { filterGradientByTapRows } from './filter-gradient-by-tap-rows.ts';
import { disposeAll, runWasmKernel } from './wasm-kernel-call.ts';

/**
 * dW[kh, kw, ci, co] = sum over n, oh, ow of x[n, oh*s + kh - pad, ow*s + kw - pad, ci] *
 * dy[n, oh, ow, co]. Read with ci as the batch, (kh, kw) as the output pixel, dy's pixels as
 * filter taps spaced s apart and n as the channel being summed, that is itself a conv2d:
 * x as [ci, H, W, n] convolved with dy as [oh, ow, n, co], dilation = the forward stride, the
 * forward padding at top/left. So the work runs in the backend's own XNNPACK Conv2D instead of
 * a scalar loop.
 */
function filterGradientAsConv(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  // Bottom/right padding that makes the dilated "filter" end exactly filterHeight-1 rows past
  // the last needed input row; when the forward pass never read the last rows it is negative,
  // and the extra output rows are cropped instead.
  const padBottom = filterHeight + strideHeight * (outHeight - 1) - inHeight - padInfo.top;
  const padRight = filterWidth + strideWidth * (outWidth - 1) - inWidth - padInfo.left;

  const xByChannel = runWasmKernel(backend, Transpose, { x }, { perm: [3, 1, 2, 0] });
  const dyAsFilter = runWasmKernel(backend, Transpose, { x: dy }, { perm: [1, 2, 0, 3] });
  const full = runStockConv2D(
    backend,
    { x: xByChannel, filter: dyAsFilter },
    {
      strides: 1,
      dilations: [strideHeight, strideWidth],
      pad: [
        [0, 0],
        [padInfo.top, Math.max(padBottom, 0)],
        [padInfo.left, Math.max(padRight, 0)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  disposeAll(backend, [xByChannel, dyAsFilter]);

  const cropped =
    padBottom < 0 || padRight < 0
      ? runWasmKernel(backend, Slice, { x: full }, { begin: [0, 0, 0, 0], size: [info.inChannels, filterHeight, filterWidth, info.outChannels] })
      : full;
  const dW = runWasmKernel(backend, Transpose, { x: cropped }, { perm: [1, 2, 0, 3] });
  disposeAll(backend, cropped === full ? [full] : [full, cropped]);
  return dW;
}

/**
 * Below this many input channels the conv route is used: the tap-rows products have kw * ci
 * rows, seven for the ResNet stem's single grey channel, too few for XNNPACK's GEMM (the stem
 * at 96x96, batch 32: 71 ms by tap rows, 35 by the conv; 59 against 73 for the 24x24x64 convs).
 */
const FEW_INPUT_CHANNELS = 16;

/**
 * The gradient of a filter whose taps all meet real pixels: one matMul for 1x1 filters, one
 * per filter row otherwise (the conv route for few input channels).
 */
function filterGradient(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  if (info.filterHeight !== 1 || info.filterWidth !== 1) {
    return info.inChannels < FEW_INPUT_CHANNELS ? filterGradientAsConv(backend, x, dy, info) : filterGradientByTapRows(backend, x, dy, info);
  }
  const gradient = filterGradientAsMatMul(backend, x, dy, info);
  const shaped = runWasmKernel(backend, Reshape, { x: gradient }, { shape: [1, 1, info.inChannels, info.outChannels] });
  backend.disposeData(gradient.dataId);
  return shaped;
}

/**
 * Filter gradient of an NHWC conv2d, which tfjs-backend-wasm 4.22 lacks. Taps that only ever
 * read padding (small images; see effective-taps.ts) get a zero gradient without any work.
 */
function conv2dBackpropFilter(args: { inputs: Conv2DBackpropFilterInputs; backend: BackendWasm; attrs: Conv2DBackpropFilterAttrs }): TensorInfo {
  const { backend } = args;
  const x = args.inputs.x as TensorInfo;
  const dy = args.inputs.dy as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const window = effectiveTaps(info);
  if (window === null) return filterGradient(backend, x, dy, info);
  const croppedInfo = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    croppedFilterShape(window, filterShape),
    strides,
    1,
    window.pad,
  );
  const croppedGradient = filterGradient(backend, x, dy, croppedInfo);
  const dW = embedTaps(backend, croppedGradient, window, filterShape);
  backend.disposeData(croppedGradient.dataId);
  return dW;
}

/** Registration record for `registerKernel`. */
export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as KernelFunc,
};
