/**
 * Whether a gradient is all numbers: the training loop asks it of each rank's own gradient
 * (to name the rank, and whether the sum could overflow) and, when some rank's gradient is not
 * bounded, of the summed one (to decide the step, alike on every rank).
 */

/** True when every value is finite (no NaN, no infinity). */
export function allFinite(values: Float32Array): boolean {
  return checkGradient(values) !== 'nonfinite';
}

/**
 * A bound on gradient values whose sums cannot overflow: float32 reaches 2^128, so a sum of up
 * to 2^27 ranks' values, each below 2^100 in magnitude, stays finite in any order.
 */
export const SUMMABLE_BOUND = 2 ** 100;

/**
 * What one rank's gradient is: `bounded` (every |value| < SUMMABLE_BOUND, so its sum with the
 * other ranks' bounded gradients is finite and need not be checked again), merely `finite`,
 * or `nonfinite` (a NaN or an infinity somewhere).
 */
export type GradientCheck = 'bounded' | 'finite' | 'nonfinite';

/** Float32 bit patterns without the sign: at or above this is an infinity or a NaN. */
const NONFINITE_BITS = 0x7f800000;
/** Float32 bit patterns without the sign: below this is a magnitude under SUMMABLE_BOUND. */
const BOUNDED_BITS = (127 + 100) << 23;

/**
 * One pass over the values' bits: the largest magnitude's bit pattern (sign cleared) orders
 * like the magnitudes themselves, with infinities and NaNs above every number. Integer maxima
 * in four lanes, because one chain of maxima waits on itself.
 */
export function checkGradient(values: Float32Array): GradientCheck {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  const whole = bits.length - (bits.length % 4);
  for (let i = 0; i < whole; i += 4) {
    m0 = Math.max(m0, bits[i] & 0x7fffffff);
    m1 = Math.max(m1, bits[i + 1] & 0x7fffffff);
    m2 = Math.max(m2, bits[i + 2] & 0x7fffffff);
    m3 = Math.max(m3, bits[i + 3] & 0x7fffffff);
  }
  for (let i = whole; i < bits.length; i += 1) m0 = Math.max(m0, bits[i] & 0x7fffffff);
  const largest = Math.max(m0, m1, m2, m3);
  if (largest < BOUNDED_BITS) return 'bounded';
  return largest < NONFINITE_BITS ? 'finite' : 'nonfinite';
}

const CHECK_ORDER: readonly GradientCheck[] = ['bounded', 'finite', 'nonfinite'];

/** The worse of two checks of parts of one gradient: the whole is as bad as its worst part. */
export function worseCheck(a: GradientCheck, b: GradientCheck): GradientCheck {
  return CHECK_ORDER[Math.max(CHECK_ORDER.indexOf(a), CHECK_ORDER.indexOf(b))];
}

/** The indices of the non-zero flags, ascending (one flag per rank, summed over ranks). */
export function flaggedRanks(flags: Float32Array): number[] {
  const ranks: number[] = [];
  for (let rank = 0; rank < flags.length; rank += 1) if (flags[rank] !== 0) ranks.push(rank);
  return ranks;
}
