/**
 * The bridge to the PyTorch reference (test/reference/resnet18_reference.py): tensor bundles
 * on disk in both directions, TensorFlow.js <-> PyTorch weight layouts, running the script, and
 * the error measure the cross-checks assert on.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** Debian's interpreter: the one with python3-torch (the `python3` on PATH has no torch); FMNIST_PYTHON names another (a machine whose torch lives elsewhere). */
export const PYTHON = process.env.FMNIST_PYTHON || '/usr/bin/python3';

/** The reference model and run; bench/pytorch_step.py imports its model from here too. */
export const RESNET18_REFERENCE = fileURLToPath(new URL('../reference/resnet18_reference.py', import.meta.url));

/** A row-major tensor; values are float32 or float64 depending on the bundle it came from. */
export interface BundleTensor {
  shape: number[];
  values: Float32Array | Float64Array;
}

interface BundleManifest {
  dtype: 'float32' | 'float64';
  tensors: { name: string; shape: number[]; offset: number }[];
}

/** Writes `<base>.json` and `<base>.bin` (little-endian float32) in the reference's format. */
export async function writeBundle(base: string, tensors: Map<string, BundleTensor>): Promise<void> {
  const total = [...tensors.values()].reduce((sum, t) => sum + t.values.length, 0);
  const data = new Float32Array(total);
  const manifest: BundleManifest = { dtype: 'float32', tensors: [] };
  let offset = 0;
  for (const [name, tensor] of tensors) {
    if (product(tensor.shape) !== tensor.values.length)
      throw new RangeError(`${name}: shape ${tensor.shape.join(',')} does not hold ${tensor.values.length} values`);
    data.set(tensor.values, offset);
    manifest.tensors.push({ name, shape: tensor.shape, offset });
    offset += tensor.values.length;
  }
  await writeFile(`${base}.bin`, new Uint8Array(data.buffer));
  await writeFile(`${base}.json`, JSON.stringify(manifest));
}

/** Reads a bundle written by either side. */
export async function readBundle(base: string): Promise<Map<string, BundleTensor>> {
  const manifest = JSON.parse(await readFile(`${base}.json`, 'utf8')) as BundleManifest;
  const bytes = await readFile(`${base}.bin`);
  // Copy into a fresh, aligned buffer: Node's file buffers may start at any byte offset.
  const buffer = new Uint8Array(bytes).buffer;
  const all = manifest.dtype === 'float64' ? new Float64Array(buffer) : new Float32Array(buffer);
  const out = new Map<string, BundleTensor>();
  for (const { name, shape, offset } of manifest.tensors) {
    out.set(name, { shape, values: all.subarray(offset, offset + product(shape)) });
  }
  return out;
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The same tensor in PyTorch's layout: convolution kernels HWIO -> OIHW, the dense kernel
 * [in, out] -> [out, in]; biases, BN parameters and running statistics are unchanged.
 */
export function toTorchLayout(tensor: BundleTensor): BundleTensor {
  if (tensor.shape.length === 4) return transposeHwioToOihw(tensor);
  if (tensor.shape.length === 2) return transpose2d(tensor);
  return tensor;
}

/** The inverse of {@link toTorchLayout}: `tensor` in PyTorch's layout, `shape` our shape for it. */
export function fromTorchLayout(tensor: BundleTensor, shape: number[]): BundleTensor {
  if (torchShapeOf(shape).join() !== tensor.shape.join()) throw new RangeError(`PyTorch shape ${tensor.shape.join(',')} does not fit ours ${shape.join(',')}`);
  if (shape.length === 4) return transposeOihwToHwio(tensor);
  if (shape.length === 2) return transpose2d(tensor);
  return tensor;
}

/** PyTorch's shape for a tensor of our `shape`. */
export function torchShapeOf(shape: number[]): number[] {
  if (shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (shape.length === 2) return [shape[1], shape[0]];
  return shape;
}

function transposeOihwToHwio({ shape, values }: BundleTensor): BundleTensor {
  const [o, i, h, w] = shape as [number, number, number, number];
  const out = new (values.constructor as Float32ArrayConstructor)(values.length);
  for (let k = 0; k < o; k += 1) {
    for (let c = 0; c < i; c += 1) {
      for (let y = 0; y < h; y += 1) {
        const from = ((k * i + c) * h + y) * w;
        for (let x = 0; x < w; x += 1) out[((y * w + x) * i + c) * o + k] = values[from + x]!;
      }
    }
  }
  return { shape: [h, w, i, o], values: out };
}

function transposeHwioToOihw({ shape, values }: BundleTensor): BundleTensor {
  const [h, w, i, o] = shape as [number, number, number, number];
  const out = new (values.constructor as Float32ArrayConstructor)(values.length);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      for (let c = 0; c < i; c += 1) {
        const from = ((y * w + x) * i + c) * o;
        for (let k = 0; k < o; k += 1) out[((k * i + c) * h + y) * w + x] = values[from + k]!;
      }
    }
  }
  return { shape: [o, i, h, w], values: out };
}

function transpose2d({ shape, values }: BundleTensor): BundleTensor {
  const [rows, cols] = shape as [number, number];
  const out = new (values.constructor as Float32ArrayConstructor)(values.length);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) out[c * rows + r] = values[r * cols + c]!;
  }
  return { shape: [cols, rows], values: out };
}

/** Runs `/usr/bin/python3 script ...args`; a failure carries the script's stderr. */
export async function runPython(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(PYTHON, [script, ...args], { env, maxBuffer: 16 << 20 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${PYTHON} ${script} failed: ${stderr.trim().split('\n').slice(-5).join('\n')}`, { cause: error });
  }
}

/**
 * max |ours - theirs| / max |theirs|: the largest difference relative to the tensor's own
 * scale. Element-wise relative error would blow up on entries that are near zero by chance,
 * which say nothing about whether the computation agrees.
 */
export function relativeMaxError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  const scale = maxAbs(theirs);
  const diff = maxAbsDifference(ours, theirs);
  return scale === 0 ? diff : diff / scale;
}

/** max |a - b|. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** max |values|. */
export function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i += 1) max = Math.max(max, Math.abs(values[i]));
  return max;
}
