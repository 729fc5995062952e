import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { bilinearAxisSampling, bilinearResizePlan, resizeGreyImage, resizeGreyImages } from '../shared/data/bilinear-resize.ts';
import { loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import { Prng } from '../shared/data/prng.ts';

const REFERENCE_SCRIPT = fileURLToPath(new URL('./reference/resize_reference.py', import.meta.url));
/** Debian's interpreter: the one with python3-torch (the `python3` on PATH has no torch). */
const PYTHON = '/usr/bin/python3';
const SIZES = [96, 28, 224, 17, 1, 29] as const;
const SIDE = 28;

/**
 * Bound on |ours - PyTorch|. The sampling weights are bit-identical (see bilinear-resize.ts),
 * so only arithmetic rounding differs: PyTorch rounds to float32 at x / 255, at the two
 * products and the sum of the row pass, and at those of the column pass (7 roundings), we
 * round once at the end. Every intermediate is at most 1, so each rounding is at most half an
 * ulp of 1, 2^-25, and the difference is at most 8 * 2^-25 = 2^-22 (2.4e-7), well inside the
 * 1e-6 asked of this module. Rounding the source coordinate to float32, a plausible bug, moves
 * results by about 1.3e-6 and fails this bound.
 */
const MAX_ABS_ERROR = 2 ** -22;

let images: Uint8Array;
const count = 12;
const reference = new Map<number, Float32Array>();

/** 8 real test images, then black, white, a checkerboard and noise. */
function testImages(realImages: Uint8Array): Uint8Array {
  const pixels = SIDE * SIDE;
  const out = new Uint8Array(count * pixels);
  out.set(realImages.subarray(0, 8 * pixels));
  out.fill(255, 9 * pixels, 10 * pixels);
  for (let i = 0; i < pixels; i += 1) out[10 * pixels + i] = ((i % SIDE) + Math.floor(i / SIDE)) % 2 === 0 ? 255 : 0;
  const rng = new Prng(2024);
  for (let i = 0; i < pixels; i += 1) out[11 * pixels + i] = rng.nextBelow(256);
  return out;
}

test.before(async () => {
  const dataset = await loadFashionMnist({ env: {} });
  images = testImages(dataset.test.images);
  const child = promisify(execFile)(PYTHON, [REFERENCE_SCRIPT, String(count), String(SIDE), String(SIDE), ...SIZES.map(String)], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  child.child.stdin?.end(images);
  const { stdout } = await child;
  const all = new Float32Array(stdout.buffer.slice(stdout.byteOffset, stdout.byteOffset + stdout.byteLength));
  let offset = 0;
  for (const size of SIZES) {
    reference.set(size, all.subarray(offset, offset + count * size * size));
    offset += count * size * size;
  }
  if (offset !== all.length) throw new Error(`reference wrote ${all.length} floats, expected ${offset}`);
});

function maxAbsError(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

for (const size of SIZES) {
  test(`resizing 28x28 to ${size}x${size} agrees with PyTorch F.interpolate`, (t) => {
    const ours = resizeGreyImages(images, count, SIDE, SIDE, size);
    const theirs = reference.get(size)!;
    t.is(ours.length, theirs.length);
    const error = maxAbsError(ours, theirs);
    t.log(`max |ours - PyTorch| = ${error.toExponential(2)}`);
    t.true(error <= MAX_ABS_ERROR, `max abs error ${error}`);
  });
}

test('28 to 28 is an exact copy of pixel / 255, equal to PyTorch bit for bit', (t) => {
  const ours = resizeGreyImages(images, count, SIDE, SIDE, SIDE);
  t.is(maxAbsError(ours, reference.get(SIDE)!), 0);
  t.true(ours.every((value, i) => value === Math.fround(images[i] / 255)));
});

test('black stays 0 and white stays 1 (to float32 weight rounding) at every size', (t) => {
  for (const size of SIZES) {
    const out = resizeGreyImages(images.subarray(8 * 784, 10 * 784), 2, SIDE, SIDE, size);
    t.true(
      out.subarray(0, size * size).every((v) => v === 0),
      `black at ${size}`,
    );
    // float32 lambda0 + lambda1 may miss 1 by an ulp, in PyTorch too.
    t.true(
      out.subarray(size * size).every((v) => Math.abs(v - 1) <= MAX_ABS_ERROR),
      `white at ${size}`,
    );
  }
});

test('sampling tables and plans are computed once per size pair', (t) => {
  t.is(bilinearAxisSampling(28, 96), bilinearAxisSampling(28, 96));
  t.is(bilinearResizePlan(28, 28, 96), bilinearResizePlan(28, 28, 96, 96));
  const axis = bilinearAxisSampling(28, 96);
  // Half-pixel centres: output 0 sits at source -0.35, clamped to 0; the last output's upper
  // neighbour is clamped to the last pixel.
  t.is(axis.index0[0], 0);
  t.is(axis.weight1[0], 0);
  t.is(axis.index1[95], 27);
});

test('one image at an offset equals the same image resized in a batch', (t) => {
  const plan = bilinearResizePlan(SIDE, SIDE, 96);
  const out = new Float32Array(3 * 96 * 96).fill(-1);
  resizeGreyImage(plan, images, 5 * 784, out, 96 * 96);
  const batch = resizeGreyImages(images, count, SIDE, SIDE, 96);
  t.deepEqual(out.subarray(96 * 96, 2 * 96 * 96), batch.subarray(5 * 96 * 96, 6 * 96 * 96));
  t.true(out.subarray(0, 96 * 96).every((v) => v === -1));
});

test('a batch of 256 resizes to 96x96 in well under a training step', (t) => {
  const batch = new Uint8Array(256 * 784);
  for (let i = 0; i < batch.length; i += 1) batch[i] = images[i % images.length];
  const out = new Float32Array(256 * 96 * 96);
  resizeGreyImages(batch, 256, SIDE, SIDE, 96, out);
  let fastestMs = Infinity;
  for (let r = 0; r < 10; r += 1) {
    const start = performance.now();
    resizeGreyImages(batch, 256, SIDE, SIDE, 96, out);
    fastestMs = Math.min(fastestMs, performance.now() - start);
  }
  t.log(`${fastestMs.toFixed(1)} ms per 256-image batch`);
  // The point is that resizing never matters beside the step it feeds: a step on such a batch
  // takes many seconds on a CPU, a resize about 6 ms here. The fastest of 10 (load slows some,
  // rarely all) under a whole second is 150x that, so only a resize gone badly wrong fails it.
  t.true(fastestMs < 1_000);
});

test('bad sizes and short buffers are rejected', (t) => {
  t.throws(() => bilinearAxisSampling(28, 0), { instanceOf: RangeError });
  t.throws(() => resizeGreyImages(images, count + 1, SIDE, SIDE, 96), { instanceOf: RangeError });
  t.throws(() => resizeGreyImages(images, 2, SIDE, SIDE, 96, new Float32Array(96 * 96)), { instanceOf: RangeError });
});
