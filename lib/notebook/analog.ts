/**
 * Notebook 06 (issue #13): the notebook-01 models under PCM-like inference
 * noise (lib/noise/models/pcm.ts) at several times after programming, with BN
 * digital / folded / analog, and the mitigations side by side — the sweep
 * conditions ({@link analogConditions}), the chart points
 * ({@link analogTimePoints}), the provenance's noise part ({@link analogNoiseProvenance}), the sentence on
 * the inference times ({@link analogTimesNote}) and the generated text ({@link interpretAnalog}),
 * gated as lib/notebook/interpret.ts gates notebooks 01-03: a statement is a
 * finding only when the models reach `minCleanAccuracy`, the compared models
 * are within `maxAccuracyGap` of clean accuracy, and the 95% intervals
 * separate by at least {@link MIN_GAP_POINTS} points; otherwise the text says
 * "inconclusive at this scale" and why.
 *
 * Every sweep has η = 1 (AIHWKit's nominal PCM device: programming and read
 * noise at their published scale), noise on every stored array the placement
 * leaves analog (`targets: ["all"]`), and the same draws (streams) at every
 * time, so the curves over time are paired.
 * @module
 */
import type { BNPlacement, SweepRow } from "../noise/mod.ts";
import { averageNormalizedInterval } from "../noise/stats.ts";
import { intervalsSeparate, type SeedInterval } from "../stats/mod.ts";
import { MIN_GAP_POINTS, type TrustThresholds, verdict } from "./interpret.ts";
import { type NotebookParams, profileParams, sweepConfigFor } from "./profiles.ts";
import type { SweepCondition } from "./study.ts";

/** The mitigations of notebook 06 on the BN model with BN digital (the baseline is "none"). */
export type AnalogMitigation = "none" | "compensation" | "compensation+bn-reestimation" | "noise-training";

/** A notebook-06 sweep condition: one inference time, one BN placement, one mitigation. */
export interface AnalogCondition extends SweepCondition {
  time: number;
  placement: BNPlacement;
  mitigation: AnalogMitigation;
}

/** "1 s", "1 h", "1 day", "1 year", or seconds. */
export function timeLabel(t: number): string {
  const named: [number, string][] = [[1, "1 s"], [3600, "1 h"], [86400, "1 day"], [31536000, "1 year"]];
  return named.find(([s]) => s === t)?.[1] ?? `${t} s`;
}

/** "1 s", "1 s and 1 year", "1 s, 1 day and 1 year" ({@link timeLabel} of each, in the given order). */
export function timeList(times: number[]): string {
  const l = times.map(timeLabel);
  return l.length <= 1 ? l.join("") : `${l.slice(0, -1).join(", ")} and ${l.at(-1)}`;
}

/**
 * Notebook 06's sentence on the inference times, from the parameters (right in every profile): the
 * times this run measures, those of the standard profile it leaves out (the quick profile drops 1 h), and
 * the chart's x axis (log10 seconds) at each measured time.
 */
export function analogTimesNote(p: NotebookParams): string {
  const times = p.inferenceTimes;
  const standard = profileParams("06", "standard").inferenceTimes;
  const left = standard.filter((t) => !times.includes(t));
  const axis = times.map((t) => `${Math.log10(t).toFixed(1).replace(/^-?0\.0$/, "0")} = ${timeLabel(t)}`);
  return `Inference times of this run (\`inferenceTimes\`, profile ${p.profile}): ${timeList(times)} after ` +
    `programming${
      left.length
        ? `; ${timeList(left)}, measured by the standard profile (${timeList(standard)}), ${
          left.length === 1 ? "is" : "are"
        } left out here`
        : ""
    }. x: log10 of the seconds after programming (${axis.join(", ")}).`;
}

/**
 * The noise part of notebook 06's provenance line, for lib/notebook `studyProvenance(p, dataset,
 * variants, { ...analogNoiseProvenance(p), cached })`: what the PCM sweeps used — the PCM model and its
 * mapping, η = 1 (the nominal device) and the parameters' inference times — instead of the parameters' η
 * grid and Gaussian noise form, which these sweeps do not use; the draws are per inference time and
 * condition.
 */
export function analogNoiseProvenance(p: NotebookParams): { noise: string; etas: null; drawsPer: string } {
  const sweep = sweepConfigFor(p, analogConditions(p, "bn")[0]);
  return {
    noise: `pcm (AIHWKit PCMLikeNoiseModel constants, ${sweep.pcmMapping} mapping), η = ${
      sweep.etas.join(", ")
    } (the nominal device), read ${timeList(p.inferenceTimes)} after programming`,
    etas: null,
    drawsPer: "inference time and condition",
  };
}

