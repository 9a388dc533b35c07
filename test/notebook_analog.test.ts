/**
 * Notebook 06's generated text (lib/notebook/analog.ts `interpretAnalog`): findings only when the
 * models reach minCleanAccuracy, the twins are within maxAccuracyGap and the intervals separate;
 * otherwise "inconclusive at this scale" or "no difference shown"; mitigations reported against no
 * mitigation with the same gating. Also the conditions of each role.
 */
import assert from "node:assert/strict";
import {
  analogConditions,
  type AnalogInput,
  analogNoiseProvenance,
  type AnalogSweep,
  analogTimesNote,
  interpretAnalog,
  resolveParams,
  studyProvenance,
  timeList,
} from "../lib/notebook/mod.ts";
import type { SweepRow } from "../lib/noise/mod.ts";
import type { Dataset } from "../lib/data/mod.ts";

const rowsOf = (id: string, values: number[], clean = 0.8): SweepRow[] =>
  values.map((v, k) => ({
    modelId: id,
    eta: 1,
    target: "all",
    form: "pcm",
    draw: k,
    accuracy: v * clean,
    cleanAccuracy: clean,
    normalizedAccuracy: v,
    nonFiniteShare: 0,
    scoring: "argmax-numpy",
  } as SweepRow));

const p = resolveParams("06", "smoke");
const T = 31536000;

function input(
  bnValues: number[],
  noBnValues: number[],
  clean = { bn: 0.8, noBn: 0.79, twin: 0.78 },
): AnalogInput {
  const sweeps: AnalogSweep[] = [];
  for (const c of analogConditions(p, "bn")) {
    const v = c.mitigation === "none" ? bnValues.map((x) => x - 0.3) : bnValues;
    sweeps.push({ role: "bn", condition: c, rows: rowsOf("bn", v) });
  }
  for (const c of analogConditions(p, "noBn")) {
    sweeps.push({ role: "noBn", condition: c, rows: rowsOf("no", noBnValues) });
  }
  for (const c of analogConditions(p, "twin")) {
    sweeps.push({ role: "twin", condition: c, rows: rowsOf("tw", bnValues) });
  }
  return { model: "ResNet-20", clean, sweeps };
}
const opts = { minClean: 0.7, maxGap: 0.05, profile: "quick", scale: "test scale.", times: [1, T] };

Deno.test("analog conditions: BN placements and mitigations per time; pcm, η = 1, every array", () => {
  const bn = analogConditions(p, "bn");
  assert.equal(bn.length, 5 * p.inferenceTimes.length);
  assert.ok(
    bn.every((c) => c.sweep.noiseType === "pcm" && c.sweep.etas?.[0] === 1 && c.sweep.targets?.[0] === "all"),
  );
  assert.deepEqual(new Set(bn.map((c) => c.placement)), new Set(["digital", "folded", "analog"]));
  assert.ok(bn.find((c) => c.mitigation === "compensation+bn-reestimation")!.recalibrate);
  assert.ok(bn.filter((c) => c.placement === "folded").every((c) => c.sweep.foldBN === true));
  assert.equal(analogConditions(p, "twin").length, p.inferenceTimes.length);
});

Deno.test("interpretAnalog: a finding when trained, matched and separated; the BN question per placement", () => {
  const text = interpretAnalog([input([0.6, 0.61, 0.62], [0.9, 0.91, 0.92])], opts);
  assert.match(
    text,
    /BN digital: \*\*Finding:\*\* with BN digital, BN is less noise-resistant under PCM noise by 30\.0 points/,
  );
  assert.match(text, /drift compensation 61\.0% \[[0-9.–]+\]: recovers 30\.0 points \(intervals separate\)/);
  assert.match(text, /read 1 year after programming/);
});

Deno.test("interpretAnalog: inconclusive below minCleanAccuracy or beyond maxAccuracyGap; overlap is no difference", () => {
  const low = interpretAnalog([
    input([0.6, 0.61, 0.62], [0.9, 0.91, 0.92], { bn: 0.5, noBn: 0.5, twin: 0.5 }),
  ], opts);
  assert.doesNotMatch(low, /\*\*Finding/);
  assert.match(low, /\*\*Inconclusive at this scale:\*\* .*not trained well enough/);
  assert.match(low, /inconclusive at this scale \(model below minCleanAccuracy\)/);
  const gap = interpretAnalog([
    input([0.6, 0.61, 0.62], [0.9, 0.91, 0.92], { bn: 0.9, noBn: 0.75, twin: 0.9 }),
  ], opts);
  assert.match(gap, /\*\*Inconclusive at this scale:\*\* .*differ by 15\.0 points of clean accuracy/);
  const same = interpretAnalog([input([0.6, 0.9, 0.75], [0.62, 0.88, 0.76])], opts);
  assert.match(same, /\*\*No difference shown:\*\*/);
  assert.doesNotMatch(same, /\*\*Finding/);
});

