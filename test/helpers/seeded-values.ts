/**
 * Deterministic test values from a small fixed PRNG (mulberry32): the same seed gives the same
 * values in every process, on every run and machine, so a parent process can compute what its
 * children hold without being sent it.
 */

/** `length` values in [-scale, scale). */
export function seededValues(length: number, seed: number, scale = 1): Float32Array {
  const values = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i += 1) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    values[i] = (unit * 2 - 1) * scale;
  }
  return values;
}
