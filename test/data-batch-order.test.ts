import test from 'ava';
import { epochPermutation, globalBatches, rankSliceBounds, sliceForRank } from '../shared/data/batch-order.ts';

test('an epoch order is a permutation of every sample', (t) => {
  const order = epochPermutation(42, 0, 60_000);
  t.is(order.length, 60_000);
  const seen = new Uint8Array(60_000);
  for (const index of order) seen[index] += 1;
  t.true(seen.every((times) => times === 1));
  t.deepEqual(Array.from(epochPermutation(1, 0, 0)), []);
  t.deepEqual(Array.from(epochPermutation(1, 0, 1)), [0]);
});

test('the order matches the C reference of the documented algorithm', (t) => {
  // From an independent C implementation (deriveSeed + xoshiro128** + Fisher-Yates).
  t.deepEqual(Array.from(epochPermutation(42, 0, 10)), [4, 8, 3, 7, 5, 6, 1, 9, 0, 2]);
  t.deepEqual(Array.from(epochPermutation(7, 3, 10)), [1, 7, 5, 4, 0, 9, 2, 6, 3, 8]);
});

test('the order depends on (seed, epoch) alone', (t) => {
  const epoch1 = epochPermutation(5, 1, 1000);
  epochPermutation(5, 0, 1000);
  globalBatches(9, 4, 500, 32);
  t.deepEqual(epochPermutation(5, 1, 1000), epoch1);
  t.notDeepEqual(epochPermutation(5, 2, 1000), epoch1);
  t.notDeepEqual(epochPermutation(6, 1, 1000), epoch1);
});

test('global batches cover the permutation in order, the last one partial', (t) => {
  const batches = globalBatches(3, 2, 1000, 256);
  t.deepEqual(
    batches.map((batch) => batch.length),
    [256, 256, 256, 232],
  );
  const joined = batches.flatMap((batch) => Array.from(batch));
  t.deepEqual(joined, Array.from(epochPermutation(3, 2, 1000)));
  t.deepEqual(
    globalBatches(3, 2, 512, 256).map((batch) => batch.length),
    [256, 256],
  );
  t.deepEqual(globalBatches(3, 2, 0, 256), []);
  t.throws(() => globalBatches(3, 2, 10, 0), { instanceOf: RangeError });
});

test('rank slices cover a batch exactly once for 1 to 4 workers', (t) => {
  const batch = epochPermutation(8, 0, 300);
  for (let worldSize = 1; worldSize <= 4; worldSize += 1) {
    for (const length of [0, 1, 2, 3, 5, 255, 256, 257, 300]) {
      const global = batch.subarray(0, length);
      const slices = Array.from({ length: worldSize }, (_, rank) => sliceForRank(global, rank, worldSize));
      const label = `N=${worldSize}, batch ${length}`;
      t.deepEqual(
        slices.flatMap((slice) => Array.from(slice)),
        Array.from(global),
        label,
      );
      const sizes = slices.map((slice) => slice.length);
      t.true(Math.max(...sizes) - Math.min(...sizes) <= 1, label);
      t.deepEqual(
        sizes,
        [...sizes].sort((a, b) => b - a),
        `${label}: earlier ranks take the extra`,
      );
    }
  }
});

test('rank slice bounds match a hand-worked split and reject bad ranks', (t) => {
  t.deepEqual(
    [0, 1, 2].map((rank) => rankSliceBounds(10, rank, 3)),
    [
      { start: 0, end: 4 },
      { start: 4, end: 7 },
      { start: 7, end: 10 },
    ],
  );
  t.deepEqual(rankSliceBounds(2, 3, 4), { start: 2, end: 2 });
  t.throws(() => rankSliceBounds(10, 3, 3), { instanceOf: RangeError });
  t.throws(() => rankSliceBounds(10, 0, 0), { instanceOf: RangeError });
});
