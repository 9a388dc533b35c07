/**
 * The generated interpretation of notebook 03 must follow the numbers: which
 * share of the BN vs no-BN gap remains with kernel-only noise decides whether
 * the text agrees or disagrees with the paper's reading.
 */
import assert from "node:assert/strict";
import { interpretAttribution } from "../lib/notebook/interpret.ts";
import type { SweepRow } from "../lib/noise/mod.ts";

function rows(norm: number): SweepRow[] {
  const out: SweepRow[] = [];
  for (const eta of [0, 0.1, 0.2]) {
    for (let draw = 0; draw < 3; draw++) {
      const n = eta === 0 ? 1 : norm + (draw - 1) * 0.01;
      out.push({
        modelId: "m",
        eta,
        target: "x",
        form: "additive-std",
        draw,
        accuracy: 0.8 * n,
        cleanAccuracy: 0.8,
        normalizedAccuracy: n,
      } as SweepRow);
    }
  }
  return out;
}

function text(v: Record<string, number>, ref: number): string {
  const conditions = Object.entries(v).map(([key, n]) => ({ key, label: key, rows: rows(n) }));
  return interpretAttribution([{ model: "ResNet-20 + BN", conditions, reference: rows(ref) }], {
    chance: 0.1,
    profile: "quick",
    scale: "test scale",
    nearChance: [],
  });
}

Deno.test("attribution text: kernel-only gap dominates => in line with the paper, with the numbers", () => {
  const t = text({ kernels: 0.58, affine: 0.58, stats: 0.49, all: 0.49, folded: 0.52, recal: 0.70 }, 0.755);
  assert.match(t, /in line with the paper's reading/);
  assert.doesNotMatch(t, /disagrees/);
  assert.match(t, /Of the 26\.5-point gap to the no-BN model, 17\.5 points remain/);
  assert.match(t, /9\.0 come from noise on BN's moving statistics/);
  assert.match(t, /Re-estimating BN statistics after noise recovers 79% of the gap/);
});

Deno.test("attribution text: statistics dominate => disagrees with the paper", () => {
  const t = text({ kernels: 0.74, affine: 0.74, stats: 0.50, all: 0.50 }, 0.755);
  assert.match(t, /disagrees with the paper's reading/);
  assert.match(
    t,
    /Of the 25\.5-point gap to the no-BN model, 1\.5 points remain with noise on the kernels only and 24\.0 come from noise on BN's moving statistics/,
  );
  assert.doesNotMatch(t, /largest loss/, "with a no-BN reference, no separate 'largest step' sentence");
});

Deno.test("attribution text: no gap => says the paper's gap is not reproduced", () => {
  const t = text({ kernels: 0.76, affine: 0.76, stats: 0.75, all: 0.75 }, 0.755);
  assert.match(t, /does not reproduce/);
});
