/**
 * IEEE 754 binary16 ("fp16") for the compressed all-reduce (`--grad-compression fp16`). Node 20
 * has no Float16Array nor Math.f16round, so the conversions are ours: native in the collective
 * addon (native/collective/float16.cc) and, when it is not built, the JavaScript below, which
 * gives the same bits (the native code selects between cases with masks so that it
 * vectorises, and rounds subnormals with one float add; this code branches and shifts). The rule:
 * - float32 -> binary16 rounds to nearest, ties to even; magnitudes from 65520 up become a signed
 *   infinity, magnitudes up to 2^-25 (float32 subnormals included) a signed zero, and the rest
 *   below 2^-14 binary16 subnormals; a NaN keeps its sign and the top 10 bits of its payload,
 *   made non-zero (numpy's `float16` rule);
 * - binary16 -> float32 is exact.
 * Values are read and written through Uint32Array views so that no NaN passes through a
 * JavaScript number (V8 may change a NaN's payload there), except in the add, whose NaN
 * payloads may differ from the CPU's as those of float32-chunks.ts's add do.
 */
import { collectiveAddon } from './native-collective.ts';

const native = collectiveAddon();

/** Bytes of one binary16 value. */
export const HALF_BYTES = 2;

/** The binary16 bits of the float32 whose bits are `x` (JavaScript version of the native rule). */
export function halfBitsOf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const a = x & 0x7fff_ffff;
  if (a >= 0x4780_0000) {
    // 65536 and up, infinity, NaN (65520 .. 65536 round to infinity in the normal branch).
    if (a <= 0x7f80_0000) return sign | 0x7c00;
    return sign | 0x7c00 | ((a & 0x7f_ffff) >>> 13 || 1);
  }
  if (a >= 0x3880_0000) {
    // Normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry may reach infinity).
    return sign | ((a - 0x3800_0000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  }
  const shift = 126 - (a >>> 23);
  if (shift > 24) return sign;
  const significand = (a & 0x7f_ffff) | 0x80_0000;
  const kept = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (kept + (rest > half || (rest === half && (kept & 1) === 1) ? 1 : 0));
}

let floatBitsTable: Uint32Array | undefined;

/** float32 bits of every binary16 value, built once (256 KiB). */
function floatBitsOfHalf(): Uint32Array {
  if (floatBitsTable === undefined) {
    floatBitsTable = new Uint32Array(0x1_0000);
    const scratch = new Float32Array(1);
    const scratchBits = new Uint32Array(scratch.buffer);
    for (let h = 0; h < 0x1_0000; h += 1) {
      const sign = (h & 0x8000) << 16;
      const exponent = (h >>> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      let magnitude: number;
      if (exponent === 31) magnitude = 0x7f80_0000 | (mantissa << 13);
      else if (exponent > 0) magnitude = ((exponent + 112) << 23) | (mantissa << 13);
      else {
        scratch[0] = mantissa * 2 ** -24; // exact: at most 10 significant bits
        magnitude = scratchBits[0];
      }
      floatBitsTable[h] = (sign | magnitude) >>> 0;
    }
  }
  return floatBitsTable;
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function checkSameLength(a: { length: number }, b: { length: number }): void {
  if (a.length !== b.length) throw new RangeError(`both arrays must have the same length, got ${a.length} and ${b.length}`);
}

/** `dst[i]` = the binary16 bits of `src[i]` (native when the addon is built). */
export function floatToHalf(src: Float32Array, dst: Uint16Array): void {
  if (native !== null) native.floatToHalf(src, dst);
  else floatToHalfScalar(src, dst);
}

/** `dst[i]` = the value of the binary16 `src[i]`, exactly (native when the addon is built). */
export function halfToFloat(src: Uint16Array, dst: Float32Array): void {
  if (native !== null) native.halfToFloat(src, dst);
  else halfToFloatScalar(src, dst);
}

/** Rounds every value of `target` to binary16, in place (native when the addon is built). */
export function roundToHalf(target: Float32Array): void {
  if (native !== null) native.roundToHalf(target);
  else roundToHalfScalar(target);
}

/**
 * `target[i]` = the binary16 rounding of `target[i] + values[i]`, the sum first rounded to
 * float32 (as every float32 add of the ring): the reduce step of the compressed all-reduce.
 */
export function addHalfInto(target: Float32Array, values: Uint16Array): void {
  if (native !== null) native.addHalfInto(target, values);
  else addHalfIntoScalar(target, values);
}

/** {@link floatToHalf} in JavaScript. */
export function floatToHalfScalar(src: Float32Array, dst: Uint16Array): void {
  checkSameLength(src, dst);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i += 1) dst[i] = halfBitsOf(bits[i]);
}

/** {@link halfToFloat} in JavaScript. */
export function halfToFloatScalar(src: Uint16Array, dst: Float32Array): void {
  checkSameLength(src, dst);
  const table = floatBitsOfHalf();
  const bits = bitsOf(dst);
  for (let i = 0; i < src.length; i += 1) bits[i] = table[src[i]];
}

/** {@link roundToHalf} in JavaScript. */
export function roundToHalfScalar(target: Float32Array): void {
  const table = floatBitsOfHalf();
  const bits = bitsOf(target);
  for (let i = 0; i < bits.length; i += 1) bits[i] = table[halfBitsOf(bits[i])];
}

/** {@link addHalfInto} in JavaScript. */
export function addHalfIntoScalar(target: Float32Array, values: Uint16Array): void {
  checkSameLength(target, values);
  const table = floatBitsOfHalf();
  const addend = new Float32Array(1);
  const addendBits = bitsOf(addend);
  const bits = bitsOf(target);
  for (let i = 0; i < target.length; i += 1) {
    addendBits[0] = table[values[i]];
    // The double sum rounded to float32 is the correctly rounded float32 sum (53 >= 2 * 24 + 2
    // bits), as the native float add; only a NaN's payload may differ from the CPU's.
    target[i] += addend[0];
    bits[i] = table[halfBitsOf(bits[i])];
  }
}
