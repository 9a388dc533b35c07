/**
 * The building blocks the notebooks call, so that each notebook stays a few
 * lines per step: train (or load) a set of model variants with progress bars,
 * run cached noise sweeps per variant and condition, provenance and parameter
 * tables.
 * @module
 */
import { backendInfo, initBackend } from "../backend/mod.ts";
import type { Dataset } from "../data/mod.ts";
import { bnSlotCount, type BNSpec, loadModel } from "../models/mod.ts";
import {
  DEFAULT_SWEEP_CONFIG,
  fastPathLabel,
  noiseSweep,
  resolveFastPath,
  type SweepConfig,
  sweepData,
  sweepOptionsFor,
  type SweepResult,
  type SweepRow,
} from "../noise/mod.ts";
import {
  loadConfigDataset,
  loadSnapshotInto,
  resolveTrainConfig,
  type SnapshotInfo,
  type TrainedModel,
  trainOrLoad,
} from "../train/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { tracked } from "../util/pending.ts";
import { assertCurrent, generationOf, stamp } from "../util/session.ts";
import { libVersion, NUMERICS_VERSION } from "../util/version.ts";
import { cpuName } from "../util/machine.ts";
import { projectRoot } from "../util/paths.ts";
import { provenanceLine } from "../analysis/provenance.ts";
import { type DataFrame, table } from "../analysis/table.ts";
import { cachedSweep, legacySweepKey, sweepCacheKey } from "./cache.ts";
import type { NotebookParams } from "./profiles.ts";
import { sweepProgress, trainProgress } from "./progress.ts";
import { minCleanAccuracyFor, sweepConfigFor, trainConfigFor, widthFor } from "./profiles.ts";

/** One model to train: architecture + which BN layers it has. */
export interface Variant {
  /** Short stable key, e.g. "resnet20-bn". */
  key: string;
  /** Label used in charts and tables, e.g. "ResNet-20 + BN". */
  label: string;
  model: string;
  bn: BNSpec;
  /** Hardware-aware training noise (lib/train `TrainConfig.trainNoise`); absent/0 = ordinary training. */
  trainNoise?: number;
}

/** A variant with its trained (or loaded) model: one per training seed. */
export interface TrainedVariant extends Variant {
  /** The training seed of this model. */
  seed: number;
  trained: TrainedModel;
  /** BN layers actually in the model. */
  bnLayers: number;
  /** Total BN slots of the architecture. */
  bnSlots: number;
}

/** "resnet20" -> "ResNet-20", "vgg11" -> "VGG-11". */
export function prettyModel(name: string): string {
  const m = /^(resnet|vgg)(\d+)$/.exec(name);
  if (!m) return name;
  return `${m[1] === "resnet" ? "ResNet" : "VGG"}-${m[2]}`;
}

/** Each model with all BN layers and with none (notebooks 01, 03, 04). */
export function bnVariants(models: string[]): Variant[] {
  return models.flatMap((m) => [
    { key: `${m}-bn`, label: `${prettyModel(m)} + BN`, model: m, bn: "all" as BNSpec },
    { key: `${m}-nobn`, label: `${prettyModel(m)} no BN`, model: m, bn: "none" as BNSpec },
  ]);
}

/** BN layer counts for notebook 02: the given list, or 0, 1, ¼, ½, ¾, all of the model's BN slots. */
export function bnCountsFor(model: string, counts: number[] | null): number[] {
  const total = bnSlotCount(model);
  if (counts) {
    const bad = counts.filter((c) => c > total);
    if (bad.length) {
      throw new NoiselabError(
        `bnCounts: ${model} has only ${total} BN layers, got ${bad.join(", ")}`,
        "bnCounts",
      );
    }
    return [...new Set(counts)].sort((a, b) => a - b);
  }
  return [
    ...new Set([0, 1, Math.round(total / 4), Math.round(total / 2), Math.round((3 * total) / 4), total]),
  ]
    .sort((a, b) => a - b);
}

/** Variants of one model with the first k BN layers, for each k (notebook 02). */
export function bnCountVariants(model: string, counts: number[]): Variant[] {
  const total = bnSlotCount(model);
  return counts.map((k) => ({
    key: `${model}-bn${k}`,
    label: `${prettyModel(model)}, ${k}/${total} BN`,
    model,
    bn: (k === 0 ? "none" : k === total ? "all" : k) as BNSpec,
  }));
}

