/**
 * THE interval maths of noiselab: means, sample standard deviations and
 * two-sided Student-t confidence intervals, used by the noise sweeps
 * (lib/noise), the charts (lib/analysis) and the notebook prose
 * (lib/notebook/interpret.ts). Nothing else in the project computes an
 * interval; lib/noise/stats.ts and lib/analysis/stats.ts re-export from here.
 *
 * Vocabulary (every interval in the project): `{ mean, sd, n, lo, hi, halfWidth, level }`.
 *
 * Formula (Student t interval of a mean): for values x_1..x_n with mean m and
 * sample standard deviation s (n − 1 denominator),
 *
 *     halfWidth = t_{1 − (1 − level)/2, n − 1} · s / √n,   [lo, hi] = [m − halfWidth, m + halfWidth]
 *
 * then clipped to the quantity's range when one is given (accuracies: [0, 1]).
 * t quantiles come from the `jstat` package (`jStat.studentt.inv`), e.g.
 * t(0.975, 1) = 12.706, t(0.975, 4) = 2.776 (standard tables; any statistics
 * text, e.g. NIST/SEMATECH e-Handbook §1.3.6.7.2).
 *
 * Conventions:
 * - n = 0: everything NaN. n = 1: the mean is the value, the interval is
 *   UNDEFINED (sd, halfWidth, lo, hi are NaN) — one draw says nothing about
 *   spread, so it never becomes a zero-width band; {@link intervalsSeparate}
 *   returns `undefined` for it.
 * - A NaN among the values makes the mean NaN (NaN means "broken", it is
 *   never dropped silently).
 * - Training seeds: {@link combineSeeds} puts the interval over the per-seed
 *   means (the trained models are the independent units), not over the pooled
 *   draws.
 * @module
 */
import jStat from "jstat";
import { NoiselabError } from "../util/errors.ts";

/** Default confidence level of every interval in the project. */
export const DEFAULT_LEVEL = 0.95;

/** The range of an accuracy (fraction correct). Accuracy intervals are clipped to it. */
export const ACCURACY_BOUNDS: readonly [number, number] = [0, 1];

/** A mean with its two-sided Student-t confidence interval. */
export interface Interval {
  /** Arithmetic mean of the values (NaN for none, NaN when any value is NaN). */
  mean: number;
  /** Sample standard deviation (n − 1 denominator); NaN when n < 2. */
  sd: number;
  /** Number of values the interval is over. */
  n: number;
  /** Lower bound, after clipping to the range (if any); NaN when n < 2 (undefined interval). */
  lo: number;
  /** Upper bound, after clipping to the range (if any); NaN when n < 2. */
  hi: number;
  /** t · sd / √n, before clipping (so `mean ± halfWidth` may leave the range); NaN when n < 2. */
  halfWidth: number;
  /** Confidence level (e.g. 0.95). */
  level: number;
}

/** Options of {@link meanInterval}. */
export interface IntervalOptions {
  /** Confidence level in (0, 1); default 0.95. */
  level?: number;
  /** Range of the quantity, [min, max]; the bounds are clipped to it (e.g. {@link ACCURACY_BOUNDS}). */
  bounds?: readonly [number, number];
}

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: ArrayLike<number>): number {
  if (!xs.length) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Sample standard deviation (n − 1 denominator; NaN when n < 2). */
export function sampleStd(xs: ArrayLike<number>): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < xs.length; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

/** Quantile p of Student's t distribution with `df` degrees of freedom (jstat `studentt.inv`); NaN for df < 1. */
export function tQuantile(p: number, df: number): number {
  if (!(df >= 1)) return NaN;
  // deno-lint-ignore no-explicit-any
  return (jStat as any).studentt.inv(p, df);
}

/** The two-sided critical value t_{1 − (1 − level)/2, df}: 12.706 for level 0.95, df 1. */
export function tCritical(level: number, df: number): number {
  return tQuantile(1 - (1 - level) / 2, df);
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) {
    throw new NoiselabError(`level: expected a confidence level in (0, 1), got ${level}`, "level");
  }
}

function clip(v: number, bounds?: readonly [number, number]): number {
  if (!bounds || Number.isNaN(v)) return v;
  return Math.min(bounds[1], Math.max(bounds[0], v));
}

/**
 * Mean of `values` with its two-sided Student-t confidence interval on n − 1
 * degrees of freedom (see the module doc for the formula). n = 1 → undefined
 * interval (NaN bounds); `bounds` clips lo/hi to the quantity's range.
 */
