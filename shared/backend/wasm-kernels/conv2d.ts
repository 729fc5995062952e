import { backend_util, Conv2D, FusedConv2D, type DataId, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { cachedCroppedFilter, effectiveTaps } from './effective-taps.ts';
import { forwardBySwappedRoles, prefersSwappedForward, type SwappedActivation } from './forward-by-swapped-roles.ts';
import { stockConv2D } from './stock-conv2d.ts';
import { stockWasmKernel } from './wasm-kernel-call.ts';

const stockFusedConv2D = stockWasmKernel(FusedConv2D);

interface ConvArgs {
  inputs: { x: TensorInfo; filter: TensorInfo } & Record<string, TensorInfo | undefined>;
  backend: BackendWasm;
  attrs: NamedAttrMap;
}

/**
 * Filters this kernel has run before (by data id, dropped once disposed). The stock conv
 * caches XNNPACK's packed weights on the filter, so a filter seen before is cheap to run
 * again, while a new one (new weights, each training step) pays for the packing; only new
 * filters are considered for the swapped-roles route, which packs x instead.
 */
const seenFilters = new Set<DataId>();

/** Whether `filter` is new to this kernel; remembers it, and forgets disposed ones. */
function firstUse(backend: BackendWasm, filter: TensorInfo): boolean {
  for (const id of seenFilters) if (!backend.dataIdMap.has(id)) seenFilters.delete(id);
  if (seenFilters.has(filter.dataId)) return false;
  seenFilters.add(filter.dataId);
  return true;
}

/** The activation when the swapped-roles route can apply it itself, else null. */
function swappableActivation(args: ConvArgs): SwappedActivation | null {
  const activation = (args.attrs['activation'] as string | undefined) ?? 'linear';
  if (args.inputs['preluActivationWeights'] !== undefined) return null;
  return activation === 'linear' || activation === 'relu' ? activation : null;
}

function convInfo(args: ConvArgs): backend_util.Conv2DInfo {
  const { x, filter } = args.inputs;
  const { strides, dilations, pad, dimRoundingMode, dataFormat } = args.attrs as unknown as {
    strides: number | [number, number];
    dilations?: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    dataFormat?: 'NHWC' | 'NCHW';
  };
  return backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    dilations ?? 1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'),
  );
}

/**
 * Runs a forward conv (the stock kernel `stock` or the swapped-roles route) on the taps that
 * meet real pixels only (see effective-taps.ts), with the padding that keeps the output the
 * same. The cropped filter is cached per source filter, so a forward pass with unchanged
 * weights still reuses XNNPACK's packed operator.
 */
function forwardConv(stock: KernelConfig, args: ConvArgs): TensorInfo {
  const { x, filter } = args.inputs;
  const float = x.dtype === 'float32' && filter.dtype === 'float32';
  const info = convInfo(args);
  const window = float ? effectiveTaps(info) : null;
  const used = window === null ? filter : cachedCroppedFilter(args.backend, filter, window);
  const usedInfo =
    window === null
      ? info
      : backend_util.computeConv2DInfo(info.inShape, used.shape as [number, number, number, number], [info.strideHeight, info.strideWidth], 1, window.pad);
  const activation = float && usedInfo.dataFormat === 'channelsLast' ? swappableActivation(args) : null;
  if (activation !== null && firstUse(args.backend, used) && prefersSwappedForward(usedInfo)) {
    return forwardBySwappedRoles(args.backend, x, used, args.inputs['bias'], activation, usedInfo);
  }
  if (window === null) return stock.kernelFunc(args) as TensorInfo;
  return stock.kernelFunc({
    ...args,
    inputs: { ...args.inputs, filter: used },
    attrs: { ...args.attrs, pad: window.pad, dimRoundingMode: undefined },
  } as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}

/** Registration record for `registerKernel`; wraps the stock wasm Conv2D. */
export const conv2DConfig: KernelConfig = {
  kernelName: Conv2D,
  backendName: 'wasm',
  kernelFunc: ((args: ConvArgs) => forwardConv(stockConv2D, args)) as unknown as KernelFunc,
  setupFunc: stockConv2D.setupFunc,
};

/** Registration record for `registerKernel`; wraps the stock wasm FusedConv2D (bias, activation). */
export const fusedConv2DConfig: KernelConfig = {
  kernelName: FusedConv2D,
  backendName: 'wasm',
  kernelFunc: ((args: ConvArgs) => forwardConv(stockFusedConv2D, args)) as unknown as KernelFunc,
  setupFunc: stockFusedConv2D.setupFunc,
};