function condition(
  t: number,
  placement: BNPlacement,
  mitigation: AnalogMitigation,
): AnalogCondition {
  const comp = mitigation !== "none";
  return {
    key: `pcm-${t}-${placement}-${mitigation}`,
    label: `BN ${placement}, ${mitigation === "none" ? "no mitigation" : mitigation}`,
    time: t,
    placement,
    mitigation,
    recalibrate: mitigation === "compensation+bn-reestimation",
    sweep: {
      noiseType: "pcm",
      etas: [1],
      targets: ["all"],
      inferenceTime: t,
      driftCompensation: comp,
      bnPlacement: placement,
      foldBN: placement === "folded",
    },
  };
}

/**
 * The conditions of one model role at every inference time of the parameters:
 * `bn` (the notebook-01 BN model): BN digital / folded / analog with drift
 * compensation, BN digital without any mitigation, and BN digital with
 * compensation + BN re-estimation; `noBn` (its BN-free twin): with and
 * without compensation; `twin` (the noise-trained BN model): BN digital with
 * compensation.
 */
export function analogConditions(p: NotebookParams, role: "bn" | "noBn" | "twin"): AnalogCondition[] {
  const out: AnalogCondition[] = [];
  for (const t of p.inferenceTimes) {
    if (role === "bn") {
      out.push(condition(t, "digital", "compensation"));
      out.push(condition(t, "folded", "compensation"));
      out.push(condition(t, "analog", "compensation"));
      out.push(condition(t, "digital", "none"));
      out.push(condition(t, "digital", "compensation+bn-reestimation"));
    } else if (role === "noBn") {
      out.push({ ...condition(t, "analog", "compensation"), label: "no BN, compensation" });
      out.push({ ...condition(t, "analog", "none"), label: "no BN, no mitigation" });
    } else {
      out.push({
        ...condition(t, "digital", "compensation"),
        mitigation: "noise-training",
        label: "noise-trained, BN digital, compensation",
      });
    }
  }
  return out;
}

/** One measured condition: the model's role, its condition and its sweep rows. */
export interface AnalogSweep {
  role: "bn" | "noBn" | "twin";
  condition: AnalogCondition;
  rows: SweepRow[];
}

/** Normalized accuracy (mean over draws, 95% CI) of a sweep. */
export function analogInterval(rows: SweepRow[]): SeedInterval {
  return averageNormalizedInterval(rows);
}

/** Points of the normalized-accuracy-vs-time chart (x = log10 seconds; y, lo, hi in %). */
export function analogTimePoints(
  sweeps: AnalogSweep[],
  seriesOf: (s: AnalogSweep) => string | undefined,
): { series: string; x: number; y: number; lo: number; hi: number }[] {
  const out = [];
  for (const s of sweeps) {
    const series = seriesOf(s);
    if (!series) continue;
    const ci = analogInterval(s.rows);
    out.push({ series, x: Math.log10(s.condition.time), y: 100 * ci.mean, lo: 100 * ci.lo, hi: 100 * ci.hi });
  }
  return out;
}

const pct = (x: number) => Number.isFinite(x) ? (100 * x).toFixed(1) : "NaN";
const show = (i: SeedInterval) =>
  `${pct(i.mean)}% [${
    Number.isFinite(i.lo) && Number.isFinite(i.hi) ? `${pct(i.lo)}–${pct(i.hi)}` : "no interval"
  }]`;

/** What {@link interpretAnalog} reads for one architecture. */
export interface AnalogInput {
  /** e.g. "ResNet-20". */
  model: string;
  clean: { bn: number; noBn: number; twin: number };
  sweeps: AnalogSweep[];
}

/**
 * The generated text of notebook 06: per architecture, (1) the paper's question under PCM noise —
 * does the BN model keep less of its accuracy than the BN-free twin with BN digital, folded or analog
 * (drift-compensated; at the longest inference time) — and (2) how much each mitigation recovers on
 * the BN model with BN digital against no mitigation (at the longest time), each number with its 95%
 * interval; findings only under the gating of the module JSDoc.
 */
