/**
 * Bilinear resize of grey uint8 images to float32 in [0, 1], matching PyTorch's
 * `F.interpolate(x / 255, size, mode='bilinear', align_corners=False)` (no antialias):
 * half-pixel centres, `src = scale * (dst + 0.5) - 0.5` with `scale = in / out`, clamped at 0;
 * the upper neighbour is clamped to the last pixel. The weights reproduce PyTorch's CPU
 * kernel bit for bit: `scale` is float32, the source coordinate is formed in float64
 * (`scale * (i + 0.5) - 0.5`, double literals in PyTorch 1.13's UpSample.h), and
 * `lambda1 = float32(src - floor(src))`, `lambda0 = float32(1 - lambda1)`. This matters: with
 * the coordinate rounded to float32 instead (near 27 its ulp is 2e-6), weights and outputs
 * move by up to 1.6e-6. The pixels are then resampled separably in float64, rows first then
 * columns (PyTorch's order), and rounded once to float32.
 */

/** Per-axis sampling table: output i reads inputs `index0[i]` and `index1[i]`. */
export interface AxisSampling {
  inSize: number;
  outSize: number;
  index0: Int32Array;
  index1: Int32Array;
  weight0: Float64Array;
  weight1: Float64Array;
}

/** Everything needed to resize one `inHeight x inWidth` image to `outHeight x outWidth`. */
export interface ResizePlan {
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  rows: AxisSampling;
  cols: AxisSampling;
  /** Row-resampled intermediate, `inHeight x outWidth`; reused by every call. */
  scratch: Float64Array;
}

const fround = Math.fround;
const INV_255 = 1 / 255;
/** `fround(v / 255)` for every byte: the exact result of PyTorch's float32 `x / 255`. */
const UNIT_LUT = Float32Array.from({ length: 256 }, (_, v) => v / 255);
const axisCache = new Map<string, AxisSampling>();
const planCache = new Map<string, ResizePlan>();

/** Sampling table for one axis, computed once per (inSize, outSize) and cached. */
export function bilinearAxisSampling(inSize: number, outSize: number): AxisSampling {
  checkSize(inSize, 'input size');
  checkSize(outSize, 'output size');
  const key = `${inSize}>${outSize}`;
  let axis = axisCache.get(key);
  if (axis === undefined) {
    axis = computeAxisSampling(inSize, outSize);
    axisCache.set(key, axis);
  }
  return axis;
}

/** The cached plan for resizing `inHeight x inWidth` images to `outHeight x outWidth`. */
export function bilinearResizePlan(inHeight: number, inWidth: number, outHeight: number, outWidth: number = outHeight): ResizePlan {
  const key = `${inHeight}x${inWidth}>${outHeight}x${outWidth}`;
  let plan = planCache.get(key);
  if (plan === undefined) {
    const rows = bilinearAxisSampling(inHeight, outHeight);
    const cols = bilinearAxisSampling(inWidth, outWidth);
    plan = { inHeight, inWidth, outHeight, outWidth, rows, cols, scratch: new Float64Array(inHeight * outWidth) };
    planCache.set(key, plan);
  }
  return plan;
}

/**
 * Resizes one image: reads `inHeight * inWidth` bytes of `src` from `srcOffset`, writes
 * `outHeight * outWidth` floats in [0, 1] to `out` from `outOffset`. Same size in and out is
 * an exact copy of `pixel / 255` (as float32).
 */
export function resizeGreyImage(plan: ResizePlan, src: Uint8Array, srcOffset: number, out: Float32Array, outOffset: number): void {
  if (plan.inHeight === plan.outHeight && plan.inWidth === plan.outWidth) {
    copyScaled(src, srcOffset, out, outOffset, plan.inHeight * plan.inWidth);
    return;
  }
  resampleRows(plan, src, srcOffset);
  resampleColumns(plan, out, outOffset);
}

/**
 * Resizes `count` square-or-not images stored back to back in `images` to `outSize x outSize`,
 * into `out` (allocated when omitted; must hold `count * outSize * outSize` floats). Returns
 * the output, `[count, outSize, outSize]` row-major.
 */
export function resizeGreyImages(images: Uint8Array, count: number, inHeight: number, inWidth: number, outSize: number, out?: Float32Array): Float32Array {
  const plan = bilinearResizePlan(inHeight, inWidth, outSize, outSize);
  const inPixels = inHeight * inWidth;
  const outPixels = outSize * outSize;
  if (images.length < count * inPixels)
    throw new RangeError(`resizeGreyImages: ${images.length} bytes hold fewer than ${count} images of ${inHeight}x${inWidth}`);
  const target = out ?? new Float32Array(count * outPixels);
  if (target.length < count * outPixels) throw new RangeError(`resizeGreyImages: output holds ${target.length} floats, needs ${count * outPixels}`);
  for (let n = 0; n < count; n += 1) resizeGreyImage(plan, images, n * inPixels, target, n * outPixels);
  return target;
}

function computeAxisSampling(inSize: number, outSize: number): AxisSampling {
  const axis: AxisSampling = {
    inSize,
    outSize,
    index0: new Int32Array(outSize),
    index1: new Int32Array(outSize),
    weight0: new Float64Array(outSize),
    weight1: new Float64Array(outSize),
  };
  const scale = fround(inSize / outSize);
  for (let i = 0; i < outSize; i += 1) {
    const src = Math.max(scale * (i + 0.5) - 0.5, 0);
    const i0 = Math.floor(src);
    const lambda1 = fround(src - i0);
    axis.index0[i] = i0;
    axis.index1[i] = i0 < inSize - 1 ? i0 + 1 : i0;
    axis.weight1[i] = lambda1;
    axis.weight0[i] = fround(1 - lambda1);
  }
  return axis;
}

function resampleRows(plan: ResizePlan, src: Uint8Array, srcOffset: number): void {
  const { inHeight, inWidth, outWidth, scratch } = plan;
  const { index0, index1, weight0, weight1 } = plan.cols;
  for (let y = 0; y < inHeight; y += 1) {
    const rowStart = srcOffset + y * inWidth;
    const scratchRow = y * outWidth;
    for (let x = 0; x < outWidth; x += 1) {
      scratch[scratchRow + x] = weight0[x] * src[rowStart + index0[x]] + weight1[x] * src[rowStart + index1[x]];
    }
  }
}

function resampleColumns(plan: ResizePlan, out: Float32Array, outOffset: number): void {
  const { outHeight, outWidth, scratch } = plan;
  const { index0, index1, weight0, weight1 } = plan.rows;
  for (let y = 0; y < outHeight; y += 1) {
    const top = index0[y] * outWidth;
    const bottom = index1[y] * outWidth;
    const wTop = weight0[y] * INV_255;
    const wBottom = weight1[y] * INV_255;
    const outRow = outOffset + y * outWidth;
    for (let x = 0; x < outWidth; x += 1) {
      out[outRow + x] = wTop * scratch[top + x] + wBottom * scratch[bottom + x];
    }
  }
}

function copyScaled(src: Uint8Array, srcOffset: number, out: Float32Array, outOffset: number, length: number): void {
  for (let i = 0; i < length; i += 1) out[outOffset + i] = UNIT_LUT[src[srcOffset + i]];
}

function checkSize(size: number, what: string): void {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`bilinear resize: ${what} must be a positive integer, got ${size}`);
}
