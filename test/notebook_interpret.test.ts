/**
 * The generated interpretations must follow the numbers and state a finding only
 * when the models are trained well enough, compared at matched clean accuracy,
 * and the intervals support it; otherwise they say "inconclusive at this scale".
 */
import assert from "node:assert/strict";
import {
  interpretAttribution,
  interpretBnComparison,
  interpretBnCount,
  interpretTrajectory,
} from "../lib/notebook/interpret.ts";
import type { MatchedComparison, TrajectoryPoint } from "../lib/notebook/trajectory.ts";
import type { VariantSweep } from "../lib/notebook/study.ts";
import { averageNormalizedInterval, type SweepRow } from "../lib/noise/mod.ts";

/** Rows of one model: at η > 0 normalized accuracy `norm` ± 0.01 over 3 draws. */
function rows(norm: number, clean = 0.8, id = "m"): SweepRow[] {
  const out: SweepRow[] = [];
  for (const eta of [0, 0.1, 0.2]) {
    for (let draw = 0; draw < 3; draw++) {
      const n = eta === 0 ? 1 : norm + (draw - 1) * 0.01;
      out.push({
        modelId: id,
        eta,
        target: "x",
        form: "additive-std",
        draw,
        accuracy: clean * n,
        cleanAccuracy: clean,
        normalizedAccuracy: n,
        nonFiniteShare: 0,
      } as SweepRow);
    }
  }
  return out;
}

const trust = { minClean: 0.7, maxGap: 0.05 };
const etas = [0, 0.1, 0.2];

function sweep(model: string, bn: boolean, norm: number, clean: number): VariantSweep {
  const label = `${model}${bn ? " + BN" : " no BN"}`;
  return {
    variant: { model, key: label, label, bnLayers: bn ? 19 : 0, seed: 0, trained: { cleanAccuracy: clean } },
    snapshot: null,
    result: { cleanAccuracy: clean, rows: rows(norm, clean, label) },
    rows: [],
  } as unknown as VariantSweep;
}

function point(s: VariantSweep, epochs: number): TrajectoryPoint {
  return {
    variant: s.variant,
    snapshot: null,
    epochs,
    clean: s.result.cleanAccuracy,
    sweep: s,
    avgNormalized: averageNormalizedInterval(s.result.rows),
    nonFiniteShare: 0,
  };
}

function matched(bnEnd: VariantSweep, noEnd: VariantSweep, bnSnap: VariantSweep): MatchedComparison {
  const m = point(bnSnap, 1);
  return {
    bn: point(bnEnd, 2),
    noBn: point(noEnd, 2),
    matched: { bn: m, noBn: point(noEnd, 2), leader: "bn" },
    endGap: Math.abs(bnEnd.result.cleanAccuracy - noEnd.result.cleanAccuracy),
    matchedGap: Math.abs(bnSnap.result.cleanAccuracy - noEnd.result.cleanAccuracy),
  };
}

const opts = { ...trust, chance: 0.1, profile: "quick", paper: true, scale: "s", targets: ["all"], etas };

Deno.test("BN comparison: twins matched at the end, separate intervals => a finding, agreement with the paper", () => {
  const t = interpretBnComparison(
    [sweep("resnet20", true, 0.4, 0.8), sweep("resnet20", false, 0.9, 0.78)],
    [],
    opts,
  );
  assert.match(t, /\*\*Finding:\*\* BN is less noise-resistant, at the end of training/);
  assert.match(t, /same direction/);
  assert.match(t, /η ∈ \{0\.1, 0\.2\}/, "the eta grid of the average is stated");
});

Deno.test("BN comparison: a model below the clean-accuracy threshold => inconclusive, no paper claim", () => {
  const t = interpretBnComparison(
    [sweep("resnet20", true, 0.4, 0.72), sweep("resnet20", false, 0.9, 0.55)],
    [],
    opts,
  );
  assert.match(t, /Inconclusive at this scale:\*\* the no-BN model reaches only 55\.0%/);
  assert.match(t, /no comparison is claimed/);
  assert.doesNotMatch(t, /Finding/);
});

Deno.test("BN comparison: twins far apart and matched comparison disagreeing => inconclusive; agreeing => finding", () => {
  const bn = sweep("resnet20", true, 0.4, 0.9), no = sweep("resnet20", false, 0.9, 0.75);
  const far = interpretBnComparison([bn, no], [], opts);
  assert.match(far, /Inconclusive at this scale:\*\* the twins end 15\.0 points apart/);
  // at matched accuracy the BN snapshot is as robust as the no-BN model: directions disagree
  const disagree = interpretBnComparison(
    [bn, no],
    [matched(bn, no, sweep("resnet20", true, 0.9, 0.76))],
    opts,
  );
  assert.match(
    disagree,
    /at the end of training BN is less noise-resistant, at matched clean accuracy no difference between BN and no BN is shown/,
  );
  assert.match(disagree, /Inconclusive at this scale/);
  const agree = interpretBnComparison([bn, no], [matched(bn, no, sweep("resnet20", true, 0.5, 0.76))], opts);
  assert.match(
    agree,
    /\*\*Finding:\*\* BN is less noise-resistant, both at the end of training and at matched/,
  );
});

