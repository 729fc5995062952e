/**
 * copyWasmTensorInto (shared/backend/wasm-kernels/heap-copy.ts): the values dataSync would
 * give, written in place, for float32 and int32 tensors on wasm; false (nothing written) for
 * tensors held by another backend; RangeError when they do not fit.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { seededValues } from './helpers/seeded-values.ts';
import { copyWasmTensorInto } from '../shared/backend/wasm-kernels/heap-copy.ts';
import { copyTensorInto } from '../shared/backend/copy-tensor-into.ts';

test.before(async () => {
  const selected = await selectBackend('wasm');
  if (selected.name !== 'wasm') throw new Error(`expected wasm, got ${selected.name}`);
});

test.serial('float32 and int32 tensors land at their offsets with the values dataSync gives', async (t) => {
  await tf.setBackend('wasm');
  const floats = tf.tensor(seededValues(37, 3, 10), [37]);
  const ints = tf.tensor([5, -7, 123456, 0], [2, 2], 'int32');
  // A tensor made after others sits deeper in the heap; a computed one checks kernel outputs.
  const computed = tf.mul(floats, 2);
  const out = new Float32Array(100).fill(-1);
  t.true(copyWasmTensorInto(floats, out, 3));
  t.true(copyWasmTensorInto(ints, out, 40));
  t.true(copyWasmTensorInto(computed, out, 50));
  t.deepEqual(Array.from(out.subarray(3, 40)), Array.from(floats.dataSync()));
  t.deepEqual(Array.from(out.subarray(40, 44)), [5, -7, 123456, 0]);
  t.deepEqual(Array.from(out.subarray(50, 87)), Array.from(computed.dataSync()));
  t.deepEqual(Array.from(out.subarray(0, 3)), [-1, -1, -1]);
  t.deepEqual(Array.from(out.subarray(87)), new Array(13).fill(-1));
  tf.dispose([floats, ints, computed]);
});

test.serial('a tensor on another backend is left to the caller', async (t) => {
  await tf.setBackend('cpu');
  const onCpu = tf.tensor([1, 2, 3]);
  const out = new Float32Array(3);
  t.false(copyWasmTensorInto(onCpu, out));
  t.deepEqual(Array.from(out), [0, 0, 0]);
  onCpu.dispose();
  await tf.setBackend('wasm');
});

test.serial('values that do not fit are a RangeError', async (t) => {
  await tf.setBackend('wasm');
  const x = tf.tensor([1, 2, 3, 4]);
  t.throws(() => copyWasmTensorInto(x, new Float32Array(5), 2), { instanceOf: RangeError });
  x.dispose();
});

test.serial('copyTensorInto reads wasm tensors from the heap, not through readSync, and cpu ones through dataSync', async (t) => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { readSync: (...args: unknown[]) => unknown };
  const readSync = backend.readSync;
  let reads = 0;
  backend.readSync = function (...args: unknown[]) {
    reads += 1;
    return readSync.apply(this, args);
  };
  t.teardown(() => {
    backend.readSync = readSync;
  });
  const x = tf.tensor(seededValues(50, 5, 11), [5, 10]);
  const out = new Float32Array(60);
  copyTensorInto(x, out, 10);
  t.is(reads, 0);
  t.deepEqual(Array.from(out.subarray(10)), Array.from(x.dataSync()));
  t.throws(() => copyTensorInto(x, out, 11), { instanceOf: RangeError });
  x.dispose();

  await tf.setBackend('cpu');
  const onCpu = tf.tensor([4, 5, 6]);
  copyTensorInto(onCpu, out, 0);
  t.deepEqual(Array.from(out.subarray(0, 3)), [4, 5, 6]);
  onCpu.dispose();
  await tf.setBackend('wasm');
});
