import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats } from './wasm-kernel-call.ts';

/**
 * Sum (or mean) of a float32 tensor over a run of adjacent axes that does not end at the
 * innermost one, such as [0, 1, 2] of an NHWC activation (batch-norm statistics and their
 * gradients) or [1, 2] (global average pooling). The stock wasm Sum and Mean transpose the
 * reduced axes innermost first, a full copy of the tensor; read as [outer, rows, inner], the
 * sum is a running row add with the inner axis contiguous. Accumulates in float64 as the
 * cpu backend does. Returns null where this shape of reduction does not apply, for the caller
 * to use the stock kernel.
 */
export function reduceAxisBlock(backend: BackendWasm, x: TensorInfo, axis: number | number[], keepDims: boolean, average: boolean): TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const first = axes[0];
  const last = axes[axes.length - 1];
  if (first === undefined || last === undefined || last - first !== axes.length - 1 || last === x.shape.length - 1) return null;

  const outer = util.sizeFromShape(x.shape.slice(0, first));
  const rows = util.sizeFromShape(x.shape.slice(first, last + 1));
  const inner = util.sizeFromShape(x.shape.slice(last + 1));
  const reduced = (i: number) => i >= first && i <= last;
  const outShape = keepDims ? x.shape.map((size, i) => (reduced(i) ? 1 : size)) : x.shape.filter((_, i) => !reduced(i));
  const out = backend.makeOutput(outShape, 'float32');
  const heap = heapFloats(backend);
  const xBase = heapFloatIndex(backend, x);
  const outBase = heapFloatIndex(backend, out);
  const acc = new Float64Array(inner);
  const scale = average && rows > 0 ? 1 / rows : 1;
  for (let o = 0; o < outer; o++) {
    sumRows(heap, xBase + o * rows * inner, rows, inner, acc);
    for (let i = 0; i < inner; i++) heap[outBase + o * inner + i] = acc[i] * scale;
  }
  return out;
}

/** Rows summed per sweep over the columns: 256 rows of 64 floats stay in the L2 cache. */
const ROWS_PER_CHUNK = 256;

/**
 * acc[i] = sum over r of heap[from + r * inner + i], in float64. Four columns at a time in
 * locals, which V8 keeps in registers (about 1.2 ns per element against 4 with the
 * accumulator array), over chunks of rows so that the column sweeps reread cached lines.
 */
function sumRows(heap: Float32Array, from: number, rows: number, inner: number, acc: Float64Array): void {
  acc.fill(0);
  const blocked = inner - (inner % 4);
  for (let first = 0; first < rows; first += ROWS_PER_CHUNK) {
    const last = Math.min(first + ROWS_PER_CHUNK, rows);
    for (let i = 0; i < blocked; i += 4) {
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let r = first, at = from + first * inner + i; r < last; r++, at += inner) {
        s0 += heap[at];
        s1 += heap[at + 1];
        s2 += heap[at + 2];
        s3 += heap[at + 3];
      }
      acc[i] += s0;
      acc[i + 1] += s1;
      acc[i + 2] += s2;
      acc[i + 3] += s3;
    }
    for (let i = blocked; i < inner; i++) {
      let sum = 0;
      for (let r = first, at = from + first * inner + i; r < last; r++, at += inner) sum += heap[at];
      acc[i] += sum;
    }
  }
}
