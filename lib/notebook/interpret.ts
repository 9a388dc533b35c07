/**
 * Interpretation text generated from the computed numbers: static prose cannot
 * know which way a run went, so the notebooks display these Markdown strings,
 * whose sentences depend on the results (direction, size, overlap of CIs,
 * models at chance, agreement with the paper).
 * @module
 */
import { averageNormalizedInterval, type SweepRow } from "../noise/stats.ts";
import { intervalsSeparate, type SeedInterval } from "../stats/mod.ts";
import type { VariantSweep } from "./study.ts";

/** The paper's average normalized accuracies on CIFAR-10 (%), Fagbohungbe & Qian 2022, Table/abstract. */
export const PAPER_CIFAR10 = {
  resnet: { model: "ResNet44", bn: 41.32, noBn: 91.95 },
  vgg: { model: "VGG16", bn: 10.75, noBn: 93.80 },
} as const;

/**
 * Average normalized accuracy over η > 0 with a 95% CI = lib/noise
 * `averageNormalizedInterval(rows)` (the project's one interval
 * implementation, lib/stats): draw k is paired across η, so each draw gives
 * one average; several models (training seeds) are combined over their
 * per-model means; one draw → NaN bounds; `singleModel` tells when the
 * result rests on one trained model.
 */
export function avgNormalizedCI(rows: SweepRow[]): SeedInterval {
  return averageNormalizedInterval(rows);
}

const pct = (x: number, d = 1) => Number.isFinite(x) ? (100 * x).toFixed(d) : "NaN";

/** Models whose clean accuracy is below twice chance: their normalized accuracy means little. */
export function nearChance(sweeps: VariantSweep[], chance: number): string[] {
  return sweeps.filter((s) => s.variant.trained.cleanAccuracy < 2 * chance).map((s) => s.variant.label);
}

function chanceCaveat(sweeps: VariantSweep[], chance: number, profile: string): string {
  const low = [...new Set(nearChance(sweeps, chance))];
  if (!low.length) return "";
  return `\n\n**Caution:** ${low.join(", ")} ${low.length > 1 ? "are" : "is"} barely above chance ` +
    `(clean accuracy below ${pct(2 * chance, 0)}%, chance ${pct(chance, 0)}%)` +
    `${profile === "smoke" ? " — expected for the `smoke` profile, which only checks the pipeline" : ""}. ` +
    `Normalized accuracy divides by the clean accuracy, so for such models it is noise around 100% and ` +
    `the comparisons above say nothing about BatchNorm. Use the \`quick\` or \`paper\` profile for real numbers.`;
}

/** One row of the BN-vs-no-BN table (notebook 01/04). */
export interface BnComparisonRow {
  [k: string]: string | number | null;
}

function family(model: string): "resnet" | "vgg" | undefined {
  return model.startsWith("resnet") ? "resnet" : model.startsWith("vgg") ? "vgg" : undefined;
}

/** Rows of the average-normalized-accuracy table beside the paper's numbers. */
export function bnComparisonRows(sweeps: VariantSweep[], withPaper: boolean): BnComparisonRow[] {
  return sweeps.map((s) => {
    const ci = avgNormalizedCI(s.result.rows);
    const fam = family(s.variant.model);
    const paper = withPaper && fam ? PAPER_CIFAR10[fam] : undefined;
    const hasBn = s.variant.bnLayers > 0;
    const row: BnComparisonRow = {
      model: s.variant.label,
      "BN layers": s.variant.bnLayers,
      "clean acc. (%)": 100 * s.variant.trained.cleanAccuracy,
      "avg. normalized acc. (%)": 100 * ci.mean,
      "95% CI": `${pct(ci.lo)}–${pct(ci.hi)}`,
    };
    if (withPaper) {
      row["paper model"] = paper ? `${paper.model}${hasBn ? " + BN" : " no BN"}` : null;
      row["paper avg. normalized acc. (%)"] = paper ? (hasBn ? paper.bn : paper.noBn) : null;
    }
    return row;
  });
}

/**
 * Markdown interpreting BN vs no-BN per architecture: direction and size of the
 * gap, whether the CIs separate, and agreement with the paper.
 */
