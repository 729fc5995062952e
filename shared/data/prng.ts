/**
 * The project's seedable pseudo-random number generator: xoshiro128** (Blackman and Vigna,
 * 2018) seeded by SplitMix64. Every worker must draw the same numbers from the same seed, in
 * any JavaScript engine and in a reimplementation in another language, so the algorithm is
 * spelled out here exactly.
 *
 * Seeding (64-bit unsigned arithmetic, wrapping mod 2^64):
 * ```
 * GAMMA = 0x9E3779B97F4A7C15
 * mix64(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *            z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *            return z ^ (z >> 31)
 * splitmix64 state x = seed; next() = { x = x + GAMMA; return mix64(x) }
 * a = next(); b = next()
 * s0 = low32(a), s1 = high32(a), s2 = low32(b), s3 = high32(b)
 * ```
 * Generation (32-bit unsigned arithmetic, wrapping mod 2^32; rotl = rotate left):
 * ```
 * nextUint32(): result = rotl(s1 * 5, 7) * 9
 *               t = s1 << 9
 *               s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
 *               s2 ^= t;  s3 = rotl(s3, 11)
 *               return result
 * nextFloat()       = (nextUint32() >>> 8) / 2^24          (24 bits: exact in float32, < 1)
 * uniform(lo, hi)   = lo + (hi - lo) * nextFloat()
 * nextBelow(n)      = r % n for the first r = nextUint32() with r < 2^32 - (2^32 mod n)
 * ```
 * SplitMix64 needs 64-bit integers, which JavaScript numbers are not; it runs once per
 * generator (BigInt), while the per-draw path uses only 32-bit `Math.imul` arithmetic.
 */

const MASK64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const MAX_SEED = Number.MAX_SAFE_INTEGER;

/**
 * Purposes that draw from their own stream, so that, e.g., changing the data order never
 * changes the initial weights. Pass one as the first stream of {@link deriveSeed}.
 */
export const SeedStream = {
  /** Model parameter initialisation. */
  weightInit: 1,
  /** Per-epoch sample order (see batch-order.ts). */
  dataOrder: 2,
} as const;

/** The SplitMix64 output function (Stafford's "Mix13"), on a 64-bit unsigned BigInt. */
export function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** SplitMix64: a 64-bit generator used here only to expand a seed into xoshiro state. */
export class SplitMix64 {
  private state: bigint;

  /** @param seed a non-negative safe integer. */
  constructor(seed: number) {
    this.state = BigInt(checkSeed(seed, 'seed'));
  }

  /** The next 64-bit output, as an unsigned BigInt. */
  next(): bigint {
    this.state = (this.state + GAMMA) & MASK64;
    return mix64(this.state);
  }
}

/**
 * Mixes integers into a new seed, in 64-bit unsigned arithmetic:
 * `h = mix64(seed + GAMMA)`, then for each stream `s` in order `h = mix64((h ^ s) + GAMMA)`;
 * the result is the top 53 bits of `h` (`h >> 11`), so it is again a safe-integer seed. Each
 * step is a bijection of `h ^ s`, so different streams after the same prefix never collide
 * before the final truncation. Order matters: `(7, 1, 2) != (7, 2, 1)`.
 *
 * @param seed the run's base seed, a non-negative safe integer.
 * @param streams non-negative safe integers naming the purpose and position, e.g.
 *   `deriveSeed(seed, SeedStream.dataOrder, epoch)`.
 */
export function deriveSeed(seed: number, ...streams: number[]): number {
  let h = mix64((BigInt(checkSeed(seed, 'seed')) + GAMMA) & MASK64);
  for (const s of streams) {
    h = mix64(((h ^ BigInt(checkSeed(s, 'stream'))) + GAMMA) & MASK64);
  }
  return Number(h >> 11n);
}

/** xoshiro128** seeded through SplitMix64; see the module comment for the exact algorithm. */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** @param seed a non-negative safe integer (0 to 2^53 - 1). */
  constructor(seed: number) {
    const expander = new SplitMix64(seed);
    const a = expander.next();
    const b = expander.next();
    this.s0 = Number(a & 0xffffffffn);
    this.s1 = Number(a >> 32n);
    this.s2 = Number(b & 0xffffffffn);
    this.s3 = Number(b >> 32n);
  }

  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 24 random bits, so it is exactly representable as float32. */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) * 2 ** -24;
  }

  /** A float uniformly drawn from [lo, hi) (24-bit resolution, see {@link nextFloat}). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.nextFloat();
  }

  /**
   * An unbiased integer in [0, n) by rejection: draws below `2^32 - (2^32 mod n)` are kept and
   * reduced mod n. @param n an integer in [1, 2^32].
   */
  nextBelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`nextBelow(${n}): n must be an integer in [1, 2^32]`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function checkSeed(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_SEED) {
    throw new RangeError(`${what} must be an integer in [0, 2^53 - 1], got ${value}`);
  }
  return value;
}
