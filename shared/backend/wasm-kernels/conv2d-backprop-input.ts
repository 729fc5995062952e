import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runStockConv2D } from './stock-conv2d.ts';
import { conv2dBackpropInputCol2im } from './conv2d-backprop-input-col2im.ts';
import { cachedCroppedFilter, effectiveTaps } from './effective-taps.ts';
import { inputGradientBySwappedRoles, prefersSwappedRoles } from './input-gradient-by-swapped-roles.ts';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/**
 * Below this many input channels the col2im path is used. Measured at the ResNet stem (7x7,
 * stride 2, 1 channel, batch 32, 96x96): phases 181 ms, col2im 30 ms; at 64 channels the
 * phases are faster, since col2im's JS scatter grows with kernel area times channels.
 */
const FEW_INPUT_CHANNELS = 16;

/**
 * One output phase of a strided transposed convolution along one spatial axis: the dx rows
 * `phase, phase + stride, ...` receive contributions only from the filter taps
 * `firstTap, firstTap + stride, ...`, and those rows form a stride-1 convolution of dy with
 * that subset of taps, flipped.
 */
interface AxisPhase {
  phase: number;
  /** How many dx rows (or columns) belong to this phase. */
  rows: number;
  firstTap: number;
  taps: number;
  /** Non-negative padding handed to Conv2D. */
  padBefore: number;
  padAfter: number;
  /** Row of the phase's Conv2D output that holds dx row `phase`. */
  offset: number;
}

/**
 * Splits one axis into `stride` phases. For dx row i = stride*a + phase, the taps k with
 * i + pad - k divisible by stride are k = stride*j + firstTap and they read dy row
 * a + q - j, q = (phase + pad - firstTap) / stride; with the taps flipped that is a stride-1
 * correlation padded by taps-1-q before. Negative padding is clamped to 0 and the extra
 * output rows skipped through `offset`.
 */
function axisPhases(inSize: number, outSize: number, kernel: number, stride: number, pad: number): AxisPhase[] {
  const phases: AxisPhase[] = [];
  for (let phase = 0; phase < Math.min(stride, inSize); phase++) {
    const firstTap = (phase + pad) % stride;
    const taps = firstTap < kernel ? Math.ceil((kernel - firstTap) / stride) : 0;
    const q = (phase + pad - firstTap) / stride;
    const rows = Math.ceil((inSize - phase) / stride);
    const exactBefore = taps - 1 - q;
    const exactAfter = rows - outSize - exactBefore + taps - 1;
    const padBefore = Math.max(exactBefore, 0);
    phases.push({ phase, rows, firstTap, taps, padBefore, padAfter: Math.max(exactAfter, 0), offset: padBefore - exactBefore });
  }
  return phases;
}

/**
 * out[co, ci] = w[ci, co] for one tap's block. Plain row-by-row: a block (at most 512 x 512
 * floats) stays in cache, about 1.3 ns a value, where the wasm Transpose of the whole filter
 * to [kh, kw, co, ci] took 9 ns a value (a tenth of the input gradient of ResNet's 512-channel convs).
 */
function transposeBlock(heap: Float32Array, from: number, to: number, inChannels: number, outChannels: number): void {
  for (let ci = 0; ci < inChannels; ci++) {
    const row = from + ci * outChannels;
    for (let co = 0; co < outChannels; co++) heap[to + co * inChannels + ci] = heap[row + co]!;
  }
}

/**
 * The taps of one phase, flipped and with in and out channels swapped: a new [th, tw, co, ci]
 * filter from the [kh, kw, ci, co] one.
 */
function phaseFilter(
  backend: BackendWasm,
  filter: TensorInfo,
  kernelW: number,
  strideH: number,
  strideW: number,
  rowPhase: AxisPhase,
  colPhase: AxisPhase,
): TensorInfo {
  const [, , ci, co] = filter.shape as [number, number, number, number];
  const block = co * ci;
  const out = backend.makeOutput([rowPhase.taps, colPhase.taps, co, ci], 'float32');
  const heap = heapFloats(backend);
  const src = heapFloatIndex(backend, filter);
  const dst = heapFloatIndex(backend, out);
  for (let t = 0; t < rowPhase.taps; t++) {
    const kh = strideH * (rowPhase.taps - 1 - t) + rowPhase.firstTap;
    for (let u = 0; u < colPhase.taps; u++) {
      const kw = strideW * (colPhase.taps - 1 - u) + colPhase.firstTap;
      transposeBlock(heap, src + (kh * kernelW + kw) * block, dst + (t * colPhase.taps + u) * block, ci, co);
    }
  }
  return out;
}

/** copyWithin costs a call into the runtime; a plain loop is faster for a few floats. */
function copyPixel(heap: Float32Array, to: number, from: number, channels: number): void {
  if (channels >= 32) {
    heap.copyWithin(to, from, from + channels);
    return;
  }
  for (let c = 0; c < channels; c++) heap[to + c] = heap[from + c];
}

