/**
 * The project's one interval implementation (lib/stats/mod.ts) and its users:
 * n = 1 gives no interval, n = 2 uses t(0.975, 1) = 12.706, accuracies are
 * clipped to [0, 1], training seeds are combined over per-seed means, and the
 * sweep summaries, chart summaries and notebook prose all agree with it.
 */
import assert from "node:assert/strict";
import {
  accuracyInterval,
  combineSeeds,
  intervalsSeparate,
  meanInterval,
  normalizedBounds,
  tCritical,
  tQuantile,
} from "../lib/stats/mod.ts";
import * as noiseMod from "../lib/noise/mod.ts";
import * as analysisMod from "../lib/analysis/mod.ts";
import { averageNormalizedInterval, summarizeRows, type SweepRow } from "../lib/noise/mod.ts";
import { summarizeByEta } from "../lib/analysis/mod.ts";
import { avgNormalizedCI, interpretBnComparison } from "../lib/notebook/interpret.ts";
import type { VariantSweep } from "../lib/notebook/study.ts";

const close = (a: number, b: number, tol = 1e-9, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

Deno.test("t quantiles: jstat values of the standard table", () => {
  close(tQuantile(0.975, 1), 12.706205, 1e-5);
  close(tQuantile(0.975, 2), 4.302653, 1e-5);
  close(tQuantile(0.975, 4), 2.776445, 1e-5);
  close(tCritical(0.95, 1), 12.706205, 1e-5);
  close(tCritical(0.90, 10), 1.812461, 1e-5);
  assert.ok(Number.isNaN(tQuantile(0.975, 0)));
});

Deno.test("meanInterval: n = 0, n = 1 (undefined, never zero width), n = 2 (12.706), n = 5 by hand", () => {
  const e = meanInterval([]);
  assert.ok([e.mean, e.lo, e.hi, e.sd, e.halfWidth].every(Number.isNaN));
  assert.equal(e.n, 0);
  const one = meanInterval([0.7]);
  assert.equal(one.mean, 0.7);
  assert.equal(one.n, 1);
  assert.ok(Number.isNaN(one.lo) && Number.isNaN(one.hi), "n = 1: NaN bounds, not [0.7, 0.7]");
  assert.ok(Number.isNaN(one.sd) && Number.isNaN(one.halfWidth));
  // n = 2: mean 0.5, sd = 0.1·√2, half = 12.706 · sd / √2 = 1.2706
  const two = meanInterval([0.4, 0.6]);
  close(two.mean, 0.5);
  close(two.sd, 0.1 * Math.SQRT2, 1e-12);
  close(two.halfWidth, 12.706205 * 0.1, 1e-6, "n=2 half-width");
  close(two.lo, 0.5 - 1.2706205, 1e-6);
  close(two.hi, 0.5 + 1.2706205, 1e-6);
  // n = 5 by hand: sd² = 2.5, half = 2.776445 · √2.5 / √5
  const five = meanInterval([1, 2, 3, 4, 5]);
  const half = 2.776445 * Math.sqrt(2.5) / Math.sqrt(5);
  close(five.lo, 3 - half, 1e-5);
  close(five.hi, 3 + half, 1e-5);
  assert.equal(five.level, 0.95);
  // a NaN value is "broken", not dropped
  assert.ok(Number.isNaN(meanInterval([0.5, NaN, 0.6]).mean));
});

Deno.test("clipping: two draws at 5% and 45% give 0%..100%, not -229%..279%", () => {
  const raw = meanInterval([0.05, 0.45]);
  assert.ok(raw.lo < -2.2 && raw.hi > 2.7, `unclipped ${raw.lo}..${raw.hi}`);
  const a = accuracyInterval([0.05, 0.45]);
  assert.equal(a.lo, 0);
  assert.equal(a.hi, 1);
  close(a.mean, 0.25);
  close(a.halfWidth, raw.halfWidth, 0, "halfWidth is the unclipped t half-width");
  // a narrow interval is untouched by clipping
  const b = accuracyInterval([0.5, 0.51, 0.49]);
  close(b.lo, meanInterval([0.5, 0.51, 0.49]).lo, 0);
  // normalized accuracies: [0, 1 / min clean]
  assert.deepEqual(normalizedBounds([0.8, 0.5]), [0, 2]);
  assert.deepEqual(normalizedBounds([0]), [0, Infinity]);
  const n = meanInterval([0.1, 1.2], { bounds: normalizedBounds([0.8]) });
  assert.equal(n.lo, 0);
  assert.equal(n.hi, 1.25);
});

Deno.test("intervalsSeparate: undefined when either interval is undefined (n = 1)", () => {
  const a = meanInterval([0.2]), b = meanInterval([0.9]);
  assert.equal(intervalsSeparate(a, b), undefined, "two single draws far apart are NOT 'separate'");
  assert.equal(intervalsSeparate(a, meanInterval([0.9, 0.91, 0.92])), undefined);
  assert.equal(intervalsSeparate(meanInterval([0.1, 0.11, 0.12]), meanInterval([0.9, 0.91, 0.92])), true);
  assert.equal(intervalsSeparate(meanInterval([0.1, 0.5, 0.9]), meanInterval([0.4, 0.5, 0.6])), false);
});

Deno.test("combineSeeds: interval over per-seed means on (seeds − 1) df; one seed → draws + singleModel", () => {
  // seed A: draws 0.2, 0.4 (mean 0.3); seed B: 0.6, 0.7, 0.8 (mean 0.7); seed C: 0.5 (mean 0.5)
  const rows = [
    { seed: "A", value: 0.2 },
    { seed: "B", value: 0.6 },
    { seed: "A", value: 0.4 },
    { seed: "B", value: 0.7 },
    { seed: 7, value: 0.5 },
    { seed: "B", value: 0.8 },
  ];
  const c = combineSeeds(rows);
  assert.equal(c.seeds, 3);
  assert.equal(c.draws, 6);
  assert.equal(c.n, 3);
  assert.equal(c.singleModel, false);
  assert.equal(c.basis, "seeds");
  assert.deepEqual(c.perSeed.map((s) => [s.seed, s.n]), [["A", 2], ["B", 3], [7, 1]]);
  // per-seed means 0.3, 0.7, 0.5: mean 0.5, sd 0.2, half = t(0.975, 2) · 0.2 / √3
  close(c.mean, 0.5, 1e-12);
  close(c.sd, 0.2, 1e-12);
  close(c.halfWidth, 4.302653 * 0.2 / Math.sqrt(3), 1e-6);
  // NOT the pooled-draws interval (which would use df 5 and the draw spread)
  const pooled = meanInterval(rows.map((r) => r.value));
  assert.notEqual(c.halfWidth.toFixed(6), pooled.halfWidth.toFixed(6));
  // two seeds: t(0.975, 1) = 12.706
  const two = combineSeeds([{ seed: 1, value: 0.4 }, { seed: 1, value: 0.6 }, { seed: 2, value: 0.7 }]);
  close(two.mean, 0.6, 1e-12);
  close(two.halfWidth, 12.706205 * Math.sqrt(0.02) / Math.SQRT2, 1e-5);
  // clipping applies to the combined interval too
  const clipped = combineSeeds([{ seed: 1, value: 0.05 }, { seed: 2, value: 0.45 }], { bounds: [0, 1] });
  assert.deepEqual([clipped.lo, clipped.hi], [0, 1]);
  // one seed: falls back to the draws' interval and says so
  const single = combineSeeds([{ seed: "s", value: 0.4 }, { seed: "s", value: 0.6 }]);
  assert.equal(single.singleModel, true);
  assert.equal(single.basis, "draws");
  assert.equal(single.seeds, 1);
  assert.equal(single.n, 2);
  close(single.halfWidth, meanInterval([0.4, 0.6]).halfWidth, 0);
  // one seed, one draw: no interval
  const lone = combineSeeds([{ seed: "s", value: 0.4 }]);
  assert.ok(lone.singleModel && Number.isNaN(lone.lo) && Number.isNaN(lone.hi));
  const none = combineSeeds([]);
  assert.equal(none.seeds, 0);
  assert.equal(none.singleModel, false);
  assert.ok(Number.isNaN(none.mean));
});

Deno.test("one implementation: lib/noise and lib/analysis re-export the same functions", () => {
  for (const name of ["meanInterval", "combineSeeds", "intervalsSeparate", "tQuantile", "mean"] as const) {
    assert.equal(
      (noiseMod as Record<string, unknown>)[name],
      (analysisMod as Record<string, unknown>)[name],
      name,
    );
  }
  assert.equal(noiseMod.meanInterval, meanInterval);
});

function row(p: Partial<SweepRow> & { eta: number; draw: number; accuracy: number }): SweepRow {
  const clean = p.cleanAccuracy ?? 0.8;
  return {
    modelId: "m",
    target: "kernels",
    form: "additive-std",
    cleanAccuracy: clean,
    normalizedAccuracy: p.accuracy / clean,
    nonFiniteShare: 0,
    scoring: "argmax-numpy",
    ...p,
  };
}

Deno.test("summarizeRows: n = 1 → NaN bounds; clipped accuracy and normalized intervals; mean non-finite share", () => {
  const rows = [
    row({ eta: 0.1, draw: 0, accuracy: 0.05, nonFiniteShare: 1 }),
    row({ eta: 0.1, draw: 1, accuracy: 0.45, nonFiniteShare: 0 }),
    row({ eta: 0.2, draw: 0, accuracy: 0.3, nonFiniteShare: 0.5 }),
  ];
  const [a, b] = summarizeRows(rows);
  assert.deepEqual([a.lo, a.hi], [0, 1]);
  assert.equal(a.normalizedLo, 0);
  assert.equal(a.normalizedHi, 1 / 0.8);
  close(a.halfWidth, 12.706205 * 0.2, 1e-5);
  assert.equal(a.nonFiniteShare, 0.5);
  assert.equal(b.draws, 1);
  assert.ok(Number.isNaN(b.lo) && Number.isNaN(b.hi) && Number.isNaN(b.normalizedLo));
  assert.equal(b.nonFiniteShare, 0.5);
  assert.equal(a.scoring, "argmax-numpy");
  // rows scored under different rules are never pooled
  const mixed = summarizeRows([...rows, { ...rows[0], scoring: "nonfinite-wrong", accuracy: 0 }]);
  assert.equal(mixed.length, 3);
});

Deno.test("summarizeByEta (charts): clipped bounds, n = 1 → NaN, two trained models → interval over model means", () => {
  const rows = [
    row({ eta: 0.1, draw: 0, accuracy: 0.05 }),
    row({ eta: 0.1, draw: 1, accuracy: 0.45 }),
    row({ eta: 0.2, draw: 0, accuracy: 0.3 }),
  ];
  const s = summarizeByEta(rows, () => "A");
  assert.deepEqual([s[0].accuracyLo, s[0].accuracyHi], [0, 1]);
  assert.equal(s[0].singleModel, true);
  assert.ok(Number.isNaN(s[1].accuracyLo) && Number.isNaN(s[1].accuracyHi), "one draw: no band");
  // the same series from two trained models (model ids m1, m2): interval over their means
  const two = [
    row({ modelId: "m1", eta: 0.1, draw: 0, accuracy: 0.4 }),
    row({ modelId: "m1", eta: 0.1, draw: 1, accuracy: 0.6 }),
    row({ modelId: "m2", eta: 0.1, draw: 0, accuracy: 0.7 }),
  ];
  const t = summarizeByEta(two, () => "A")[0];
  assert.equal(t.seeds, 2);
  assert.equal(t.draws, 3);
  assert.equal(t.singleModel, false);
  close(t.accuracy, 0.6, 1e-12);
  close(t.accuracyHi, Math.min(1, 0.6 + 12.706205 * Math.sqrt(0.02) / Math.SQRT2), 1e-5);
});

Deno.test("average normalized interval: paired draws, η = 0 ignored, seeds combined, singleModel flag", () => {
  const rows = [
    row({ eta: 0, draw: 0, accuracy: 0.8 }),
    row({ eta: 0.1, draw: 0, accuracy: 0.4 }),
    row({ eta: 0.2, draw: 0, accuracy: 0.2 }),
    row({ eta: 0.1, draw: 1, accuracy: 0.6 }),
    row({ eta: 0.2, draw: 1, accuracy: 0.4 }),
  ];
  // draw 0: (0.5 + 0.25)/2 = 0.375; draw 1: (0.75 + 0.5)/2 = 0.625
  const ci = averageNormalizedInterval(rows);
  close(ci.mean, 0.5, 1e-12);
  assert.equal(ci.n, 2);
  assert.equal(ci.singleModel, true);
  close(ci.halfWidth, 12.706205 * sampleSd([0.375, 0.625]) / Math.SQRT2, 1e-5);
  assert.equal(ci.lo, 0, "clipped at 0");
  assert.deepEqual(avgNormalizedCI(rows), ci, "the notebook prose uses the same function");
  // a second trained model: per-model means 0.5 and 0.3 → interval on 1 df over the two
  const other = rows.map((r) => ({ ...r, modelId: "m2", normalizedAccuracy: r.normalizedAccuracy - 0.2 }));
  const both = averageNormalizedInterval([...rows, ...other]);
  assert.equal(both.seeds, 2);
  assert.equal(both.singleModel, false);
  close(both.mean, 0.4, 1e-12);
  close(both.halfWidth, 12.706205 * sampleSd([0.5, 0.3]) / Math.SQRT2, 1e-5);
  // one draw: the interval is undefined
  const lone = averageNormalizedInterval(rows.filter((r) => r.draw === 0));
  assert.ok(Number.isNaN(lone.lo) && Number.isNaN(lone.hi));
});

function sampleSd(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

Deno.test("notebook prose: single draws never count as 'intervals separate'", () => {
  const sweep = (label: string, bnLayers: number, norm: number, draws: number) =>
    ({
      variant: { model: "resnet20", key: label, label, bnLayers, seed: 0, trained: { cleanAccuracy: 0.9 } },
      snapshot: null,
      result: {
        cleanAccuracy: 0.9,
        rows: Array.from({ length: draws }, (_, d) =>
          [0, 0.1].map((eta) =>
            row({ eta, draw: d, accuracy: 0.9 * (eta ? norm + 0.001 * d : 1), cleanAccuracy: 0.9 })
          )).flat(),
      },
    }) as unknown as VariantSweep;
  const opts = {
    chance: 0.1,
    profile: "quick",
    paper: false,
    scale: "s",
    targets: ["all"],
    etas: [0, 0.1],
    minClean: 0.7,
    maxGap: 0.05,
  };
  const one = interpretBnComparison([sweep("R + BN", 19, 0.3, 1), sweep("R", 0, 0.9, 1)], [], opts);
  assert.doesNotMatch(one, /intervals separate/, one);
  assert.match(one, /Inconclusive:\*\* there is no interval \(a single noise draw/);
  // with several draws and a clear gap the intervals do separate
  const many = interpretBnComparison([sweep("R + BN", 19, 0.3, 3), sweep("R", 0, 0.9, 3)], [], opts);
  assert.match(many, /observed, BN less noise-resistant by 60\.0 points \(95% intervals separate\)/);
  assert.match(many, /\*\*Finding:\*\* BN is less noise-resistant, at the end of training/);
  assert.match(many, /rests on one trained model/);
});
