/**
 * Summary statistics of noise sweeps and the paper's metric. The interval
 * maths (mean, sample std, Student-t intervals from `jstat`, seed combining)
 * lives in ONE place, lib/stats/mod.ts, re-exported here.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import type { ScoringRule } from "../models/predict.ts";
import {
  ACCURACY_BOUNDS,
  combineSeeds,
  DEFAULT_LEVEL,
  mean,
  meanInterval,
  normalizedBounds,
  type SeedInterval,
} from "../stats/mod.ts";

export * from "../stats/mod.ts";

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
  /**
   * Share (0..1) of the test images whose logits row is not all finite
   * (NaN/±Inf) in this draw — the mechanism behind chance-level BN results.
   * NaN when a custom evaluator did not report it.
   */
  nonFiniteShare: number;
  /** How non-finite rows were scored (lib/models `ScoringRule`). */
  scoring: ScoringRule;
  /**
   * Present (true) only in sweeps run with `allowEmpty` whose targets selected
   * no tensor: the row is the unperturbed model's, not a noise measurement.
   */
  nothingPerturbed?: true;
}

/** Per (model, target, form, eta) summary over draws. */
export interface SweepSummary {
  modelId: string;
  eta: number;
  target: string;
  form: string;
  scoring: ScoringRule;
  draws: number;
  cleanAccuracy: number;
  /** Mean accuracy over the draws. */
  mean: number;
  /** Sample standard deviation of the accuracy over the draws (NaN when draws < 2). */
  sd: number;
  /** 95% Student-t interval of the mean accuracy, clipped to [0, 1] (NaN when draws < 2). */
  lo: number;
  hi: number;
  /** t · sd / √draws before clipping (NaN when draws < 2). */
  halfWidth: number;
  normalizedMean: number;
  /** Interval of the mean normalized accuracy, clipped to [0, 1 / clean] (NaN when draws < 2). */
  normalizedLo: number;
  normalizedHi: number;
  /** Mean over the draws of {@link SweepRow.nonFiniteShare}. */
  nonFiniteShare: number;
}

const groupKey = (r: SweepRow) => JSON.stringify([r.modelId, r.target, r.form, r.scoring ?? null, r.eta]);

/** Summaries of rows, grouped by model, target, form, scoring rule and eta (in first-seen order). */
export function summarizeRows(rows: SweepRow[], level = DEFAULT_LEVEL): SweepSummary[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const k = groupKey(r);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()].map((g) => {
    const a = meanInterval(g.map((r) => r.accuracy), { level, bounds: ACCURACY_BOUNDS });
    const nrm = meanInterval(g.map((r) => r.normalizedAccuracy), {
      level,
      bounds: normalizedBounds(g.map((r) => r.cleanAccuracy)),
    });
    return {
      modelId: g[0].modelId,
      eta: g[0].eta,
      target: g[0].target,
      form: g[0].form,
      scoring: g[0].scoring,
      draws: g.length,
      cleanAccuracy: g[0].cleanAccuracy,
      mean: a.mean,
      sd: a.sd,
      lo: a.lo,
      hi: a.hi,
      halfWidth: a.halfWidth,
      normalizedMean: nrm.mean,
      normalizedLo: nrm.lo,
      normalizedHi: nrm.hi,
      nonFiniteShare: mean(g.map((r) => r.nonFiniteShare)),
    };
  });
}

/** The NoiselabError for an average over eta > 0 of rows that have no eta > 0. */
function noNoisyLevelError(etas: number[]): NoiselabError {
  return new NoiselabError(
    `etas: no noise level > 0 in the rows (etas ${[...new Set(etas)].join(", ")}); ` +
      "the average normalized accuracy is over eta > 0: add a noise level > 0",
    "etas",
  );
}

/**
 * The paper's metric: the mean over noise levels eta > 0 of the mean
 * normalised accuracy (noisy / clean) at that level (a number, 1 = no loss).
 * Throws a NoiselabError naming `rows` for no rows or rows of several
 * models/targets/forms/scoring rules, and one naming `etas` when no row has
 * eta > 0 (there is nothing to average: never NaN).
 */
export function averageNormalizedAccuracy(rows: SweepRow[]): number {
  if (rows.length === 0) throw new NoiselabError("rows: no sweep rows", "rows");
  const ids = new Set(rows.map((r) => JSON.stringify([r.modelId, r.target, r.form, r.scoring ?? null])));
  if (ids.size > 1) {
    throw new NoiselabError(
      `rows: mixes ${ids.size} model/target/form/scoring combinations; filter to one first`,
      "rows",
    );
  }
  // the noisy levels only: η = 0 adds no noise and would contribute a 100% term
  const noisy = summarizeRows(rows).filter((s) => s.eta > 0);
  if (noisy.length === 0) throw noNoisyLevelError(rows.map((r) => r.eta));
  return mean(noisy.map((s) => s.normalizedMean));
}

/** Minimal row shape for {@link averageNormalizedInterval} (a lib/noise `SweepRow` fits). */
export interface NormalizedRowLike {
  modelId: string;
  eta: number;
  draw: number;
  cleanAccuracy: number;
  normalizedAccuracy: number;
}

/**
 * The paper's average normalized accuracy (over η > 0) with a confidence
 * interval. Draw k is paired across η (same seed stream index), so each
 * (model, draw) gives one average over the noisy levels. Rows of several
 * models (training seeds; `seedOf`, default the model id) are combined with
 * {@link combineSeeds}: interval over the per-model means on (models − 1) df;
 * with one model, the interval over its draws and `singleModel: true`. Bounds
 * are clipped to [0, 1 / min clean accuracy]. η = 0 rows are ignored; rows
 * that have no η > 0 at all throw a NoiselabError naming `etas` (nothing to
 * average, never NaN). No rows at all give the empty (NaN) interval.
 */
export function averageNormalizedInterval<R extends NormalizedRowLike>(
  rows: readonly R[],
  opts: { level?: number; seedOf?: (r: R) => string | number } = {},
): SeedInterval {
  const seedOf = opts.seedOf ?? ((r: R) => r.modelId);
  if (rows.length > 0 && !rows.some((r) => r.eta > 0)) throw noNoisyLevelError(rows.map((r) => r.eta));
  const byDraw = new Map<string, { seed: string | number; byEta: Map<number, number> }>();
  const cleans: number[] = [];
  for (const r of rows) {
    if (!(r.eta > 0)) continue;
    const seed = seedOf(r);
    const k = JSON.stringify([typeof seed, String(seed), r.draw]);
    let g = byDraw.get(k);
    if (!g) byDraw.set(k, g = { seed, byEta: new Map() });
    g.byEta.set(r.eta, r.normalizedAccuracy);
    cleans.push(r.cleanAccuracy);
  }
  const values = [...byDraw.values()].map((g) => ({ seed: g.seed, value: mean([...g.byEta.values()]) }));
  return combineSeeds(values, { level: opts.level, bounds: normalizedBounds(cleans) });
}