function attribution(v: Record<string, number>, refK: number, refA: number, clean = { bn: 0.8, noBn: 0.78 }) {
  const conditions = Object.entries(v).map(([key, n]) => ({ key, label: key, rows: rows(n) }));
  return interpretAttribution([{
    model: "ResNet-20 + BN",
    clean,
    conditions,
    reference: { kernels: rows(refK, 0.78, "r"), all: rows(refA, 0.78, "r") },
  }], { ...trust, chance: 0.1, profile: "quick", scale: "test scale", nearChance: [], etas });
}

Deno.test("attribution: kernel-only noise separates the twins => BN network itself more sensitive", () => {
  const t = attribution(
    { kernels: 0.58, affine: 0.58, stats: 0.49, all: 0.49, "folded-all": 0.52, recal: 0.70 },
    0.76,
    0.755,
  );
  assert.match(
    t,
    /\*\*Finding:\*\* the BN-trained network is itself more sensitive to noise on its kernels \(18\.0 points\)/,
  );
  assert.match(t, /no-BN twin keeps 75\.5% and the BN model 49\.0% \(26\.5 points apart\)/);
  assert.match(t, /\(b → c\) changes the BN model by -9\.0 points \(intervals separate\)/);
  assert.match(
    t,
    /Re-estimating BN statistics after the noise \(g\) gives 70\.0% \(79% of the gap; its interval separates from \(d\)'s\)/,
  );
});

Deno.test("attribution: statistics dominate => says so; kernel noise alone shows no clear difference", () => {
  const t = attribution({ kernels: 0.755, affine: 0.75, stats: 0.50, all: 0.50 }, 0.76, 0.755);
  assert.match(t, /Most of the gap comes from noise on BN's stored statistics/);
  assert.match(t, /\*\*No difference shown\*\* with noise on the kernels only/);
  assert.doesNotMatch(t, /Finding/);
});

Deno.test("attribution: under-trained twin => inconclusive, numbers still reported", () => {
  const t = attribution({ kernels: 0.58, affine: 0.58, stats: 0.49, all: 0.49 }, 0.76, 0.755, {
    bn: 0.8,
    noBn: 0.5,
  });
  assert.match(t, /Inconclusive at this scale:\*\* a model is below the 70% clean-accuracy threshold/);
  assert.doesNotMatch(t, /Finding/);
  assert.doesNotMatch(t, /Most of the gap/);
  assert.match(t, /Observed \(not a finding at this scale\)/);
  assert.match(t, /kernels: 58\.0%/);
});

Deno.test("BN count: a trend is a finding only at similar clean accuracies with separate end intervals", () => {
  const s = (k: number, norm: number, clean: number) => {
    const x = sweep("resnet20", k > 0, norm, clean);
    (x.variant as { bnLayers: number }).bnLayers = k;
    return x;
  };
  const o = { ...trust, chance: 0.1, profile: "quick", scale: "s", etas };
  const good = interpretBnCount([s(0, 0.9, 0.8), s(10, 0.6, 0.79), s(19, 0.4, 0.78)], o);
  assert.match(good, /\*\*Finding:\*\* normalized accuracy falls as BN layers are added/);
  const spread = interpretBnCount([s(0, 0.9, 0.72), s(10, 0.6, 0.79), s(19, 0.4, 0.85)], o);
  assert.match(
    spread,
    /Inconclusive at this scale:\*\* the models' clean accuracies differ by up to 13\.0 points/,
  );
});

Deno.test("trajectory: matched pairs above the threshold agree => finding; all below => inconclusive", () => {
  const bn = [
    point(sweep("resnet20", true, 0.5, 0.6), 0.5),
    point(sweep("resnet20", true, 0.45, 0.75), 1),
    point(sweep("resnet20", true, 0.4, 0.8), 2),
  ];
  const no = [point(sweep("resnet20", false, 0.9, 0.5), 0.5), point(sweep("resnet20", false, 0.88, 0.74), 2)];
  const o = { ...trust, chance: 0.1, profile: "quick", scale: "s", etas };
  const t = interpretTrajectory([{ model: "ResNet-20", bn, noBn: no }], o);
  assert.match(t, /1 BN points have a no-BN point within 5 points of clean accuracy: BN less robust in 1/);
  assert.match(
    t,
    /\*\*Finding:\*\* BN is less noise-resistant at every matched clean accuracy ≥ 70% \(1 pair\)/,
  );
  const low = interpretTrajectory([{ model: "ResNet-20", bn: bn.slice(0, 1), noBn: no.slice(0, 1) }], o);
  assert.match(low, /Inconclusive at this scale:\*\* no matched pair has both models at ≥ 70%/);
});

Deno.test("BN comparison: overlapping intervals are 'no difference shown', never a finding of equality", () => {
  const t = interpretBnComparison(
    [sweep("resnet20", true, 0.9, 0.8), sweep("resnet20", false, 0.905, 0.79)],
    [],
    opts,
  );
  assert.match(t, /\*\*No difference shown:\*\* the intervals overlap at the end of training/);
  assert.doesNotMatch(t, /Finding/);
  assert.match(t, /no comparison is claimed/);
});
