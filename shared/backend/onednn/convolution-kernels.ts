/**
 * Conv2D, FusedConv2D (bias, optional ReLU), Conv2DBackpropInput and Conv2DBackpropFilter on
 * oneDNN, for NHWC float32 data. Anything else (NCHW, other activations, other dtypes) runs
 * the cpu kernel.
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, sizeOf, type KernelArgs } from './kernel-support.ts';

type Pad = 'same' | 'valid' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

/** Reused for every call: the 17 integers of native/convolution.h's ConvGeometry. */
const geometry = new Int32Array(17);

/**
 * Fills {@link geometry} from tfjs's conv info; false when the shapes are empty or the data
 * format is not NHWC. Bottom/right padding is what oneDNN needs for tfjs's output size (it
 * can be below tfjs's own figure when the last rows are never read).
 */
function fillGeometry(info: backend_util.Conv2DInfo): boolean {
  if (info.dataFormat !== 'channelsLast') return false;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  if (sizeOf([batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels]) === 0) return false;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  const bottom = (outHeight - 1) * strideHeight + (filterHeight - 1) * dilationHeight + 1 - inHeight - top;
  const right = (outWidth - 1) * strideWidth + (filterWidth - 1) * dilationWidth + 1 - inWidth - left;
  geometry.set([
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
    strideHeight,
    strideWidth,
    dilationHeight,
    dilationWidth,
    top,
    left,
    bottom,
    right,
  ]);
  return true;
}

function convInfoFor(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, dilations: number | [number, number]): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    attrs.strides as number | [number, number],
    dilations,
    attrs.pad as Pad,
    attrs.dimRoundingMode as Rounding,
    false,
    backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC'),
  );
}

/** A bias the native forward can add: one value per output channel. */
function channelBias(args: KernelArgs, outChannels: number): Float32Array | null | 'unsupported' {
  const bias = args.inputs.bias;
  if (bias === undefined || bias === null) return null;
  const data = float32Data(args.backend, bias);
  if (data === null || data.length !== outChannels || bias.shape[bias.shape.length - 1] !== outChannels) return 'unsupported';
  return data;
}

function makeConv2d(fused: boolean): KernelFunc {
  const fallback = cpuKernel(fused ? FusedConv2D : Conv2D);
  return (rawArgs) => {
    const args = rawArgs as unknown as KernelArgs;
    const { backend } = args;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    const xData = float32Data(backend, x);
    const wData = float32Data(backend, filter);
    const info = convInfoFor(x.shape, filter.shape, attrs, attrs.dilations as number | [number, number]);
    const bias = fused ? channelBias(args, info.outChannels) : null;
    if (xData === null || wData === null || bias === 'unsupported' || (activation !== 'linear' && activation !== 'relu') || !fillGeometry(info)) {
      return runCpu(fallback, args);
    }
    const y = backend.allocateFloat32(sizeOf(info.outShape));
    backend.addon.conv2dForward(geometry, xData, wData, bias, activation === 'relu', y);
    return backend.makeNativeOutput(y, info.outShape);
  };
}

const conv2dBackpropInputFallback = () => cpuKernel(Conv2DBackpropInput);

const conv2dBackpropInput: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const dyData = float32Data(backend, dy);
  const wData = float32Data(backend, filter);
  const info = convInfoFor(attrs.inputShape as number[], filter.shape, attrs, 1);
  if (dyData === null || wData === null || !fillGeometry(info)) return runCpu(conv2dBackpropInputFallback(), args);
  const dx = backend.allocateFloat32(sizeOf(info.inShape));
  backend.addon.conv2dBackwardData(geometry, dyData, wData, dx);
  return backend.makeNativeOutput(dx, info.inShape);
};

const conv2dBackpropFilterFallback = () => cpuKernel(Conv2DBackpropFilter);

const conv2dBackpropFilter: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const xData = float32Data(backend, x);
  const dyData = float32Data(backend, dy);
  const info = convInfoFor(x.shape, attrs.filterShape as number[], attrs, 1);
  if (xData === null || dyData === null || !fillGeometry(info)) return runCpu(conv2dBackpropFilterFallback(), args);
  const dw = backend.allocateFloat32(sizeOf(info.filterShape));
  backend.addon.conv2dBackwardWeights(geometry, xData, dyData, dw);
  return backend.makeNativeOutput(dw, info.filterShape);
};

/** The convolution kernels for backend `backendName`. */
export function convolutionKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: Conv2D, backendName, kernelFunc: makeConv2d(false) },
    { kernelName: FusedConv2D, backendName, kernelFunc: makeConv2d(true) },
    { kernelName: Conv2DBackpropInput, backendName, kernelFunc: conv2dBackpropInput },
    { kernelName: Conv2DBackpropFilter, backendName, kernelFunc: conv2dBackpropFilter },
  ];
}