export function interpretBnComparison(
  sweeps: VariantSweep[],
  opts: { chance: number; profile: string; paper: boolean; scale: string; targets: string[] },
): string {
  const models = [...new Set(sweeps.map((s) => s.variant.model))];
  const lines: string[] = [];
  for (const m of models) {
    const bn = sweeps.find((s) => s.variant.model === m && s.variant.bnLayers > 0);
    const no = sweeps.find((s) => s.variant.model === m && s.variant.bnLayers === 0);
    if (!bn || !no) continue;
    const a = avgNormalizedCI(bn.result.rows), b = avgNormalizedCI(no.result.rows);
    const gap = 100 * (b.mean - a.mean);
    const cleanBn = bn.variant.trained.cleanAccuracy, cleanNo = no.variant.trained.cleanAccuracy;
    if (cleanBn < 2 * opts.chance || cleanNo < 2 * opts.chance) {
      lines.push(
        `- **${bn.variant.label.replace(/ \+ BN$/, "")}**: not interpretable — clean accuracy ${
          pct(cleanBn)
        }% ` +
          `(BN) and ${pct(cleanNo)}% (no BN) are within twice chance (${
            pct(opts.chance, 0)
          }%), so the normalized ` +
          `accuracies (${pct(a.mean)}% vs ${pct(b.mean)}%) only measure noise.`,
      );
      continue;
    }
    // undefined (one draw: no interval) counts as "not separated"
    const separated = intervalsSeparate(a, b) === true;
    let verdict: string;
    if (!Number.isFinite(gap)) verdict = "cannot be compared (NaN accuracies)";
    else if (Math.abs(gap) < 2 || !separated) {
      verdict = `shows no clear difference (${pct(a.mean)}% with BN vs ${pct(b.mean)}% without; ` +
        `the 95% intervals ${separated ? "separate, but the gap is under 2 points" : "overlap"})`;
    } else if (gap > 0) {
      verdict = `is **less** noise-resistant with BN: ${pct(a.mean)}% vs ${pct(b.mean)}% without BN ` +
        `(${gap.toFixed(1)} points, 95% intervals separate)`;
    } else {
      verdict = `is **more** noise-resistant with BN: ${pct(a.mean)}% vs ${pct(b.mean)}% without BN ` +
        `(${(-gap).toFixed(1)} points, 95% intervals separate)`;
    }
    const fam = family(m);
    let paper = "";
    if (opts.paper && fam) {
      const ref = PAPER_CIFAR10[fam];
      const agree = gap >= 2 && separated;
      paper = ` The paper reports ${ref.bn}% vs ${ref.noBn}% for ${ref.model} ` +
        `(a ${(ref.noBn - ref.bn).toFixed(1)}-point gap): ${
          agree
            ? `same direction${
              Math.abs(gap - (ref.noBn - ref.bn)) > 15
                ? `, different size (${gap.toFixed(1)} points here)`
                : ", similar size"
            }.`
            : "our run does **not** reproduce that gap."
        }`;
    }
    lines.push(`- **${bn.variant.label.replace(/ \+ BN$/, "")}** ${verdict}.${paper}`);
  }
  const allNoise = opts.targets.includes("all") || opts.targets.includes("bn-var");
  const mechanism = allNoise
    ? "\n\nThe noise here goes on **every stored weight array, BN moving statistics included** " +
      "(targets: " + opts.targets.join(", ") +
      "). A noisy moving variance can turn negative, which makes the BN " +
      "output NaN and the accuracy drop to chance; notebook 03 separates that effect from noise on the kernels."
    : `\n\nNoise targets: ${opts.targets.join(", ")}.`;
  return `### What these numbers say\n\nAverage normalized accuracy = mean over the noise levels η > 0 of ` +
    `(noisy accuracy / clean accuracy); 95% intervals over the paired noise draws.\n\n${lines.join("\n")}` +
    mechanism + `\n\n**Scale:** ${opts.scale}` + chanceCaveat(sweeps, opts.chance, opts.profile);
}

/** Spearman rank correlation (ties get average ranks). */
export function spearman(x: number[], y: number[]): number {
  const rank = (v: number[]) => {
    const idx = v.map((val, i) => ({ val, i })).sort((a, b) => a.val - b.val);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length;) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1].val === idx[i].val) j++;
      for (let k = i; k <= j; k++) r[idx[k].i] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x), ry = rank(y);
  const mx = rx.reduce((a, b) => a + b, 0) / rx.length, my = ry.reduce((a, b) => a + b, 0) / ry.length;
  let num = 0, dx = 0, dy = 0;
  for (let i = 0; i < rx.length; i++) {
    num += (rx[i] - mx) * (ry[i] - my);
    dx += (rx[i] - mx) ** 2;
    dy += (ry[i] - my) ** 2;
  }
  return dx && dy ? num / Math.sqrt(dx * dy) : NaN;
}

