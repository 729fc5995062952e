/**
 * Whether a gradient is all numbers: the training loop asks it of each rank's own gradient
 * (to name the rank) and of the summed one (to decide the step, alike on every rank).
 */

/**
 * True when every value is finite. One pass without branches: `x - x` is 0 for a finite x and
 * NaN for a NaN or an infinity, and a NaN survives every later addition, so the float64 total
 * is 0 exactly when all values are finite.
 */
export function allFinite(values: Float32Array): boolean {
  let total = 0;
  for (let i = 0; i < values.length; i += 1) total += values[i] - values[i];
  return total === 0;
}

/** The indices of the non-zero flags, ascending (one flag per rank, summed over ranks). */
export function flaggedRanks(flags: Float32Array): number[] {
  const ranks: number[] = [];
  for (let rank = 0; rank < flags.length; rank += 1) if (flags[rank] !== 0) ranks.push(rank);
  return ranks;
}