/** Select the backend of the parameters and load the data set (once per notebook). */
export function setupStudy(p: NotebookParams): Promise<{ backend: string; dataset: Dataset }> {
  assertCurrent("setupStudy", p);
  return tracked(
    "setupStudy",
    (async () => {
      const backend = await initBackend(p.backend);
      const cfg = resolveTrainConfig(trainConfigFor(p, p.models[0], "all"));
      const dataset = stamp(await loadConfigDataset(cfg), generationOf(p));
      return stamp({ backend, dataset }, generationOf(p));
    })(),
  );
}

/**
 * Train or load every variant once per training seed of the parameters (progress bar per model;
 * stored models load in seconds). Every config is validated before any training. Returns the
 * models variant by variant, seeds in the parameters' order.
 */
export function trainVariants(
  p: NotebookParams,
  variants: Variant[],
  dataset: Dataset,
): Promise<TrainedVariant[]> {
  assertCurrent("trainVariants", p, { dataset });
  return tracked("trainVariants", trainVariantsImpl(p, variants, dataset));
}

async function trainVariantsImpl(
  p: NotebookParams,
  variants: Variant[],
  dataset: Dataset,
): Promise<TrainedVariant[]> {
  const jobs = variants.flatMap((v) => p.seeds.map((seed) => ({ v, seed })));
  const cfgs = jobs.map(({ v, seed }) =>
    resolveTrainConfig({
      ...trainConfigFor(p, v.model, v.bn, seed),
      ...(v.trainNoise ? { trainNoise: v.trainNoise } : {}),
    })
  );
  const out: TrainedVariant[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const { v, seed } = jobs[i];
    const name = p.seeds.length > 1 ? `${v.label} (seed ${seed})` : v.label;
    const progress = trainProgress(`train ${name}`);
    const trained = await trainOrLoad(cfgs[i], { dataset, onProgress: progress, snapshots: p.snapshots });
    if (!trained) throw new NoiselabError(`training of ${name} stopped early`, "model");
    await progress.finish(
      trained.loaded
        ? `loaded from the store (${trained.id}), clean accuracy ${(100 * trained.cleanAccuracy).toFixed(2)}%`
        : `trained (${trained.id}), clean accuracy ${(100 * trained.cleanAccuracy).toFixed(2)}%`,
    );
    const slots = bnSlotCount(v.model);
    out.push({ ...v, seed, trained, bnLayers: trained.provenance.bnLayers, bnSlots: slots });
  }
  return stamp(out, generationOf(p));
}

/**
 * A noise condition of a sweep (notebook 03 compares several): what it sets on top of the parameters'
 * sweep config (lib/notebook `sweepConfigFor`).
 */
export interface SweepCondition {
  key: string;
  label: string;
  /**
   * lib/noise `SweepConfig` fields the condition sets: which arrays get noise (`targets`), BN folding,
   * and for notebook 06 the noise model (`noiseType: "pcm"`, `etas`, `inferenceTime`, `driftCompensation`,
   * `bnPlacement`).
   */
  sweep: Partial<SweepConfig>;
  /** Re-estimate BN statistics after the noise (per draw) from `recalibrateBatches` calibration batches. */
  recalibrate?: boolean;
}

/** The default condition of notebooks 01/02/04/05: the parameters' targets and noise type. */
export function defaultCondition(p: NotebookParams): SweepCondition {
  return {
    key: `targets-${p.noiseTargets.join("+")}`,
    label: `noise on ${p.noiseTargets.join(" + ")}`,
    sweep: { targets: [...p.noiseTargets], foldBN: false },
  };
}

/** Sweep rows with the variant/condition labels attached. */
export type LabelledRow = SweepRow & {
  series: string;
  variant: string;
  condition: string;
  bnLayers: number;
  /** Training seed of the model the row was measured on. */
  seed: number;
  /** Trajectory point: the snapshot's optimizer step, or null for the final model. */
  step: number | null;
};

/** A sweep of one variant (one training seed) under one condition. */
export interface VariantSweep {
  variant: TrainedVariant;
  condition: SweepCondition;
  result: SweepResult;
  fromCache: boolean;
  rows: LabelledRow[];
  /** The trajectory snapshot swept, or null for the final model. */
  snapshot: SnapshotInfo | null;
}

