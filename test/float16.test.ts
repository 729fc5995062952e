/**
 * binary16 conversions of the compressed all-reduce (worker/collective/float16.ts and
 * native/collective/float16.cc): known bit patterns (ties to even, subnormals, overflow, NaN),
 * the native addon and the JavaScript fallback agreeing bit for bit, and numpy's float16
 * agreeing with both.
 */
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { addHalfIntoScalar, floatToHalfScalar, halfBitsOf, halfToFloatScalar, roundToHalfScalar } from '../worker/collective/float16.ts';
import { collectiveAddon } from '../worker/collective/native-collective.ts';
import { PYTHON } from './helpers/pytorch.ts';

const addon = collectiveAddon();

/** float32 bits -> binary16 bits, each case a reason it is there. */
const ENCODED: Array<[number, number, string]> = [
  [0x3f80_0000, 0x3c00, '1'],
  [0xbf80_0000, 0xbc00, '-1'],
  [0x0000_0000, 0x0000, '+0'],
  [0x8000_0000, 0x8000, '-0'],
  [0x3dcc_cccd, 0x2e66, '0.1 rounds down'],
  [0x3f80_1000, 0x3c00, '1 + 2^-11: a tie, to the even 1'],
  [0x3f80_3000, 0x3c02, '1 + 3 * 2^-11: a tie, to the even 1 + 2^-9'],
  [0x3f80_1001, 0x3c01, 'just above a tie rounds up'],
  [0x477f_e000, 0x7bff, '65504, the largest binary16'],
  [0x477f_efff, 0x7bff, 'just below 65520 rounds to 65504'],
  [0x477f_f000, 0x7c00, '65520 (a tie) rounds to infinity'],
  [0x4780_0000, 0x7c00, '65536 overflows'],
  [0x7f7f_ffff, 0x7c00, 'the largest float32 overflows'],
  [0xc780_0000, 0xfc00, '-65536 overflows to -infinity'],
  [0x7f80_0000, 0x7c00, 'infinity'],
  [0xff80_0000, 0xfc00, '-infinity'],
  [0x7fc0_0000, 0x7e00, 'quiet NaN'],
  [0xffc0_0000, 0xfe00, 'negative quiet NaN keeps its sign'],
  [0x7f80_0001, 0x7c01, 'a NaN whose payload is all in the dropped bits stays a NaN'],
  [0x7fa0_2000, 0x7d01, 'a NaN keeps the top 10 bits of its payload'],
  [0x3880_0000, 0x0400, '2^-14, the smallest normal'],
  [0x387f_c000, 0x03ff, 'the largest subnormal'],
  [0x387f_e000, 0x0400, 'halfway between the largest subnormal and 2^-14: to the even 2^-14'],
  [0x3380_0000, 0x0001, '2^-24, the smallest subnormal'],
  [0x3300_0000, 0x0000, '2^-25 (a tie) rounds to the even 0'],
  [0x3300_0001, 0x0001, 'just above 2^-25 rounds up to 2^-24'],
  [0x33c0_0000, 0x0002, '1.5 * 2^-24 (a tie) rounds to the even 2 * 2^-24'],
  [0x3420_0000, 0x0002, '2.5 * 2^-24 (a tie) rounds to the even 2 * 2^-24'],
  [0xb380_0000, 0x8001, '-2^-24'],
  [0x32ff_ffff, 0x0000, 'below 2^-25 rounds to 0'],
  [0x0000_0001, 0x0000, 'the smallest float32 subnormal'],
  [0x807f_ffff, 0x8000, 'a negative float32 subnormal gives -0'],
];

/** binary16 bits -> float32 bits. */
const DECODED: Array<[number, number]> = [
  [0x0001, 0x3380_0000],
  [0x03ff, 0x387f_c000],
  [0x0400, 0x3880_0000],
  [0x3c00, 0x3f80_0000],
  [0x7bff, 0x477f_e000],
  [0x7c00, 0x7f80_0000],
  [0xfc00, 0xff80_0000],
  [0x7e00, 0x7fc0_0000],
  [0x7d01, 0x7fa0_2000],
  [0x8000, 0x8000_0000],
  [0x8001, 0xb380_0000],
];

