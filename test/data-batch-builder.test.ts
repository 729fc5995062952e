import test from 'ava';
import { buildBatch } from '../shared/data/batch-builder.ts';
import { resizeGreyImages } from '../shared/data/bilinear-resize.ts';
import { limitImageSet, loadFashionMnist, type ImageSet } from '../shared/data/fashion-mnist.ts';

let set: ImageSet;

test.before(async () => {
  set = limitImageSet((await loadFashionMnist({ env: {} })).test, 1000);
});

function imagesAt(indices: number[]): Uint8Array {
  const out = new Uint8Array(indices.length * 784);
  indices.forEach((index, k) => out.set(set.images.subarray(index * 784, (index + 1) * 784), k * 784));
  return out;
}

test('a batch holds the resized images and labels of its indices, in order', (t) => {
  const indices = [17, 0, 999, 17];
  const batch = buildBatch(set, Uint32Array.from(indices), 96);
  t.is(batch.x.length, 4 * 96 * 96);
  t.deepEqual(
    Array.from(batch.labels),
    indices.map((index) => set.labels[index]),
  );
  t.deepEqual(batch.x, resizeGreyImages(imagesAt(indices), 4, 28, 28, 96));
});

test('at size 28 a batch is the pixels / 255', (t) => {
  const batch = buildBatch(set, [3, 4], 28);
  t.deepEqual(
    Array.from(batch.x),
    Array.from(imagesAt([3, 4]), (v) => Math.fround(v / 255)),
  );
});

test('a reused output buffer serves a shorter last batch through views', (t) => {
  const out = { x: new Float32Array(8 * 32 * 32), labels: new Int32Array(8) };
  const full = buildBatch(set, [0, 1, 2, 3, 4, 5, 6, 7], 32, out);
  t.is(full.x.buffer, out.x.buffer);
  const last = buildBatch(set, [10, 11, 12], 32, out);
  t.is(last.x.length, 3 * 32 * 32);
  t.is(last.labels.length, 3);
  t.is(last.x.buffer, out.x.buffer);
  t.deepEqual(last.x, buildBatch(set, [10, 11, 12], 32).x);
  t.throws(() => buildBatch(set, new Array(9).fill(0), 32, out), { instanceOf: RangeError });
});

test('indices outside the set are rejected', (t) => {
  t.throws(() => buildBatch(set, [0, 1000], 28), { instanceOf: RangeError });
  t.throws(() => buildBatch(set, [-1], 28), { instanceOf: RangeError });
});
