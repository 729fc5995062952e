/**
 * The reference's initialisation (d2l `train_ch6`): Xavier-uniform conv and linear weights,
 * PyTorch's default bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), batch norm gamma 1, beta 0,
 * running mean 0 and running variance 1. Values are drawn from a seeded generator in the
 * order the layers are listed, filling each array in its own (HWIO / [in, out]) layout.
 */

/** A source of uniform floats; the project's seeded PRNG satisfies it. */
export interface UniformSource {
  /** A float uniformly drawn from [lo, hi). */
  uniform(lo: number, hi: number): number;
}

export function fillUniform(out: Float32Array, bound: number, rng: UniformSource): Float32Array {
  for (let i = 0; i < out.length; i += 1) out[i] = rng.uniform(-bound, bound);
  return out;
}

/** Xavier/Glorot uniform bound for a weight with these fans (receptive field included). */
export function xavierBound(fanIn: number, fanOut: number): number {
  return Math.sqrt(6 / (fanIn + fanOut));
}

/** PyTorch's default bias bound for Conv2d and Linear. */
export function defaultBiasBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}