Deno.test("analog provenance: what the PCM sweeps used (model, mapping, η = 1, inference times), not the unused η grid", () => {
  const q = resolveParams("06", "quick");
  const fields = analogNoiseProvenance(q);
  assert.equal(
    fields.noise,
    "pcm (AIHWKit PCMLikeNoiseModel constants, per-layer mapping), η = 1 (the nominal device), " +
      "read 1 s, 1 day and 1 year after programming",
  );
  const data = { sourceLabel: "CIFAR-10, test copy" } as Dataset;
  const line = studyProvenance(q, data, [], { ...fields, cached: false });
  assert.match(
    line,
    / · noise: pcm \(.*\), η = 1 \(the nominal device\), read 1 s, 1 day and 1 year after programming, scoring argmax-numpy, evaluation fused (fp32|bf16) \([^)]*\), 3 draws per inference time and condition, noise seed 1 · /,
  );
  // the parameters' η grid (Gaussian noise, other notebooks) and its "draws/η" are not in it
  assert.doesNotMatch(line, /η ∈|draws\/η|additive-std/, line);
  // the other notebooks' provenance keeps the grid
  assert.match(
    studyProvenance(q, data, []),
    /additive-std on all, scoring argmax-numpy, evaluation fused (fp32|bf16) \([^)]*\), η ∈ \{0, 0\.05, .*\}, 3 draws\/η/,
  );
  // the evaluation path is named: quick evaluates fused (bf16 where it can), standard unfused
  assert.match(studyProvenance(resolveParams("06", "standard"), data, []), /, evaluation unfused, /);
  // the times come from the parameters
  const std = analogNoiseProvenance(resolveParams("06", "standard"));
  assert.match(std.noise, /read 1 s, 1 h, 1 day and 1 year after programming$/);
});

Deno.test("analog times note: the inference times of the parameters, those the profile leaves out, the x axis", () => {
  assert.equal(timeList([1]), "1 s");
  assert.equal(timeList([1, 31536000]), "1 s and 1 year");
  assert.equal(timeList([1, 3600, 86400]), "1 s, 1 h and 1 day");
  const quick = analogTimesNote(resolveParams("06", "quick"));
  assert.match(quick, /profile quick\): 1 s, 1 day and 1 year after programming/);
  assert.match(
    quick,
    /; 1 h, measured by the standard profile \(1 s, 1 h, 1 day and 1 year\), is left out here\./,
  );
  assert.match(quick, /\(0 = 1 s, 4\.9 = 1 day, 7\.5 = 1 year\)\.$/);
  const standard = analogTimesNote(resolveParams("06", "standard"));
  assert.match(
    standard,
    /: 1 s, 1 h, 1 day and 1 year after programming\. x: .*\(0 = 1 s, 3\.6 = 1 h, 4\.9 = 1 day, 7\.5 = 1 year\)\.$/,
  );
  assert.doesNotMatch(standard, /left out/);
  const two = analogTimesNote(resolveParams("06", "quick", { inferenceTimes: [1, 3600] }));
  assert.match(two, /: 1 s and 1 h after programming; 1 day and 1 year, .* are left out here/);
});

Deno.test("notebook 06: its prose names no fixed inference time; times and provenance come from the parameters", async () => {
  const path = new URL("../notebooks/06-analog-hardware.ipynb", import.meta.url);
  const cells: { cell_type: string; source: string[] | string }[] =
    JSON.parse(await Deno.readTextFile(path)).cells;
  const text = (c: { source: string[] | string }) => Array.isArray(c.source) ? c.source.join("") : c.source;
  for (const c of cells.filter((c) => c.cell_type === "markdown")) {
    assert.doesNotMatch(text(c), /\b1 (s|h|day|year)\b/, `a markdown cell lists fixed times:\n${text(c)}`);
  }
  const code = cells.filter((c) => c.cell_type === "code").map(text).join("\n");
  assert.match(code, /nb\.analogTimesNote\(P1\)/);
  assert.match(code, /\.\.\.nb\.analogNoiseProvenance\(P1\)/);
});
