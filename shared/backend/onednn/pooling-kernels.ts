/**
 * MaxPool and MaxPoolGrad on NHWC float32 data in native code, with the cpu kernels'
 * semantics (padding never wins, the first maximum in window order takes the gradient).
 */
import { backend_util, MaxPool, MaxPoolGrad, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, sizeOf, type KernelArgs } from './kernel-support.ts';

type Pad = 'same' | 'valid' | number | backend_util.ExplicitPadding;

/** The 12 integers of native/max-pool.h's PoolGeometry, reused for every call. */
const geometry = new Int32Array(12);

function poolInfo(shape: number[], attrs: Record<string, unknown>): backend_util.Conv2DInfo {
  return backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
}

/** Fills {@link geometry}; false for shapes the native code does not take. */
function fillGeometry(info: backend_util.Conv2DInfo): boolean {
  if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return false;
  if (sizeOf(info.inShape) === 0 || sizeOf(info.outShape) === 0) return false;
  geometry.set([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ]);
  return true;
}

const maxPoolFallback = () => cpuKernel(MaxPool);

const maxPool: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { x } = args.inputs as { x: TensorInfo };
  const xData = float32Data(backend, x);
  const info = poolInfo(x.shape, args.attrs ?? {});
  if (xData === null || !fillGeometry(info)) return runCpu(maxPoolFallback(), args);
  const y = backend.allocateFloat32(sizeOf(info.outShape));
  backend.addon.maxPoolForward(geometry, xData, y);
  return backend.makeNativeOutput(y, info.outShape);
};

const maxPoolGradFallback = () => cpuKernel(MaxPoolGrad);

const maxPoolGrad: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const xData = float32Data(backend, input);
  const dyData = float32Data(backend, dy);
  const info = poolInfo(input.shape, args.attrs ?? {});
  if (xData === null || dyData === null || !fillGeometry(info)) return runCpu(maxPoolGradFallback(), args);
  const dx = backend.allocateFloat32(xData.length);
  backend.addon.maxPoolBackward(geometry, xData, dyData, dx);
  return backend.makeNativeOutput(dx, input.shape.slice());
};

/** The pooling kernels for backend `backendName`. */
export function poolingKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: MaxPool, backendName, kernelFunc: maxPool },
    { kernelName: MaxPoolGrad, backendName, kernelFunc: maxPoolGrad },
  ];
}
