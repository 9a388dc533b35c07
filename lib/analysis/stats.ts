/**
 * Per-(series, eta) summaries of noise sweeps for the charts. The interval
 * maths is lib/stats/mod.ts (the project's one implementation: Student t
 * from `jstat`, n = 1 → undefined interval, accuracies clipped to [0, 1],
 * training seeds combined over per-seed means); it is re-exported here.
 * @module
 */
import { generationOf, stamp } from "../util/session.ts";
import { ACCURACY_BOUNDS, combineSeeds, normalizedBounds, type SeedValue } from "../stats/mod.ts";

export * from "../stats/mod.ts";

/** Minimal shape of a sweep row (lib/noise `SweepRow`). */
export interface SweepRowLike {
  modelId: string;
  eta: number;
  target?: string;
  draw?: number;
  accuracy: number;
  cleanAccuracy: number;
  normalizedAccuracy: number;
  nonFiniteShare?: number;
}

/** Per (series, eta) summary: accuracy and normalized accuracy with 95% CIs (fractions 0..1). */
export interface EtaSummary {
  series: string;
  eta: number;
  /** Number of values the intervals are over: trained models when seeds >= 2, else draws. */
  n: number;
  /** Distinct trained models (training seeds) in the group. */
  seeds: number;
  /** Noise draws in the group (all models together). */
  draws: number;
  /** True when the group rests on ONE trained model (the interval covers noise draws only). */
  singleModel: boolean;
  /** Mean accuracy; bounds clipped to [0, 1], NaN when n < 2. */
  accuracy: number;
  accuracyLo: number;
  accuracyHi: number;
  /** Mean normalized accuracy; bounds clipped to [0, 1 / min clean], NaN when n < 2. */
  normalized: number;
  normalizedLo: number;
  normalizedHi: number;
  /** Mean share of non-finite logits rows (NaN when the rows do not carry it). */
  nonFiniteShare: number;
}

/**
 * Group sweep rows by `seriesOf(row)` and eta; mean and 95% CI of accuracy and
 * of normalized accuracy. Rows of one trained model: interval over its noise
 * draws (`singleModel: true`). Rows of several trained models in one group
 * (different `seedOf`, default the model id): interval over the per-model
 * means on (models − 1) df (lib/stats `combineSeeds`). Sorted by series order
 * of first appearance, then eta.
 */
export function summarizeByEta<R extends SweepRowLike>(
  rows: R[],
  seriesOf: (r: R) => string,
  opts: { seedOf?: (r: R) => string | number } = {},
): EtaSummary[] {
  const seedOf = opts.seedOf ?? ((r: R) => r.modelId);
  const groups = new Map<
    string,
    { series: string; eta: number; acc: SeedValue[]; norm: SeedValue[]; clean: number[]; nonFinite: number[] }
  >();
  const order: string[] = [];
  for (const r of rows) {
    const s = seriesOf(r);
    if (!order.includes(s)) order.push(s);
    const k = `${s}\u0000${r.eta}`;
    let g = groups.get(k);
    if (!g) groups.set(k, g = { series: s, eta: r.eta, acc: [], norm: [], clean: [], nonFinite: [] });
    const seed = seedOf(r);
    g.acc.push({ seed, value: r.accuracy });
    g.norm.push({ seed, value: r.normalizedAccuracy });
    g.clean.push(r.cleanAccuracy);
    g.nonFinite.push(r.nonFiniteShare ?? NaN);
  }
  const out: EtaSummary[] = [];
  for (const g of groups.values()) {
    const a = combineSeeds(g.acc, { bounds: ACCURACY_BOUNDS });
    const n = combineSeeds(g.norm, { bounds: normalizedBounds(g.clean) });
    out.push({
      series: g.series,
      eta: g.eta,
      n: a.n,
      seeds: a.seeds,
      draws: a.draws,
      singleModel: a.singleModel,
      accuracy: a.mean,
      accuracyLo: a.lo,
      accuracyHi: a.hi,
      normalized: n.mean,
      normalizedLo: n.lo,
      normalizedHi: n.hi,
      nonFiniteShare: g.nonFinite.reduce((x, y) => x + y, 0) / g.nonFinite.length,
    });
  }
  out.sort((x, y) => order.indexOf(x.series) - order.indexOf(y.series) || x.eta - y.eta);
  // a summary is as old as its oldest row (notebook sessions: lib/util/session.ts)
  const gens = rows.map(generationOf).filter((g): g is number => g !== undefined);
  return gens.length ? stamp(out, Math.min(...gens)) : out;
}