/** Markdown interpreting normalized accuracy vs number of BN layers (notebook 02). */
export function interpretBnCount(
  sweeps: VariantSweep[],
  opts: { chance: number; profile: string; scale: string },
): string {
  const pts = sweeps.map((s) => ({ k: s.variant.bnLayers, ci: avgNormalizedCI(s.result.rows) }))
    .sort((a, b) => a.k - b.k);
  const rho = spearman(pts.map((p) => p.k), pts.map((p) => p.ci.mean));
  const first = pts[0], last = pts[pts.length - 1];
  let monotone = true;
  for (let i = 1; i < pts.length; i++) if (pts[i].ci.mean > pts[i - 1].ci.mean + 1e-9) monotone = false;
  let trend: string;
  const low = nearChance(sweeps, opts.chance);
  if (low.length) {
    trend = `Not interpretable: ${low.length} of ${sweeps.length} models are within twice chance, so their ` +
      `normalized accuracies (${
        pts.map((p) => `${p.k} BN: ${pct(p.ci.mean)}%`).join(", ")
      }) only measure noise ` +
      `(Spearman ρ = ${Number.isFinite(rho) ? rho.toFixed(2) : "NaN"} means nothing here).`;
  } else if (!Number.isFinite(rho)) trend = "No trend can be computed (constant or NaN values).";
  else if (rho <= -0.7) {
    trend =
      `Normalized accuracy **falls** as BN layers are added (Spearman ρ = ${rho.toFixed(2)}${
        monotone ? ", strictly non-increasing" : ", not strictly monotone"
      }): ${pct(first.ci.mean)}% with ${first.k} BN layers vs ${pct(last.ci.mean)}% with ${last.k}. ` +
      "This agrees with the paper's claim that the damage grows with the number of BN layers.";
  } else if (rho >= 0.7) {
    trend = `Normalized accuracy **rises** with more BN layers (Spearman ρ = ${rho.toFixed(2)}): ` +
      `${pct(first.ci.mean)}% with ${first.k} vs ${
        pct(last.ci.mean)
      }% with ${last.k} — the opposite of the paper's claim.`;
  } else {
    trend = `There is no consistent trend with the number of BN layers (Spearman ρ = ${rho.toFixed(2)}): ` +
      `${
        pts.map((p) => `${p.k}: ${pct(p.ci.mean)}%`).join(", ")
      }. The paper's monotone claim is not reproduced here.`;
  }
  const jumps = pts.slice(1).map((p, i) => ({ from: pts[i].k, to: p.k, d: p.ci.mean - pts[i].ci.mean }));
  const big = jumps.sort((a, b) => a.d - b.d)[0];
  const jump = !low.length && big && big.d < -0.05
    ? ` The largest single drop (${
      (-100 * big.d).toFixed(1)
    } points) comes between ${big.from} and ${big.to} BN layers.`
    : "";
  return `### What these numbers say\n\n${trend}${jump}\n\n**Scale:** ${opts.scale}` +
    chanceCaveat(sweeps, opts.chance, opts.profile);
}