/**
 * Noise sweep of a trained variant on its test subset — the final model, or one of its
 * trajectory snapshots. The sweep is the lib/noise `SweepConfig` of the parameters and the
 * condition (`sweepConfigFor`); its images come from lib/noise `sweepData` (the model's test
 * subset; BN calibration images by the one rule `calibrationImages`, as in `noiselab noise`);
 * cached in `results/sweeps/` under `sweepCacheKey` (config hash, model id, snapshot step, data
 * copy and test subset, backend, numerics version: lib/notebook/cache.ts). Entries stored under
 * the key used before the config object are found and reused (`legacySweepKey`).
 */
export function sweepVariant(
  p: NotebookParams,
  tv: TrainedVariant,
  condition: SweepCondition,
  dataset: Dataset,
  opts: { series?: string; snapshot?: SnapshotInfo } = {},
): Promise<VariantSweep> {
  assertCurrent("sweepVariant", p, { trained: tv, dataset });
  return tracked(
    `sweepVariant(${tv.label})`,
    sweepVariantImpl(p, tv, condition, dataset, opts).then((
      sw,
    ) => (stamp(sw.rows, generationOf(p)), stamp(sw, generationOf(p)))),
  );
}

async function sweepVariantImpl(
  p: NotebookParams,
  tv: TrainedVariant,
  condition: SweepCondition,
  dataset: Dataset,
  opts: { series?: string; snapshot?: SnapshotInfo } = {},
): Promise<VariantSweep> {
  const snap = opts.snapshot ?? null;
  // the bf16 fast path where it cannot run is fp32, and keyed so (lib/noise resolveFastPath)
  const config = resolveFastPath(sweepConfigFor(p, condition));
  const { test, testSubset, calibration } = sweepData(config, dataset, tv.trained);
  const where = { modelId: tv.trained.id, snapshotStep: snap?.step ?? null, dataId: dataset.dataId };
  const key = sweepCacheKey({ config, ...where, testSubset });
  const legacyKeys = () => [legacySweepKey({ config, ...where, test, calibration })];
  const what = snap ? ` @ ${snap.epochs.toFixed(2)} epochs` : "";
  const progress = sweepProgress(`noise ${tv.label}${what}: ${condition.label}`);
  const { result, fromCache } = await cachedSweep(key, async () => {
    // a snapshot is evaluated on a separate copy of the model, so the final model stays untouched
    const model = snap ? await loadModel(tv.trained.path) : tv.trained.model;
    try {
      if (snap) await loadSnapshotInto(model, snap.path);
      const modelId = snap ? `${tv.trained.id}@${snap.step}` : tv.trained.id;
      return await noiseSweep(
        model,
        test,
        sweepOptionsFor(config, { modelId, calibration, onProgress: progress }),
      );
    } finally {
      if (snap) model.dispose();
    }
  }, { legacyKeys });
  await progress.finish(fromCache ? "loaded from the sweep cache" : "done");
  const series = opts.series ?? tv.label;
  return {
    variant: tv,
    condition,
    result,
    fromCache,
    snapshot: snap,
    rows: result.rows.map((r) => ({
      ...r,
      series,
      variant: tv.label,
      condition: condition.label,
      bnLayers: tv.bnLayers,
      seed: tv.seed,
      step: snap?.step ?? null,
    })),
  };
}

/** The trust thresholds of the parameters for the study's data set (lib/notebook/interpret `TrustThresholds`). */
export function trustOf(
  p: NotebookParams,
  dataset: Dataset,
): { minClean: number; maxGap: number; minCleanParam: string } {
  return {
    minClean: minCleanAccuracyFor(p, dataset.name),
    maxGap: p.maxAccuracyGap,
    minCleanParam: dataset.name === "cifar100" ? "minCleanAccuracy100" : "minCleanAccuracy",
  };
}

/** Chance accuracy of the data set (10% / 1%). */
export function chanceOf(dataset: Dataset): number {
  return 1 / dataset.numClasses;
}

