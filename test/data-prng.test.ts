import test from 'ava';
import { deriveSeed, mix64, Prng, SeedStream, SplitMix64 } from '../shared/data/prng.ts';

// Known-answer vectors. SplitMix64's are the published ones (seed 0 and Vigna's 1234567);
// the xoshiro128**, deriveSeed values come from an independent C implementation of the
// algorithm as documented in prng.ts (Vigna's reference xoshiro128starstar.c + splitmix64.c).

test('SplitMix64 reproduces its published outputs', (t) => {
  const zero = new SplitMix64(0);
  t.deepEqual([zero.next(), zero.next(), zero.next()], [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  const vigna = new SplitMix64(1234567);
  t.deepEqual([vigna.next(), vigna.next(), vigna.next()], [6457827717110365317n, 3203168211198807973n, 9817491932198370423n]);
});

test('xoshiro128** first outputs match the C reference for three seeds', (t) => {
  const expected: Record<number, number[]> = {
    0: [3737715805, 2584255861, 2876756834, 3286328325, 1553311962, 1625202774],
    42: [1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222],
    [Number.MAX_SAFE_INTEGER]: [1233166643, 1287031142, 661813442, 2960669951, 2601079046, 1036114921],
  };
  for (const [seed, values] of Object.entries(expected)) {
    const rng = new Prng(Number(seed));
    t.deepEqual(
      values.map(() => rng.nextUint32()),
      values,
      `seed ${seed}`,
    );
  }
});

test('deriveSeed matches the C reference and keeps streams apart', (t) => {
  t.is(deriveSeed(42, 2, 0), 229339386653871);
  t.is(deriveSeed(42, 2, 1), 7151137946287570);
  t.is(deriveSeed(42, 1), 8560785262482024);
  t.is(deriveSeed(42), 6679422623415661);
  t.not(deriveSeed(7, 1, 2), deriveSeed(7, 2, 1));
  t.not(deriveSeed(7, SeedStream.weightInit, 0), deriveSeed(7, SeedStream.dataOrder, 0));
  const derived = Array.from({ length: 1000 }, (_, epoch) => deriveSeed(7, SeedStream.dataOrder, epoch));
  t.is(new Set(derived).size, 1000);
  t.true(derived.every((seed) => Number.isSafeInteger(seed) && seed >= 0));
});

test('mix64 is the Stafford Mix13 finaliser (zero is its fixed point)', (t) => {
  t.is(mix64(0n), 0n);
  t.is(mix64(0x9e3779b97f4a7c15n), 0xe220a8397b1dcdafn);
});

test('the same seed gives the same stream, another seed another stream', (t) => {
  const draw = (seed: number) => {
    const rng = new Prng(seed);
    return Array.from({ length: 1000 }, () => rng.nextUint32());
  };
  t.deepEqual(draw(123), draw(123));
  const other = draw(124);
  const same = draw(123).filter((value, i) => value === other[i]).length;
  t.true(same < 3, `${same} equal draws out of 1000`);
});

test('nextFloat and uniform stay in range with the expected mean', (t) => {
  const rng = new Prng(9);
  let sum = 0;
  let min = 1;
  let max = 0;
  let notFloat32 = 0;
  const draws = 100_000;
  for (let i = 0; i < draws; i += 1) {
    const x = rng.nextFloat();
    sum += x;
    min = Math.min(min, x);
    max = Math.max(max, x);
    if (Math.fround(x) !== x) notFloat32 += 1;
  }
  t.is(notFloat32, 0);
  t.true(min >= 0 && max < 1);
  // Standard error of the mean is 0.29 / sqrt(1e5) = 9e-4; 5 sigma.
  t.true(Math.abs(sum / draws - 0.5) < 0.0046, `mean ${sum / draws}`);
  for (let i = 0; i < 1000; i += 1) {
    const u = rng.uniform(-0.25, 0.75);
    t.true(u >= -0.25 && u < 0.75);
  }
});

test('nextBelow is uniform over small ranges and checks its bound', (t) => {
  const rng = new Prng(11);
  const counts = new Array<number>(10).fill(0);
  const draws = 100_000;
  for (let i = 0; i < draws; i += 1) counts[rng.nextBelow(10)] += 1;
  // Each count is binomial(1e5, 0.1): sd 95; allow 5 sd.
  for (const count of counts) t.true(Math.abs(count - draws / 10) < 475, `counts ${counts.join(',')}`);
  t.is(rng.nextBelow(1), 0);
  t.true(rng.nextBelow(2 ** 32) < 2 ** 32);
  t.throws(() => rng.nextBelow(0), { instanceOf: RangeError });
  t.throws(() => rng.nextBelow(2 ** 32 + 1), { instanceOf: RangeError });
});

test('seeds outside [0, 2^53) are rejected', (t) => {
  t.throws(() => new Prng(-1), { instanceOf: RangeError });
  t.throws(() => new Prng(1.5), { instanceOf: RangeError });
  t.throws(() => new Prng(2 ** 53), { instanceOf: RangeError });
  t.throws(() => deriveSeed(1, -2), { instanceOf: RangeError });
});
