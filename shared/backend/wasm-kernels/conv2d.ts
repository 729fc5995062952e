import { backend_util, Conv2D, FusedConv2D, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { cachedCroppedFilter, effectiveTaps } from './effective-taps.ts';
import { stockWasmKernel } from './wasm-kernel-call.ts';

const stockConv2D = stockWasmKernel(Conv2D);
const stockFusedConv2D = stockWasmKernel(FusedConv2D);

interface ConvArgs {
  inputs: { x: TensorInfo; filter: TensorInfo } & Record<string, TensorInfo | undefined>;
  backend: BackendWasm;
  attrs: NamedAttrMap;
}

/**
 * Runs `stock` on the taps that meet real pixels only (see effective-taps.ts), with the
 * padding that keeps the output the same; the plain stock call when every tap is used. The
 * cropped filter is cached per source filter, so a forward pass with unchanged weights still
 * reuses XNNPACK's packed operator.
 */
function withUsedTaps(stock: KernelConfig, args: ConvArgs): TensorInfo {
  const { x, filter } = args.inputs;
  const { strides, dilations, pad, dimRoundingMode, dataFormat } = args.attrs as unknown as {
    strides: number | [number, number]; dilations?: number | [number, number]; pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil'; dataFormat?: 'NHWC' | 'NCHW';
  };
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    strides, dilations ?? 1, pad, dimRoundingMode, false, backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'));
  const window = x.dtype === 'float32' && filter.dtype === 'float32' ? effectiveTaps(info) : null;
  if (window === null) return stock.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  const cropped = cachedCroppedFilter(args.backend, filter, window);
  return stock.kernelFunc({
    ...args,
    inputs: { ...args.inputs, filter: cropped },
    attrs: { ...args.attrs, pad: window.pad, dimRoundingMode: undefined },
  } as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}

/** Registration record for `registerKernel`; wraps the stock wasm Conv2D. */
export const conv2DConfig: KernelConfig = {
  kernelName: Conv2D,
  backendName: 'wasm',
  kernelFunc: ((args: ConvArgs) => withUsedTaps(stockConv2D, args)) as unknown as KernelFunc,
  setupFunc: stockConv2D.setupFunc,
};

/** Registration record for `registerKernel`; wraps the stock wasm FusedConv2D (bias, activation). */
export const fusedConv2DConfig: KernelConfig = {
  kernelName: FusedConv2D,
  backendName: 'wasm',
  kernelFunc: ((args: ConvArgs) => withUsedTaps(stockFusedConv2D, args)) as unknown as KernelFunc,
  setupFunc: stockFusedConv2D.setupFunc,
};
