/**
 * Copies a tensor's values into a caller's Float32Array, as the trainer flattens gradients into
 * one buffer every step. `tensor.dataSync()` costs the `onednn` backend a recyclable array and
 * the `wasm` backend a fresh copy of the values (HEAPU8.slice, then garbage): 80 ms of a
 * 460 ms wasm step at 28x28, batch 64. Those two read their storage directly
 * (onednn/copy-into.ts, wasm-kernels/heap-copy.ts); other backends go through dataSync.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { copyOnednnTensorInto } from './onednn/copy-into.ts';
import { copyWasmTensorInto } from './wasm-kernels/heap-copy.ts';

/** Writes `tensor`'s values (float32 or int32) into `out` starting at `offset`. */
export function copyTensorInto(tensor: tf.Tensor, out: Float32Array, offset = 0): void {
  if (offset < 0 || offset + tensor.size > out.length) throw new RangeError(`${tensor.size} values do not fit at offset ${offset} of ${out.length}`);
  if (copyOnednnTensorInto(tensor, out, offset) || copyWasmTensorInto(tensor, out, offset)) return;
  out.set(tensor.dataSync(), offset);
}