export function interpretAnalog(
  inputs: AnalogInput[],
  opts: TrustThresholds & { profile: string; scale: string; times: number[] },
): string {
  const out: string[] = [];
  const tLast = Math.max(...opts.times);
  const at = (a: AnalogInput, role: AnalogSweep["role"], placement: BNPlacement, mit: AnalogMitigation) =>
    a.sweeps.find((s) =>
      s.role === role && s.condition.time === tLast && s.condition.placement === placement &&
      s.condition.mitigation === mit
    );
  out.push(
    `PCM-like noise (AIHWKit's PCMLikeNoiseModel constants, nominal device η = 1), read ${
      timeLabel(tLast)
    } ` +
      `after programming unless said otherwise; normalized accuracy = noisy / clean accuracy, mean over the ` +
      `paired draws with its 95% interval.`,
  );
  for (const a of inputs) {
    const minParam = opts.minCleanParam ?? "minCleanAccuracy";
    const bnOk = a.clean.bn >= opts.minClean, noOk = a.clean.noBn >= opts.minClean;
    const gap = Math.abs(a.clean.bn - a.clean.noBn);
    const lines: string[] = [];
    const noBnSweep = at(a, "noBn", "analog", "compensation");
    const noBnCi = noBnSweep ? analogInterval(noBnSweep.rows) : undefined;
    for (const placement of ["digital", "folded", "analog"] as const) {
      const s = at(a, "bn", placement, "compensation");
      if (!s || !noBnCi) continue;
      const bnCi = analogInterval(s.rows);
      const v = verdict(bnCi, noBnCi);
      const nums = `${show(bnCi)} with BN ${placement} vs ${show(noBnCi)} without BN`;
      let verdictText: string;
      if (!bnOk || !noOk) {
        verdictText = `**Inconclusive at this scale:** ${nums}; the models are not trained well enough ` +
          `(clean ${pct(a.clean.bn)}% / ${pct(a.clean.noBn)}%, ${minParam} ${pct(opts.minClean)}%).`;
      } else if (gap > opts.maxGap) {
        verdictText = `**Inconclusive at this scale:** ${nums}; the twins differ by ${
          pct(gap)
        } points of clean accuracy (more than maxAccuracyGap ${pct(opts.maxGap)}).`;
      } else if (v.kind === "less" || v.kind === "more") {
        verdictText = `**Finding:** with BN ${placement}, BN is ${v.kind === "less" ? "less" : "more"} ` +
          `noise-resistant under PCM noise by ${Math.abs(v.gapPoints).toFixed(1)} points: ${nums} ` +
          `(95% intervals separate).`;
      } else {
        verdictText = `**No difference shown:** ${nums} (the intervals overlap, the gap is under ` +
          `${MIN_GAP_POINTS} points, or there is no interval; overlap is not evidence of equality).`;
      }
      lines.push(`  - BN ${placement}: ${verdictText}`);
    }
    // mitigations on the BN model, BN digital, against no mitigation
    const base = at(a, "bn", "digital", "none");
    const mits: string[] = [];
    if (base) {
      const baseCi = analogInterval(base.rows);
      mits.push(`no mitigation ${show(baseCi)}`);
      const cands: [string, AnalogSweep | undefined, boolean][] = [
        ["drift compensation", at(a, "bn", "digital", "compensation"), bnOk],
        ["compensation + BN re-estimation", at(a, "bn", "digital", "compensation+bn-reestimation"), bnOk],
        [
          "noise-trained twin (+ compensation)",
          at(a, "twin", "digital", "noise-training"),
          bnOk && a.clean.twin >= opts.minClean,
        ],
      ];
      for (const [name, s, ok] of cands) {
        if (!s) continue;
        const ci = analogInterval(s.rows);
        const gain = 100 * (ci.mean - baseCi.mean);
        const sep = intervalsSeparate(ci, baseCi) === true && Math.abs(gain) >= MIN_GAP_POINTS;
        const word = !ok
          ? "inconclusive at this scale (model below " + minParam + ")"
          : sep
          ? `${gain > 0 ? "recovers" : "loses"} ${Math.abs(gain).toFixed(1)} points (intervals separate)`
          : "no recovery shown (intervals overlap or gap under " + MIN_GAP_POINTS + " points)";
        mits.push(`${name} ${show(ci)}: ${word}`);
      }
    }
    out.push(
      `- **${a.model}** (clean: BN ${pct(a.clean.bn)}%, no BN ${pct(a.clean.noBn)}%, ${
        Number.isFinite(a.clean.twin)
          ? `noise-trained BN ${pct(a.clean.twin)}%`
          : "no noise-trained twin in this profile (trainNoise 0)"
      }); does BN hurt once it is kept digital, folded, or left analog (drift-compensated)?\n` +
        lines.join("\n") +
        (mits.length ? `\n  - Mitigations (BN digital, ${timeLabel(tLast)}): ${mits.join("; ")}.` : ""),
    );
  }
  out.push(
    `Scale: ${opts.scale} Constants: AIHWKit PCMLikeNoiseModel defaults (g_max 25 µS, programming-noise ` +
      `polynomial 0.26348 + 1.9650·x − 1.1731·x², t0 20 s, t_read 250 ns, Q_s 0.0088, drift lines as in ` +
      `aihwkit/inference/noise/pcm.py; see lib/noise/models/pcm.ts).`,
  );
  return out.join("\n\n");
}