/** Markdown interpreting the attribution conditions of notebook 03. */
export function interpretAttribution(
  byModel: {
    model: string;
    conditions: { key: string; label: string; rows: SweepRow[] }[];
    reference?: SweepRow[];
  }[],
  opts: { chance: number; profile: string; scale: string; nearChance: string[] },
): string {
  const out: string[] = [];
  for (const m of byModel) {
    if (opts.nearChance.includes(m.model)) {
      out.push(
        `- **${m.model}**: not interpretable — its clean accuracy is within twice chance, so every ` +
          "condition only measures noise.",
      );
      continue;
    }
    const v = (key: string) => {
      const c = m.conditions.find((c) => c.key === key);
      return c ? avgNormalizedCI(c.rows).mean : NaN;
    };
    const a = v("kernels"), b = v("affine"), c = v("stats"), d = v("all"), e = v("folded"), f = v("recal");
    const ref = m.reference ? avgNormalizedCI(m.reference).mean : NaN;
    const steps = [
      { what: "BN's affine parameters (γ, β)", d: a - b },
      { what: "BN's moving statistics (mean, variance)", d: b - c },
      { what: "the remaining arrays (biases, classifier)", d: c - d },
    ].filter((s) => Number.isFinite(s.d));
    const worst = [...steps].sort((x, y) => y.d - x.d)[0];
    const parts: string[] = [];
    parts.push(
      `kernels only ${pct(a)}%, + BN γ/β ${pct(b)}%, + BN statistics ${pct(c)}%, everything ${pct(d)}%`,
    );
    if (Number.isFinite(e)) parts.push(`BN folded first ${pct(e)}%`);
    if (Number.isFinite(f)) parts.push(`BN re-estimated after noise ${pct(f)}%`);
    if (Number.isFinite(ref)) parts.push(`the no-BN model (noise on everything) ${pct(ref)}%`);
    let culprit = "";
    if (worst && worst.d > 0.05) {
      culprit = ` The largest loss (${
        (100 * worst.d).toFixed(1)
      } points) comes from adding noise to **${worst.what}**.`;
    } else if (worst) {
      culprit = " No single part of BN accounts for a loss above 5 points.";
    }
    // Decompose the BN vs no-BN gap: how much of it is already there when only the kernels are
    // noisy (BN itself makes the network more sensitive), and how much noise on BN's stored
    // statistics adds on top (an artefact of perturbing arrays hardware would keep digital).
    let paper = "";
    const pts = (x: number) => (100 * x).toFixed(1);
    if (Number.isFinite(ref) && Number.isFinite(a) && Number.isFinite(d) && ref - d > 0.05) {
      const gap = ref - d, kernelsGap = Math.max(0, ref - a), stats = Math.max(0, b - c);
      const share = kernelsGap / gap;
      paper =
        ` Of the ${pts(gap)}-point gap to the no-BN model, ${pts(kernelsGap)} points remain with noise ` +
        `on the kernels only and ${pts(stats)} come from noise on BN's moving statistics.`;
      if (share >= 0.5) {
        paper +=
          " So most of the damage does not need noisy BN parameters at all: the BN-trained network is " +
          "itself more sensitive to kernel noise, **in line with the paper's reading**; noisy BN statistics " +
          "(which hardware would normally fold into the kernels or keep digital) make it worse.";
      } else {
        paper += " So most of the damage comes from perturbing BN's stored statistics — something hardware " +
          "would normally not do — which **disagrees with the paper's reading** that BN itself hurts noise " +
          "resistance.";
      }
      const fixes = [
        { what: "folding BN into the kernels before noise", x: e },
        { what: "re-estimating BN statistics after noise", x: f },
      ].filter((r) => Number.isFinite(r.x));
      for (const r of fixes) {
        const recovered = (r.x - d) / gap;
        paper += ` ${r.what[0].toUpperCase()}${r.what.slice(1)} recovers ${pct(recovered, 0)}% of the gap` +
          `${r.x >= ref - 0.02 ? " (as resistant as the no-BN model)" : ""}.`;
      }
    } else if (Number.isFinite(ref) && Number.isFinite(d) && d >= ref - 0.05) {
      paper = " Here the BN model is about as noise-resistant as the no-BN model (within 5 points), which " +
        "**does not reproduce** the paper's gap.";
    }
    // with a no-BN reference the gap decomposition says more than the largest single step
    out.push(`- **${m.model}**: ${parts.join("; ")}.${paper || culprit}`);
  }
  const caveat = opts.nearChance.length
    ? `\n\n**Caution:** ${opts.nearChance.join(", ")} ${
      opts.nearChance.length > 1 ? "are" : "is"
    } barely above ` +
      `chance${opts.profile === "smoke" ? " (the `smoke` profile only checks the pipeline)" : ""}; ` +
      "the attribution above is not meaningful for such models."
    : "";
  return `### Which part of BatchNorm causes the damage\n\nAverage normalized accuracy (η > 0) per condition; ` +
    `the same noise draws are used in every condition.\n\n${
      out.join("\n")
    }\n\n**Scale:** ${opts.scale}${caveat}`;
}