function floatsOfBits(bits: readonly number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Float32 bit patterns around every exponent: ties, their neighbours, signs, NaNs, random ones. */
function probeBits(): Uint32Array {
  const mantissas = [0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x3001, 0x40_0000, 0x7f_e000, 0x7f_efff, 0x7f_f000, 0x7f_ffff];
  const out: number[] = [];
  for (let exponent = 0; exponent < 256; exponent += 1) {
    for (const mantissa of mantissas) for (const sign of [0, 0x8000_0000]) out.push((sign | (exponent << 23) | mantissa) >>> 0);
  }
  let state = 0x9e37_79b9;
  for (let i = 0; i < 200_000; i += 1) {
    state = (Math.imul(state ^ (state >>> 16), 0x45d9_f3b) + i) >>> 0;
    out.push(state);
  }
  return Uint32Array.from(out);
}

test('float32 to binary16: known bit patterns, native and JavaScript', (t) => {
  const src = floatsOfBits(ENCODED.map(([from]) => from));
  const viaScalar = new Uint16Array(src.length);
  floatToHalfScalar(src, viaScalar);
  const viaNative = new Uint16Array(src.length);
  addon!.floatToHalf(src, viaNative);
  ENCODED.forEach(([from, to, why], i) => {
    t.is(halfBitsOf(from), to, why);
    t.is(viaScalar[i], to, `JavaScript: ${why}`);
    t.is(viaNative[i], to, `native: ${why}`);
  });
});

test('binary16 to float32: known bit patterns, native and JavaScript', (t) => {
  const src = Uint16Array.from(DECODED.map(([from]) => from));
  const viaScalar = new Float32Array(src.length);
  const viaNative = new Float32Array(src.length);
  halfToFloatScalar(src, viaScalar);
  addon!.halfToFloat(src, viaNative);
  t.deepEqual(
    [...bitsOf(viaScalar)],
    DECODED.map(([, to]) => to),
  );
  t.deepEqual(
    [...bitsOf(viaNative)],
    DECODED.map(([, to]) => to),
  );
});

test('native and JavaScript conversions agree on every binary16 and on float32 probes around every exponent', (t) => {
  const every = Uint16Array.from({ length: 0x1_0000 }, (_, h) => h);
  const [a, b] = [new Float32Array(every.length), new Float32Array(every.length)];
  halfToFloatScalar(every, a);
  addon!.halfToFloat(every, b);
  t.deepEqual(bitsOf(a), bitsOf(b));
  const probes = floatsOfBits([...probeBits()]);
  const [x, y] = [new Uint16Array(probes.length), new Uint16Array(probes.length)];
  floatToHalfScalar(probes, x);
  addon!.floatToHalf(probes, y);
  t.deepEqual(x, y);
  // A round trip of every binary16 value gives it back (NaNs included).
  const back = new Uint16Array(every.length);
  addon!.floatToHalf(a, back);
  t.deepEqual(back, every);
  const rounded = probes.slice();
  const roundedScalar = probes.slice();
  addon!.roundToHalf(rounded);
  roundToHalfScalar(roundedScalar);
  t.deepEqual(bitsOf(rounded), bitsOf(roundedScalar));
  const expected = new Float32Array(probes.length);
  halfToFloatScalar(x, expected);
  t.deepEqual(bitsOf(rounded), bitsOf(expected), 'roundToHalf is the round trip');
});

test('the compressed reduce step (float32 add, then binary16 rounding) is the same natively and in JavaScript', (t) => {
  const probes = floatsOfBits([...probeBits()]);
  const halves = new Uint16Array(probes.length);
  floatToHalfScalar(probes.slice().reverse(), halves);
  const target = probes.slice();
  roundToHalfScalar(target);
  const viaNative = target.slice();
  const viaScalar = target.slice();
  addon!.addHalfInto(viaNative, halves);
  addHalfIntoScalar(viaScalar, halves);
  // NaN payloads of an add may differ between the CPU and V8 (float32-chunks.ts); none else may.
  const nanless = (values: Float32Array) => Uint32Array.from(bitsOf(values), (bits, i) => (Number.isNaN(values[i]) ? 0x7fc0_0000 : bits));
  t.deepEqual(nanless(viaNative), nanless(viaScalar));
  t.throws(() => addon!.addHalfInto(new Float32Array(3), new Uint16Array(2)), { instanceOf: RangeError });
  t.throws(() => addHalfIntoScalar(new Float32Array(3), new Uint16Array(2)), { instanceOf: RangeError });
});

// Debian's python3-torch (installed by .ci/run) brings python3-numpy: the reference always runs.
test("numpy's float16 gives the same bits (NaNs: a NaN of the same sign)", (t) => {
  const probes = probeBits();
  const script = [
    'import sys, numpy as np',
    'data = sys.stdin.buffer.read()',
    'f = np.frombuffer(data[:-131072], dtype="<u4").view(np.float32)',
    'h = np.frombuffer(data[-131072:], dtype="<u2").view(np.float16)',
    'sys.stdout.buffer.write(f.astype(np.float16).view("<u2").tobytes() + h.astype(np.float32).view("<u4").tobytes())',
  ].join('\n');
  const every = Uint16Array.from({ length: 0x1_0000 }, (_, h) => h);
  const input = Buffer.concat([Buffer.from(probes.buffer), Buffer.from(every.buffer)]);
  const result = spawnSync(PYTHON, ['-W', 'ignore', '-c', script], { input, maxBuffer: 64 << 20 });
  t.is(result.status, 0, String(result.stderr));
  const out = result.stdout;
  const theirs = new Uint16Array(out.buffer.slice(out.byteOffset, out.byteOffset + probes.length * 2));
  const theirFloats = new Uint32Array(out.buffer.slice(out.byteOffset + probes.length * 2, out.byteOffset + out.byteLength));
  const ours = new Uint16Array(probes.length);
  addon!.floatToHalf(floatsOfBits([...probes]), ours);
  const isNaN16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
  let differing = 0;
  for (let i = 0; i < probes.length; i += 1) {
    const same = isNaN16(ours[i]) ? isNaN16(theirs[i]) && (ours[i] & 0x8000) === (theirs[i] & 0x8000) : ours[i] === theirs[i];
    if (!same) differing += 1;
  }
  t.is(differing, 0, 'float32 -> float16');
  const decoded = new Float32Array(every.length);
  addon!.halfToFloat(every, decoded);
  const decodedBits = bitsOf(decoded);
  let differingDecoded = 0;
  for (let h = 0; h < every.length; h += 1) {
    const same = isNaN16(h) ? Number.isNaN(decoded[h]) && (theirFloats[h] & 0x7fff_ffff) > 0x7f80_0000 : decodedBits[h] === theirFloats[h];
    if (!same) differingDecoded += 1;
  }
  t.is(differingDecoded, 0, 'float16 -> float32');
});