export function meanInterval(values: ArrayLike<number>, opts: IntervalOptions = {}): Interval {
  const level = opts.level ?? DEFAULT_LEVEL;
  checkLevel(level);
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { mean: m, sd: NaN, n, lo: NaN, hi: NaN, halfWidth: NaN, level };
  const sd = sampleStd(values);
  const halfWidth = tCritical(level, n - 1) * sd / Math.sqrt(n);
  return {
    mean: m,
    sd,
    n,
    lo: clip(m - halfWidth, opts.bounds),
    hi: clip(m + halfWidth, opts.bounds),
    halfWidth,
    level,
  };
}

/** {@link meanInterval} of accuracies (fractions 0..1): bounds clipped to [0, 1]. */
export function accuracyInterval(values: ArrayLike<number>, level = DEFAULT_LEVEL): Interval {
  return meanInterval(values, { level, bounds: ACCURACY_BOUNDS });
}

/**
 * The range of a normalized accuracy (accuracy / clean accuracy) given the
 * clean accuracies involved: [0, 1 / min(clean)] (Infinity when a clean
 * accuracy is 0 or none is given).
 */
export function normalizedBounds(cleanAccuracies: ArrayLike<number>): [number, number] {
  let min = Infinity;
  for (let i = 0; i < cleanAccuracies.length; i++) min = Math.min(min, cleanAccuracies[i]);
  return [0, min > 0 && Number.isFinite(min) ? 1 / min : Infinity];
}

/** True when the interval has finite bounds (n >= 2 and no NaN values). */
export function intervalDefined(ci: Pick<Interval, "lo" | "hi">): boolean {
  return Number.isFinite(ci.lo) && Number.isFinite(ci.hi);
}

/**
 * Whether two intervals are disjoint (a.hi < b.lo or b.hi < a.lo).
 * `undefined` when either interval is undefined (n < 2 or NaN): one draw can
 * neither separate nor overlap. Use `intervalsSeparate(a, b) === true` for a
 * yes/no test.
 */
export function intervalsSeparate(
  a: Pick<Interval, "lo" | "hi">,
  b: Pick<Interval, "lo" | "hi">,
): boolean | undefined {
  if (!intervalDefined(a) || !intervalDefined(b)) return undefined;
  return a.hi < b.lo || b.hi < a.lo;
}

/** One value measured on a model trained with seed `seed` (e.g. one noise draw's accuracy). */
export interface SeedValue {
  /** The training seed (or any id of the trained model, e.g. its model id). */
  seed: string | number;
  value: number;
}

/** Result of {@link combineSeeds}. */
export interface SeedInterval extends Interval {
  /** Number of distinct training seeds (trained models). */
  seeds: number;
  /** Total number of values (noise draws over all seeds). */
  draws: number;
  /**
   * True when all values come from ONE trained model: the interval then only
   * covers noise-draw variation, not training variation, and prose should say
   * so ("rests on one trained model").
   */
  singleModel: boolean;
  /** What the interval is over: per-seed means (seeds >= 2) or the draws of the one model. */
  basis: "seeds" | "draws";
  /** Per-seed mean over that seed's values, in first-seen order. */
  perSeed: { seed: string | number; mean: number; n: number }[];
}

/**
 * Combine training seeds and noise draws into one interval.
 *
 * - seeds >= 2: each seed's values are averaged first (the mean over its
 *   noise draws); the interval is the Student-t interval of those per-seed
 *   means, on (seeds − 1) degrees of freedom, n = seeds. The centre is the
 *   unweighted mean of the per-seed means (each trained model counts once,
 *   whatever its number of draws).
 * - one seed: falls back to the interval over that model's draws (n = draws,
 *   df = draws − 1) and sets `singleModel: true`.
 * - no values: NaN everywhere, seeds 0.
 *
 * `bounds` clips as in {@link meanInterval} (accuracies: {@link ACCURACY_BOUNDS}).
 */
export function combineSeeds(rows: readonly SeedValue[], opts: IntervalOptions = {}): SeedInterval {
  const bySeed = new Map<string, { seed: string | number; values: number[] }>();
  for (const r of rows) {
    const k = typeof r.seed + ":" + String(r.seed);
    let g = bySeed.get(k);
    if (!g) bySeed.set(k, g = { seed: r.seed, values: [] });
    g.values.push(r.value);
  }
  const perSeed = [...bySeed.values()].map((g) => ({
    seed: g.seed,
    mean: mean(g.values),
    n: g.values.length,
  }));
  const seeds = perSeed.length;
  if (seeds >= 2) {
    return {
      ...meanInterval(perSeed.map((s) => s.mean), opts),
      seeds,
      draws: rows.length,
      singleModel: false,
      basis: "seeds",
      perSeed,
    };
  }
  return {
    ...meanInterval(rows.map((r) => r.value), opts),
    seeds,
    draws: rows.length,
    singleModel: seeds === 1,
    basis: "draws",
    perSeed,
  };
}