/** The provenance line of a study's figures and tables. */
export function studyProvenance(
  p: NotebookParams,
  dataset: Dataset,
  variants: TrainedVariant[],
  extra: {
    noise?: string;
    /** The noise levels to list; null: none (a sweep that does not use the parameters' `etas`). */
    etas?: number[] | null;
    /** What the draws are per, when not per noise level (lib/analysis ProvenanceInfo `drawsPer`). */
    drawsPer?: string;
    cached?: boolean;
  } = {},
): string {
  const b = backendInfo();
  return provenanceLine({
    dataset: dataset.sourceLabel,
    trainSize: p.trainSize,
    testSize: variants[0]?.trained.test.n ?? p.testSize,
    models: variants.map((v) => ({ name: v.label, id: v.trained.id })),
    epochs: p.epochs,
    seed: p.seeds,
    noise: (extra.noise ?? `${p.noiseForm} on ${p.noiseTargets.join("+")}`) + `, scoring ${p.scoring}` +
      `, evaluation ${fastPathLabel(p.fastPath)}`,
    etas: extra.etas === null ? undefined : extra.etas ?? p.etas,
    draws: p.draws,
    drawsPer: extra.drawsPer,
    noiseSeed: p.noiseSeed,
    backend: `${b.name} (${b.threads} thread${b.threads === 1 ? "" : "s"})`,
    cpu: cpuName(),
    profile: p.profile,
    lib: `numerics v${NUMERICS_VERSION}, source ${libVersion()}`,
    extra: extra.cached !== undefined ? { sweeps: extra.cached ? "from cache" : "computed" } : undefined,
  });
}

/** The parameters in effect, as a two-column table (name, value). */
export function paramsTable(p: NotebookParams): DataFrame {
  return stamp(
    table(Object.entries(p).map(([k, v]) => ({ parameter: k, value: JSON.stringify(v) }))),
    generationOf(p),
  );
}

/** Clean accuracies of trained variants as a table. */
export function cleanAccuracyTable(variants: TrainedVariant[]): DataFrame {
  return table(variants.map((v) => ({
    model: v.label,
    "BN layers": `${v.bnLayers}/${v.bnSlots}`,
    "clean accuracy (%)": 100 * v.trained.cleanAccuracy,
    "train images": v.trained.provenance.trainSize,
    "test images": v.trained.test.n,
    epochs: v.trained.config.epochs,
    "params": v.trained.provenance.params,
    "model id": v.trained.id,
    source: v.trained.loaded ? "store" : "trained now",
  })));
}

/** " at width 8" / " (VGG-11 at width 32)" / "": the non-default widths of the models this notebook trains. */
function widthNote(p: NotebookParams): string {
  if (p.width === null) return "";
  if (typeof p.width === "number") return ` at width ${p.width}`;
  const named = p.models.filter((m) => widthFor(p, m) !== null).map((m) =>
    `${prettyModel(m)} at width ${widthFor(p, m)}`
  );
  return named.length ? ` (${named.join(", ")})` : "";
}

/** One sentence comparing this run's scale with the paper's. */
export function scaleStatement(p: NotebookParams): string {
  const full = p.trainSize >= 50000 && p.epochs >= 200;
  return `this run (profile \`${p.profile}\`) trains ${p.models.map(prettyModel).join(" and ")}` +
    `${widthNote(p)} on ${p.trainSize} training images for ${p.epochs} epoch${p.epochs === 1 ? "" : "s"} ` +
    `and evaluates on ${p.testSize} test images with ${p.draws} noise draw${
      p.draws === 1 ? "" : "s"
    } per level; ` +
    `the paper trained ResNet44 and VGG16 on all 50 000 images for about 200 epochs and evaluated on all 10 000. ` +
    (full
      ? "The scales match."
      : "Absolute numbers are therefore not comparable; the direction of the effects is what this run can test.");
}

/**
 * The noise conditions of notebook 03 (same draws throughout), each named by exactly which stored
 * arrays get noise. "kernels" = conv and dense weight matrices (projection shortcuts included);
 * "biases" = conv/dense biases; BN γ/β = the affine parameters; BN μ/σ² = the moving statistics.
 * Folding (Ioffe & Szegedy's inference form, lib/noise `foldBatchNorm`) turns each conv + BN into one
 * conv with kernel W·γ/√(σ²+ε) and bias β − γμ/√(σ²+ε) before the noise.
 */