/** Writes a phase's Conv2D output into every stride-th pixel of dx. */
function scatterPhase(
  backend: BackendWasm,
  dx: TensorInfo,
  part: TensorInfo,
  strideH: number,
  strideW: number,
  rowPhase: AxisPhase,
  colPhase: AxisPhase,
): void {
  const [batch, height, width, channels] = dx.shape;
  const [, partHeight, partWidth] = part.shape;
  const heap = heapFloats(backend);
  const dxBase = heapFloatIndex(backend, dx);
  const partBase = heapFloatIndex(backend, part);
  for (let n = 0; n < batch; n++) {
    for (let a = 0; a < rowPhase.rows; a++) {
      let to = dxBase + ((n * height + strideH * a + rowPhase.phase) * width + colPhase.phase) * channels;
      let from = partBase + ((n * partHeight + a + rowPhase.offset) * partWidth + colPhase.offset) * channels;
      for (let b = 0; b < colPhase.rows; b++) {
        copyPixel(heap, to, from, channels);
        to += strideW * channels;
        from += channels;
      }
    }
  }
}

interface PhaseOutput {
  out: TensorInfo;
  rowPhase: AxisPhase;
  colPhase: AxisPhase;
}

/** One stride-1 Conv2D per phase that has taps; phases without taps get no contribution. */
function phaseConvolutions(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): PhaseOutput[] {
  const { strideHeight, strideWidth, filterWidth } = info;
  const rowPhases = axisPhases(info.inHeight, info.outHeight, info.filterHeight, strideHeight, info.padInfo.top);
  const colPhases = axisPhases(info.inWidth, info.outWidth, filterWidth, strideWidth, info.padInfo.left);
  const outputs: PhaseOutput[] = [];
  for (const rowPhase of rowPhases) {
    for (const colPhase of colPhases) {
      if (rowPhase.taps === 0 || colPhase.taps === 0) continue;
      const phaseW = phaseFilter(backend, filter, filterWidth, strideHeight, strideWidth, rowPhase, colPhase);
      const out = runStockConv2D(
        backend,
        { x: dy, filter: phaseW },
        {
          strides: 1,
          dilations: 1,
          pad: [
            [0, 0],
            [rowPhase.padBefore, rowPhase.padAfter],
            [colPhase.padBefore, colPhase.padAfter],
            [0, 0],
          ],
          dataFormat: 'NHWC',
        },
      );
      backend.disposeData(phaseW.dataId);
      outputs.push({ out, rowPhase, colPhase });
    }
  }
  return outputs;
}

/** A single phase that lines up with dx (stride 1, ordinary padding) already is dx. */
function isWholeInput(outputs: PhaseOutput[], info: backend_util.Conv2DInfo): boolean {
  const [only] = outputs;
  return (
    outputs.length === 1 &&
    only !== undefined &&
    only.rowPhase.offset === 0 &&
    only.colPhase.offset === 0 &&
    only.out.shape[1] === info.inHeight &&
    only.out.shape[2] === info.inWidth
  );
}

/**
 * For stride s the gradient splits into s*s phases, each a Conv2D of dy with a flipped subset
 * of the taps (in and out channels swapped), interleaved into dx. This does the same
 * multiply-adds as the direct formula, where zero-inserting dy would do s*s times as many
 * (measured 3x slower at ResNet's stride-2 layers).
 */
function backpropInputByPhases(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const outputs = phaseConvolutions(backend, dy, filter, info);
  if (isWholeInput(outputs, info)) return outputs[0].out;
  const dx = backend.makeOutput(info.inShape, 'float32');
  const covered = outputs.reduce((sum, { rowPhase, colPhase }) => sum + rowPhase.rows * colPhase.rows, 0);
  if (covered < info.inHeight * info.inWidth) backend.typedArrayFromHeap(dx).fill(0);
  for (const { out, rowPhase, colPhase } of outputs) {
    scatterPhase(backend, dx, out, info.strideHeight, info.strideWidth, rowPhase, colPhase);
    backend.disposeData(out.dataId);
  }
  return dx;
}

/** The input gradient by whichever route suits the shapes; all taps meet real pixels. */
function inputGradient(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  if (info.inChannels < FEW_INPUT_CHANNELS) return conv2dBackpropInputCol2im(backend, dy, filter, info);
  if (prefersSwappedRoles(info)) return inputGradientBySwappedRoles(backend, dy, filter, info);
  return backpropInputByPhases(backend, dy, filter, info);
}

/**
 * Input gradient of an NHWC conv2d built from the backend's own XNNPACK Conv2D. The stock
 * wasm kernel is a scalar loop that took two thirds of a training step (8.4 s of ResNet-18's
 * backward pass at 96x96, batch 32). Taps that only ever read padding (small images; see
 * effective-taps.ts) are left out first, with the same cropped filter as the forward conv.
 */
function conv2dBackpropInput(args: { inputs: Conv2DBackpropInputInputs; backend: BackendWasm; attrs: Conv2DBackpropInputAttrs }): TensorInfo {
  const { backend } = args;
  const dy = args.inputs.dy as TensorInfo;
  const filter = args.inputs.filter as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs;
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropInput supports NHWC only');
  const window = effectiveTaps(info);
  if (window === null) return inputGradient(backend, dy, filter, info);
  const cropped = cachedCroppedFilter(backend, filter, window);
  const croppedInfo = backend_util.computeConv2DInfo(inputShape, cropped.shape as [number, number, number, number], strides, 1, window.pad);
  return inputGradient(backend, dy, cropped, croppedInfo);
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as KernelFunc,
};
