/**
 * Summary statistics of noise sweeps: mean, sample std, Student-t confidence
 * intervals (t quantiles from the `jstat` package) and the paper's metric.
 * @module
 */
import jStat from "jstat";
import { NoiselabError } from "../util/errors.ts";

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : NaN;
}

/** Sample standard deviation (n−1 denominator; NaN when n < 2). */
export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, v) => s + (v - m) ** 2, 0) / (xs.length - 1));
}

/** Quantile p of Student's t distribution with `df` degrees of freedom. */
export function tQuantile(p: number, df: number): number {
  // deno-lint-ignore no-explicit-any
  return (jStat as any).studentt.inv(p, df);
}

/** Mean with a two-sided Student-t confidence interval (`level` default 0.95); NaN bounds when n < 2. */
export function confidenceInterval(
  xs: number[],
  level = 0.95,
): { mean: number; std: number; low: number; high: number; n: number } {
  const m = mean(xs);
  const sd = sampleStd(xs);
  if (xs.length < 2) return { mean: m, std: sd, low: NaN, high: NaN, n: xs.length };
  const half = tQuantile(1 - (1 - level) / 2, xs.length - 1) * sd / Math.sqrt(xs.length);
  return { mean: m, std: sd, low: m - half, high: m + half, n: xs.length };
}

/** One Monte Carlo draw of a sweep. */
export interface SweepRow {
  modelId: string;
  eta: number;
  /** Targets joined with "+", e.g. "kernels" or "kernels+biases". */
  target: string;
  form: string;
  draw: number;
  accuracy: number;
  cleanAccuracy: number;
  /** accuracy / cleanAccuracy. */
  normalizedAccuracy: number;
}

/** Per (model, target, form, eta) summary over draws. */
export interface SweepSummary {
  modelId: string;
  eta: number;
  target: string;
  form: string;
  draws: number;
  cleanAccuracy: number;
  mean: number;
  std: number;
  /** 95% Student-t interval of the mean accuracy (NaN when draws < 2). */
  ciLow: number;
  ciHigh: number;
  normalizedMean: number;
  normalizedCiLow: number;
  normalizedCiHigh: number;
}

const groupKey = (r: SweepRow) => JSON.stringify([r.modelId, r.target, r.form, r.eta]);

/** Summaries of rows, grouped by model, target, form and eta (in first-seen order). */
export function summarizeRows(rows: SweepRow[], level = 0.95): SweepSummary[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const k = groupKey(r);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()].map((g) => {
    const a = confidenceInterval(g.map((r) => r.accuracy), level);
    const nrm = confidenceInterval(g.map((r) => r.normalizedAccuracy), level);
    return {
      modelId: g[0].modelId,
      eta: g[0].eta,
      target: g[0].target,
      form: g[0].form,
      draws: g.length,
      cleanAccuracy: g[0].cleanAccuracy,
      mean: a.mean,
      std: a.std,
      ciLow: a.low,
      ciHigh: a.high,
      normalizedMean: nrm.mean,
      normalizedCiLow: nrm.low,
      normalizedCiHigh: nrm.high,
    };
  });
}

/**
 * The paper's metric: the mean over noise levels of the mean normalised
 * accuracy (noisy / clean) at that level. All rows must belong to one model,
 * target and form (else a NoiselabError naming `rows`).
 */
export function averageNormalizedAccuracy(rows: SweepRow[]): number {
  if (rows.length === 0) throw new NoiselabError("rows: no sweep rows", "rows");
  const ids = new Set(rows.map((r) => JSON.stringify([r.modelId, r.target, r.form])));
  if (ids.size > 1) {
    throw new NoiselabError(
      `rows: mixes ${ids.size} model/target/form combinations; filter to one first`,
      "rows",
    );
  }
  // the noisy levels only: η = 0 adds no noise and would contribute a 100% term
  const noisy = summarizeRows(rows).filter((s) => s.eta > 0);
  return noisy.length ? mean(noisy.map((s) => s.normalizedMean)) : NaN;
}
