/**
 * Batch normalisation kernels on NHWC float32 data, per channel (the last axis):
 * - FusedBatchNorm (tf.batchNorm with given mean and variance), replacing the cpu kernel;
 * - `OnednnBatchNormTraining` and `OnednnBatchNormTrainingGrad`, the two halves of the fused
 *   training op in batch-norm-training.ts (statistics + normalisation + optional ReLU in two
 *   passes over the activations, and all gradients in two more).
 */
import { FusedBatchNorm, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { cpuKernel, float32Data, runCpu, type KernelArgs } from './kernel-support.ts';
import type { OnednnBackend } from './onednn-backend.ts';

/** Kernel name of the fused training forward: inputs x, scale, offset; outputs y, mean, variance. */
export const BATCH_NORM_TRAINING = 'OnednnBatchNormTraining';
/** Kernel name of its gradient: inputs dy, x, y, scale, mean, variance, dmean?, dvariance?; outputs dx, dscale, doffset. */
export const BATCH_NORM_TRAINING_GRAD = 'OnednnBatchNormTrainingGrad';

/** The data of a per-channel vector of exactly `channels` floats, null when absent, or 'bad'. */
function channelVector(backend: OnednnBackend, info: TensorInfo | undefined, channels: number): Float32Array | null | 'bad' {
  if (info === undefined || info === null) return null;
  const data = float32Data(backend, info);
  return data !== null && data.length === channels ? data : 'bad';
}

function required(backend: OnednnBackend, info: TensorInfo | undefined, channels: number, name: string): Float32Array {
  const data = channelVector(backend, info, channels);
  if (data === null || data === 'bad') throw new TypeError(`${name} must be a float32 vector of ${channels} values`);
  return data;
}

const fusedBatchNormFallback = () => cpuKernel(FusedBatchNorm);

const fusedBatchNorm: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { x, mean, variance, offset, scale } = args.inputs;
  const xData = float32Data(backend, x);
  const channels = x?.shape[x.shape.length - 1] ?? 0;
  const vectors = [mean, variance, offset, scale].map((t) => channelVector(backend, t, channels));
  const [meanData, varianceData, offsetData, scaleData] = vectors;
  if (xData === null || xData.length === 0 || channels === 0 || vectors.includes('bad') || meanData === null || varianceData === null) {
    return runCpu(fusedBatchNormFallback(), args);
  }
  const epsilon = (args.attrs?.varianceEpsilon as number | undefined) ?? 0.001;
  const y = backend.allocateFloat32(xData.length);
  backend.addon.batchNormApply(
    xData,
    meanData as Float32Array,
    varianceData as Float32Array,
    scaleData as Float32Array | null,
    offsetData as Float32Array | null,
    epsilon,
    channels,
    y,
  );
  return backend.makeNativeOutput(y, x!.shape.slice());
};

const batchNormTraining: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { x, scale, offset } = args.inputs as { x: TensorInfo; scale: TensorInfo; offset: TensorInfo };
  const channels = x.shape[x.shape.length - 1];
  const xData = float32Data(backend, x);
  if (xData === null || xData.length === 0) throw new TypeError('batchNormTraining needs a non-empty float32 x');
  const epsilon = args.attrs?.epsilon as number;
  const relu = args.attrs?.relu === true;
  const y = backend.allocateFloat32(xData.length);
  const mean = backend.allocateFloat32(channels);
  const variance = backend.allocateFloat32(channels);
  backend.addon.batchNormTrainingForward(
    xData,
    required(backend, scale, channels, 'scale'),
    required(backend, offset, channels, 'offset'),
    epsilon,
    channels,
    relu,
    y,
    mean,
    variance,
  );
  return [backend.makeNativeOutput(y, x.shape.slice()), backend.makeNativeOutput(mean, [channels]), backend.makeNativeOutput(variance, [channels])];
};

const batchNormTrainingGrad: KernelFunc = (rawArgs) => {
  const args = rawArgs as unknown as KernelArgs;
  const { backend } = args;
  const { dy, x, y, scale, mean, variance, dmean, dvariance } = args.inputs;
  const channels = x!.shape[x!.shape.length - 1];
  const xData = float32Data(backend, x);
  const dyData = float32Data(backend, dy);
  if (xData === null || dyData === null || dyData.length !== xData.length) throw new TypeError('batchNormTrainingGrad needs float32 x and dy of one shape');
  const relu = args.attrs?.relu === true;
  const yData = relu ? float32Data(backend, y) : null;
  if (relu && yData === null) throw new TypeError('batchNormTrainingGrad with relu needs the forward output y');
  const dx = backend.allocateFloat32(xData.length);
  const dscale = backend.allocateFloat32(channels);
  const doffset = backend.allocateFloat32(channels);
  const optional = (t: TensorInfo | undefined, name: string) => (t === undefined ? null : required(backend, t, channels, name));
  backend.addon.batchNormTrainingBackward(
    xData,
    dyData,
    yData,
    required(backend, scale, channels, 'scale'),
    required(backend, mean, channels, 'mean'),
    required(backend, variance, channels, 'variance'),
    optional(dmean, 'dmean'),
    optional(dvariance, 'dvariance'),
    args.attrs?.epsilon as number,
    channels,
    dx,
    dscale,
    doffset,
  );
  return [backend.makeNativeOutput(dx, x!.shape.slice()), backend.makeNativeOutput(dscale, [channels]), backend.makeNativeOutput(doffset, [channels])];
};

/** The batch-norm kernels for backend `backendName`. */
export function batchNormKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: FusedBatchNorm, backendName, kernelFunc: fusedBatchNorm },
    { kernelName: BATCH_NORM_TRAINING, backendName, kernelFunc: batchNormTraining },
    { kernelName: BATCH_NORM_TRAINING_GRAD, backendName, kernelFunc: batchNormTrainingGrad },
  ];
}