export function attributionConditions(p: NotebookParams): SweepCondition[] {
  const conds: SweepCondition[] = [
    { key: "kernels", label: "(a) kernels only", sweep: { targets: ["kernels"] } },
    { key: "affine", label: "(b) kernels + BN γ, β", sweep: { targets: ["kernels", "bn-affine"] } },
    {
      key: "stats",
      label: "(c) kernels + BN γ, β, μ, σ²",
      sweep: { targets: ["kernels", "bn-affine", "bn-mean", "bn-var"] },
    },
    {
      key: "all",
      label: "(d) every stored array (kernels, biases, BN γ, β, μ, σ²)",
      sweep: { targets: ["all"] },
    },
    {
      key: "folded-kernels",
      label: "(e) BN folded; folded kernels only",
      sweep: { targets: ["kernels"], foldBN: true },
    },
    {
      key: "folded-all",
      label: "(f) BN folded; folded kernels + folded biases",
      sweep: { targets: ["all"], foldBN: true },
    },
  ];
  if (p.recalibrateBatches > 0) {
    conds.push({
      key: "recal",
      label: `(g) every stored array, then BN μ, σ² re-estimated (${p.recalibrateBatches}×` +
        `${DEFAULT_SWEEP_CONFIG.recalibrateBatchSize} training images)`,
      sweep: { targets: ["all"] },
      recalibrate: true,
    });
  }
  return conds;
}

/** The conditions the no-BN twins get in notebook 03 (their references): kernels only, and every array. */
export function referenceConditions(_p: NotebookParams): SweepCondition[] {
  return [
    { key: "kernels", label: "no-BN twin: kernels only", sweep: { targets: ["kernels"] } },
    {
      key: "all",
      label: "no-BN twin: every stored array (kernels, biases)",
      sweep: { targets: ["all"] },
    },
  ];
}

/**
 * Load the data set, or — when its files are missing — display a clear message
 * (where to put the files, how to fetch them) and return undefined, so the
 * notebook's remaining cells can skip their work without errors.
 */
export async function setupStudyOrExplain(
  p: NotebookParams,
): Promise<{ backend: string; dataset: Dataset } | undefined> {
  try {
    return await setupStudy(p);
  } catch (e) {
    if (!(e instanceof NoiselabError)) throw e;
    const { showMarkdown } = await import("../analysis/display.ts");
    const { CIFAR100_BINARY_URL } = await import("../data/mod.ts");
    const { dataDir } = await import("../util/paths.ts");
    const isC100 = p.dataset === "cifar100";
    await showMarkdown(
      `### ${
        isC100 ? "CIFAR-100" : "The data set"
      } is not available on this machine — this notebook stops here\n\n` +
        `The loader said:\n\n> ${e.message.replace(/\n/g, "\n> ")}\n\n` +
        (isC100
          ? `To run it, put the official binary release \`${CIFAR100_BINARY_URL.archive}\` ` +
            `(md5 \`${CIFAR100_BINARY_URL.md5}\`, from ${CIFAR100_BINARY_URL.url}) into \`${dataDir()}/\`, ` +
            `or its extracted folder \`${dataDir()}/${CIFAR100_BINARY_URL.folder}/\`; the loader checks the md5. ` +
            'On a machine with internet access, `loadDataset({ dataset: "cifar100", download: true })` ' +
            "(lib/data) fetches and verifies it. Then re-run this notebook.\n\n"
          : "") +
        "The remaining cells skip their work (no error) because no data was loaded.",
    );
    return undefined;
  }
}

/**
 * One line saying what a sweep cell did: how many sweeps, how many came from the cache, and where a
 * table was written (relative to the project root). Notebooks display it as the cell's last output.
 */
export function sweepsNote(sweeps: { fromCache: boolean }[], written: string[] = []): string {
  const cached = sweeps.filter((s) => s.fromCache).length;
  const files = written.map((w) => w.startsWith(projectRoot) ? w.slice(projectRoot.length + 1) : w);
  return `${sweeps.length} noise sweep${sweeps.length === 1 ? "" : "s"} (${cached} from the cache, ` +
    `${sweeps.length - cached} computed)${
      files.length ? `; written: ${files.map((f) => `\`${f}\``).join(", ")}` : ""
    }.`;
}
