/**
 * Robustness along the training trajectory, and BN vs no-BN comparisons at
 * matched clean accuracy.
 *
 * A BN model and its BN-free twin trained with the same recipe rarely end at
 * the same clean accuracy, and normalized accuracy depends on how well a model
 * is trained (it is bounded below by chance / clean). So every BN vs no-BN
 * statement is made twice: at the end of training, and at matched clean
 * accuracy — the better-trained model's trajectory snapshot (lib/train
 * `listSnapshots`) whose clean accuracy is closest to the other model's final
 * accuracy is swept with the same noise draws.
 * @module
 */
import { assertCurrent } from "../util/session.ts";
import type { Dataset } from "../data/mod.ts";
import { listSnapshots, type SnapshotInfo } from "../train/mod.ts";
import type { SeedInterval } from "../stats/mod.ts";
import { averageNormalizedInterval } from "../noise/mod.ts";
import type { NotebookParams } from "./profiles.ts";
import { type SweepCondition, sweepVariant, type TrainedVariant, type VariantSweep } from "./study.ts";

/** One point of a trajectory: a snapshot (or the final model) with its sweep. */
export interface TrajectoryPoint {
  variant: TrainedVariant;
  /** null = the final model. */
  snapshot: SnapshotInfo | null;
  /** Fractional epochs of training done. */
  epochs: number;
  /** Clean accuracy on the test subset (0..1), as measured by the sweep at η = 0. */
  clean: number;
  sweep: VariantSweep;
  /** Average normalized accuracy over η > 0 with its interval over the noise draws. */
  avgNormalized: SeedInterval;
  /** Mean share of test images with non-finite logits over the draws at η > 0 (0..1). */
  nonFiniteShare: number;
}

/** Mean non-finite share over the rows at η > 0 (NaN when the rows do not report it). */
export function nonFiniteShareOf(rows: { eta: number; nonFiniteShare?: number }[]): number {
  const xs = rows.filter((r) => r.eta > 0).map((r) => r.nonFiniteShare ?? NaN);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function point(tv: TrainedVariant, sweep: VariantSweep): TrajectoryPoint {
  const snap = sweep.snapshot;
  return {
    variant: tv,
    snapshot: snap,
    epochs: snap ? snap.epochs : tv.trained.config.epochs,
    clean: sweep.result.cleanAccuracy,
    sweep,
    avgNormalized: averageNormalizedInterval(sweep.rows),
    nonFiniteShare: nonFiniteShareOf(sweep.rows),
  };
}

/** Sweep every trajectory snapshot of a trained variant and its final model (cached like any sweep). */
export async function trajectorySweeps(
  p: NotebookParams,
  tv: TrainedVariant,
  condition: SweepCondition,
  dataset: Dataset,
): Promise<TrajectoryPoint[]> {
  assertCurrent("trajectorySweeps", p, { trained: tv, dataset });
  const out: TrajectoryPoint[] = [];
  for (const snap of await listSnapshots(tv.trained.path)) {
    out.push(point(tv, await sweepVariant(p, tv, condition, dataset, { snapshot: snap })));
  }
  out.push(point(tv, await sweepVariant(p, tv, condition, dataset)));
  return out;
}

/** A BN vs no-BN comparison of one pair, at the end of training and at matched clean accuracy. */
export interface MatchedComparison {
  bn: TrajectoryPoint;
  noBn: TrajectoryPoint;
  /** The pair at matched accuracy: one side's final model, the other side's closest snapshot. */
  matched: { bn: TrajectoryPoint; noBn: TrajectoryPoint; leader: "bn" | "noBn" | "none" };
  /** |clean(bn) − clean(noBn)| at the end and at the matched points. */
  endGap: number;
  matchedGap: number;
}

/**
 * Compare a BN model with its BN-free twin (same architecture and seed) at the end
 * of training and at matched clean accuracy. The target is the lower of the two
 * final clean accuracies; the model that ends higher (the "leader") is taken at the
 * snapshot (or final model) whose clean accuracy — recorded during training on the
 * same test subset — is closest to it, and that snapshot is swept with the same
 * noise draws. When the final accuracies already match exactly, no extra sweep is made.
 */
export async function matchedComparison(
  p: NotebookParams,
  pair: { bn: VariantSweep; noBn: VariantSweep },
  condition: SweepCondition,
  dataset: Dataset,
): Promise<MatchedComparison> {
  const bn = point(pair.bn.variant, pair.bn);
  const noBn = point(pair.noBn.variant, pair.noBn);
  const endGap = Math.abs(bn.clean - noBn.clean);
  let matched: MatchedComparison["matched"] = { bn, noBn, leader: "none" };
  if (bn.clean !== noBn.clean) {
    const leader: "bn" | "noBn" = bn.clean > noBn.clean ? "bn" : "noBn";
    const lead = leader === "bn" ? bn : noBn;
    const target = Math.min(bn.clean, noBn.clean);
    const snaps = await listSnapshots(lead.variant.trained.path);
    let best: SnapshotInfo | null = null;
    let bestGap = Math.abs(lead.clean - target);
    for (const s of snaps) {
      const g = Math.abs(s.testAccuracy - target);
      if (g < bestGap) [best, bestGap] = [s, g];
    }
    if (best) {
      const sw = await sweepVariant(p, lead.variant, condition, dataset, {
        snapshot: best,
        series: `${lead.variant.label} @ ${best.epochs.toFixed(2)} ep.`,
      });
      const pt = point(lead.variant, sw);
      matched = leader === "bn" ? { bn: pt, noBn, leader } : { bn, noBn: pt, leader };
    } else {
      matched = { bn, noBn, leader };
    }
  }
  return { bn, noBn, matched, endGap, matchedGap: Math.abs(matched.bn.clean - matched.noBn.clean) };
}

/** Pair every BN sweep with the no-BN sweep of the same architecture and training seed. */
export function bnPairs(sweeps: VariantSweep[]): { bn: VariantSweep; noBn: VariantSweep }[] {
  const out: { bn: VariantSweep; noBn: VariantSweep }[] = [];
  for (const s of sweeps) {
    if (s.variant.bnLayers === 0 || s.snapshot) continue;
    const twin = sweeps.find((t) =>
      t.variant.bnLayers === 0 && !t.snapshot && t.variant.model === s.variant.model &&
      t.variant.seed === s.variant.seed
    );
    if (twin) out.push({ bn: s, noBn: twin });
  }
  return out;
}

/**
 * Matched-accuracy comparisons for every architecture of a set of final-model sweeps: the pair of
 * the first training seed (`p.seeds[0]`) of each BN model and its no-BN twin.
 */
export async function matchedComparisons(
  p: NotebookParams,
  sweeps: VariantSweep[],
  condition: SweepCondition,
  dataset: Dataset,
): Promise<MatchedComparison[]> {
  assertCurrent("matchedComparisons", p, { sweeps, dataset });
  const out: MatchedComparison[] = [];
  for (const pair of bnPairs(sweeps).filter((x) => x.bn.variant.seed === p.seeds[0])) {
    out.push(await matchedComparison(p, pair, condition, dataset));
  }
  return out;
}
