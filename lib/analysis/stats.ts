/**
 * Means with 95% confidence intervals over Monte Carlo noise draws.
 *
 * The Student-t quantiles are a table (df 1..30, then the normal value): the only
 * statistic the charts need, not worth a dependency (jStat et al. would add a
 * whole numerics library for one number).
 * @module
 */

// two-sided 95% t quantiles t_{0.975, df}, df = 1..30
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.160,
  2.145,
  2.131,
  2.120,
  2.110,
  2.101,
  2.093,
  2.086,
  2.080,
  2.074,
  2.069,
  2.064,
  2.060,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** t_{0.975, df} (two-sided 95%); df > 30 uses a smooth approximation towards 1.96. */
export function tQuantile975(df: number): number {
  if (df < 1) return NaN;
  if (df <= 30) return T975[Math.floor(df) - 1];
  return 1.96 + 2.4 / df; // within 0.002 of the exact value for df > 30
}

/** Mean, sample standard deviation, n and the 95% t interval of the mean. */
export interface MeanCI {
  mean: number;
  sd: number;
  n: number;
  lo: number;
  hi: number;
}

/** Mean and 95% CI (t interval) of a sample; n = 1 gives lo = hi = mean. NaNs are kept (they mean "broken"). */
export function meanCI(values: number[]): MeanCI {
  const n = values.length;
  if (n === 0) return { mean: NaN, sd: NaN, n: 0, lo: NaN, hi: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, sd: 0, n, lo: mean, hi: mean };
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const h = tQuantile975(n - 1) * sd / Math.sqrt(n);
  return { mean, sd, n, lo: mean - h, hi: mean + h };
}

/** Minimal shape of a sweep row (lib/noise `SweepRow`). */
export interface SweepRowLike {
  modelId: string;
  eta: number;
  target?: string;
  draw?: number;
  accuracy: number;
  cleanAccuracy: number;
  normalizedAccuracy: number;
}

/** Per (series, eta) summary: accuracy and normalized accuracy with 95% CIs (fractions 0..1). */
export interface EtaSummary {
  series: string;
  eta: number;
  n: number;
  accuracy: number;
  accuracyLo: number;
  accuracyHi: number;
  normalized: number;
  normalizedLo: number;
  normalizedHi: number;
}

/**
 * Group sweep rows by `seriesOf(row)` and eta; mean and 95% CI of accuracy and of
 * normalized accuracy over the noise draws. Sorted by series order of first
 * appearance, then eta.
 */
export function summarizeByEta<R extends SweepRowLike>(rows: R[], seriesOf: (r: R) => string): EtaSummary[] {
  const groups = new Map<string, { series: string; eta: number; acc: number[]; norm: number[] }>();
  const order: string[] = [];
  for (const r of rows) {
    const s = seriesOf(r);
    if (!order.includes(s)) order.push(s);
    const k = `${s}\u0000${r.eta}`;
    let g = groups.get(k);
    if (!g) groups.set(k, g = { series: s, eta: r.eta, acc: [], norm: [] });
    g.acc.push(r.accuracy);
    g.norm.push(r.normalizedAccuracy);
  }
  const out: EtaSummary[] = [];
  for (const g of groups.values()) {
    const a = meanCI(g.acc), n = meanCI(g.norm);
    out.push({
      series: g.series,
      eta: g.eta,
      n: a.n,
      accuracy: a.mean,
      accuracyLo: a.lo,
      accuracyHi: a.hi,
      normalized: n.mean,
      normalizedLo: n.lo,
      normalizedHi: n.hi,
    });
  }
  out.sort((x, y) => order.indexOf(x.series) - order.indexOf(y.series) || x.eta - y.eta);
  return out;
}
