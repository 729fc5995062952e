/** Number -> pixel mapping and axis ticks for the report's charts. Pure functions. */

/** A closed interval [min, max] of data values, min < max. */
export type Domain = readonly [number, number];

/** Maps `domain` linearly onto the pixel interval `range` (which may run backwards, as a y axis does). */
export function linearScale(domain: Domain, range: readonly [number, number]): (value: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  return (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0);
}

/**
 * The smallest interval holding `values` (and 0 with `includeZero`), widened to a non-empty one
 * when every value is the same, so a flat series still gets an axis.
 */
export function dataDomain(values: readonly number[], options: { includeZero?: boolean } = {}): Domain {
  const all = options.includeZero ? [0, ...values] : [...values];
  if (all.length === 0) return [0, 1];
  const min = Math.min(...all);
  const max = Math.max(...all);
  if (min < max) return [min, max];
  const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
  return options.includeZero && min === 0 ? [0, 1] : [min - pad, max + pad];
}

/**
 * About `count` round tick values (1, 2 or 5 times a power of ten apart) covering `domain`, and
 * the domain widened to the outer ticks so the axis starts and ends on a labelled value.
 */
export function niceTicks(domain: Domain, count = 5): { ticks: number[]; domain: Domain } {
  const step = niceStep((domain[1] - domain[0]) / Math.max(1, count));
  const first = Math.floor(domain[0] / step + 1e-9);
  const last = Math.ceil(domain[1] / step - 1e-9);
  const ticks: number[] = [];
  // Multiplying an integer by the step (rather than adding steps) keeps 0.1 * 3 from drifting.
  for (let i = first; i <= last; i += 1) ticks.push(roundTo(i * step, step));
  return { ticks, domain: [ticks[0], ticks.at(-1)!] };
}

/** Ticks 1, 2, ..., n (every k-th when n is large) for an axis of whole numbers such as epochs. */
export function integerTicks(n: number, maxTicks = 12): number[] {
  const every = Math.max(1, Math.ceil(n / maxTicks));
  const ticks: number[] = [];
  for (let i = 1; i <= n; i += every) ticks.push(i);
  return ticks;
}

/** A tick label: at most 4 significant digits, no trailing zeros, no exponent for usual values. */
export function formatTick(value: number): string {
  if (value === 0) return '0';
  return Number(value.toPrecision(4)).toString();
}

function niceStep(rough: number): number {
  if (!(rough > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** Rounds away the float noise of `value` at the precision of `step`. */
function roundTo(value: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(20, digits)));
}
