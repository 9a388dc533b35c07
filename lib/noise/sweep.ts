/**
 * Monte Carlo noise sweeps: for each noise level eta and draw k, perturb the
 * model, evaluate, restore. Draw k of eta e uses the random streams seeded
 * `${seed}:${e}:${k}:<layer>/<weight>` for every model, so models that share
 * layer names see the same noise (paired comparisons), and a sweep can skip
 * draws it finished before (resume, lib/noise/partial.ts) without changing
 * any number. Noise that perturbs nothing and a sweep without eta > 0 are
 * errors, never a normal-looking result. Long sweeps stop cleanly between
 * draws on Kernel > Interrupt (lib/util/interrupt.ts).
 * @module
 */
import { createHash } from "node:crypto";
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { interruptChecker, yieldToEventLoop } from "../util/interrupt.ts";
import { cpuName } from "../util/machine.ts";
import { libVersion, NUMERICS_VERSION } from "../util/version.ts";
import { backendInfo, storeBackendName } from "../backend/mod.ts";
import {
  countImages,
  DEFAULT_SCORING_RULE,
  evaluateLogits,
  resolveScoringRule,
  scoreLogits,
  type ScoringRule,
} from "../models/predict.ts";
import { fusedPredictLogits } from "../models/fused.ts";
import { type ConvPrecision, setConvPrecision } from "../backend/engine/precision.ts";
import { ENGINE_NAME } from "../backend/engine/name.ts";
import {
  checkEta,
  listWeights,
  type NoiseSpec,
  resolveNoiseSpec,
  selectWeights,
  snapshotWeights,
  type WeightRef,
  withNoise,
} from "./inject.ts";
import { BF16_FAST_PATH_ARITHMETIC, type SweepConfig } from "./config.ts";
import { foldBatchNorm } from "./fold.ts";
import { recalibrateBatchNorm } from "./recalibrate.ts";
import { averageNormalizedAccuracy, summarizeRows, type SweepRow, type SweepSummary } from "./stats.ts";
import {
  ambientSweepPartial,
  type PartialSweep,
  readPartialSweep,
  removePartialSweep,
  writePartialSweep,
} from "./partial.ts";

/** Evaluation data: NHWC Float32Array images and their labels. */
export interface SweepData {
  x: Float32Array;
  labels: ArrayLike<number>;
  /** Where the data came from (goes into provenance), e.g. "CIFAR-10 test, JPEG copy, 1000 images". */
  label?: string;
}

/** What an {@link Evaluator} reports: accuracy and the share of non-finite logits rows (both 0..1). */
export interface Evaluation {
  accuracy: number;
  nonFiniteShare: number;
}

/**
 * Accuracy (0..1) of `model` on `x` under the scoring rule `scoring`: THE
 * single place where the sweep evaluates a model, so a faster engine can be
 * swapped in via {@link SweepOptions.evaluate}. It may return a bare accuracy
 * (the rows' `nonFiniteShare` is then NaN: unknown) or an {@link Evaluation}.
 */
export type Evaluator = (
  model: tfl.LayersModel,
  x: Float32Array,
  labels: ArrayLike<number>,
  batchSize: number,
  scoring: ScoringRule,
) => Promise<number | Evaluation>;

/** Progress report after each draw (also for draws read back from the partial file). */
export interface SweepProgress {
  /** Draws finished so far (of `total` = etas × draws). */
  done: number;
  total: number;
  /** Noise level of this draw. */
  eta: number;
  draw: number;
  /** Accuracy of this draw and of the clean model, 0..1. */
  accuracy: number;
  cleanAccuracy: number;
  /** Share of the test images whose logits row is not all finite in this draw. */
  nonFiniteShare: number;
  /** True when the draw was read from the partial file of an earlier, interrupted run (not computed now). */
  resumed: boolean;
}

/** Options of {@link noiseSweep}. */
export interface SweepOptions {
  /** Noise levels (each finite, >= 0). */
  etas: number[];
  /** Monte Carlo draws per level (>= 1). */
  draws: number;
  /** Noise configuration (defaults: additive-std on kernels, no folding). */
  spec?: Partial<NoiseSpec>;
  /** Base seed of the noise streams. */
  seed: string | number;
  /** Id of the model (goes into every row). */
  modelId: string;
  onProgress?: (p: SweepProgress) => void;
  /** Inference batch size (default 500). */
  batchSize?: number;
  /** Replaces the default evaluator (`evaluateLogits` from lib/models). */
  evaluate?: Evaluator;
  /**
   * Evaluate through the fused inference path (lib/models `fusedEvaluate`):
   * per draw, BN folded into the preceding convs AFTER the noise, conv + bias
   * + ReLU fused. Faster, but the logits differ from the unfused model's by
   * float rounding (not bitwise), so it is opt-in and part of the sweep key
   * (only when set: existing keys are unchanged). NaN from noisy BN
   * statistics propagates as in the unfused model. `"bf16"`: the same with the
   * engine's forward convolutions in bf16 (inputs and weights rounded to bf16,
   * fp32 accumulation; lib/backend/engine `setConvPrecision`), where the
   * backend is the onednn engine and the CPU has bf16 dot products, else fp32
   * with a one-line notice (the key records the precision actually used).
   * Ignored when `evaluate` is given.
   */
  fastPath?: boolean | "bf16";
  /**
   * How logits rows that are not all finite are scored (lib/models
   * `ScoringRule`): "argmax-numpy" (default: NumPy/Keras argmax, an all-NaN
   * row predicts class 0) or "nonfinite-wrong".
   */
  scoring?: ScoringRule;
  /**
   * BN recalibration after noise (per draw): moving statistics re-estimated
   * from `batches` × `batchSize` (default 128) images of `x` (training images),
   * layer by layer with the noisy weights. `spec.recalibrateBN` (a number of
   * batches) is an alternative way to give `batches`.
   */
  recalibrateBN?: { x: Float32Array; batches?: number; batchSize?: number; label?: string };
  /**
   * Accept targets that select no tensor of the model. Default false: such a
   * sweep is a NoiselabError naming `targets` and the model, raised before any
   * evaluation. With true (for a caller that wants a "nothing perturbed"
   * reference on purpose) the sweep runs, and every row and the result carry
   * `nothingPerturbed: true`.
   */
  allowEmpty?: boolean;
  /**
   * Partial file that makes the sweep resumable (lib/noise/partial.ts): each
   * finished draw is saved to it atomically, a re-run of the same sweep skips
   * the draws (and the clean evaluation) found there, and the file is deleted
   * when the sweep completes. The rows equal an uninterrupted run's bitwise.
   * Default: the path an enclosing `withSweepPartial` provides (lib/notebook
   * `cachedSweep` does: `<cache entry>.partial.json`), else none; `false`: none.
   */
  partial?: string | false;
}

/** Result of a sweep. */
export interface SweepResult {
  rows: SweepRow[];
  summary: SweepSummary[];
  /** Mean over etas > 0 of the mean normalised accuracy (the paper's metric). */
  averageNormalizedAccuracy: number;
  cleanAccuracy: number;
  /** Share of non-finite logits rows of the clean (noise-free, possibly folded) model. */
  cleanNonFiniteShare: number;
  /**
   * True only for a sweep run with `allowEmpty` whose targets selected no
   * tensor: its rows are the clean model's (every row is marked too).
   */
  nothingPerturbed: boolean;
  /** Draws read back from a partial file of an interrupted run (0 when computed from scratch). */
  resumedDraws: number;
  provenance: {
    modelId: string;
    seed: string;
    etas: number[];
    draws: number;
    spec: NoiseSpec;
    /** How non-finite logits rows were scored. */
    scoring: ScoringRule;
    streams: string;
    data: string;
    /** {@link dataFingerprint} of the evaluation images and labels. */
    dataHash: string;
    images: number;
    /** What the targets selected in the (possibly folded) model (empty only with `allowEmpty`). */
    perturbed: { tensors: number; elements: number; names: string[] };
    recalibrateBN: { batches: number; batchSize: number; data: string } | null;
    /** Backend name (cpu, wasm, noiselab, tensorflow). */
    backend: string;
    backendThreads: number;
    backendDetail: string;
    /** CPU model (lib/util/machine `cpuName()`). */
    cpu: string;
    /** `NUMERICS_VERSION` of the code that computed the numbers (part of {@link sweepKey}). */
    numericsVersion: string;
    /**
     * How the draws were evaluated ({@link SweepOptions.fastPath} after the bf16 fallback): "off",
     * "fp32" or "bf16", in words as in provenance lines (lib/noise `fastPathLabel`), and for bf16 the
     * arithmetic its key names (lib/noise `BF16_FAST_PATH_ARITHMETIC`). Absent in results stored
     * before 2026-12-01.
     */
    evaluation?: { fastPath: "off" | "fp32" | "bf16"; label: string; arithmetic?: string };
    /** Hash of the lib/ sources (provenance only). */
    libVersion: string;
    date: string;
  };
}

/** The default evaluator: batched top-1 accuracy and non-finite share under `scoring`. */
export const defaultEvaluate: Evaluator = (model, x, labels, batchSize, scoring) =>
  evaluateLogits(model, x, labels, { batchSize, scoring });

/**
 * The fused evaluator ({@link SweepOptions.fastPath}): lib/models
 * `fusedPredictLogits` (a plan folded from the model's current, noisy
 * weights), scored like {@link defaultEvaluate}.
 */
export const fusedEvaluate: Evaluator = async (model, x, labels, batchSize, scoring) =>
  scoreLogits(
    await fusedPredictLogits(model, x, batchSize),
    labels,
    model.outputs[0].shape.at(-1) as number,
    scoring,
  );

/**
 * The fused evaluator with the engine's forward convolutions in bf16 for the
 * duration of the call ({@link SweepOptions.fastPath} `"bf16"`).
 */
export const fusedEvaluateBf16: Evaluator = async (model, x, labels, batchSize, scoring) => {
  setConvPrecision("bf16");
  try {
    return await fusedEvaluate(model, x, labels, batchSize, scoring);
  } finally {
    setConvPrecision("fp32");
  }
};

let bf16Noticed = false;

/**
 * The config with the evaluation path that will actually run: `config` itself unless it asks for the
 * bf16 fast path where bf16 cannot run (another backend than the onednn engine, or a CPU without bf16
 * dot products); then a copy with `fastPath: "fp32"` (one notice on stderr per process). Call it after
 * the backend is chosen and before a cache key is computed, so the key names the path that ran.
 * @param config a resolved sweep config (lib/noise `resolveSweepConfig`)
 */
export function resolveFastPath(config: SweepConfig): SweepConfig {
  if (config.fastPath !== "bf16") return config;
  return fastPathMode({ fastPath: "bf16" }) === "bf16" ? config : { ...config, fastPath: "fp32" };
}

/**
 * How a sweep with `fastPath` evaluates its draws here, in words for provenance lines: "unfused",
 * "fused fp32 (BN folded after the noise)" or "fused bf16 (bf16 activations and convolutions)" — the
 * latter only where bf16 can run (as {@link resolveFastPath}); on the onednn engine both fused paths
 * run as native plans (lib/models native_plan.ts).
 */
export function fastPathLabel(fastPath: SweepConfig["fastPath"]): string {
  const mode = fastPath === "off" ? false : fastPathMode({ fastPath: fastPath === "bf16" ? "bf16" : true });
  const native = backendInfo().name === ENGINE_NAME ? ", native plans" : "";
  return mode === false
    ? "unfused"
    : mode === "fp32"
    ? `fused fp32 (BN folded after the noise${native})`
    : `fused bf16 (bf16 activations and convolutions${native})`;
}

/** The fast path a sweep runs: false (unfused), "fp32" or "bf16" (only where the engine can). */
function fastPathMode(opts: { fastPath?: boolean | "bf16"; evaluate?: Evaluator }): false | ConvPrecision {
  if (!opts.fastPath || opts.evaluate) return false;
  if (opts.fastPath !== "bf16") return "fp32";
  if (backendInfo().name !== ENGINE_NAME) {
    if (!bf16Noticed) {
      bf16Noticed = true;
      console.error(`[noise] fastPath "bf16" needs the ${ENGINE_NAME} backend; using fp32`);
    }
    return "fp32";
  }
  const got = setConvPrecision("bf16");
  setConvPrecision("fp32");
  return got;
}

/**
 * 16-hex sha256 of the exact evaluation data (image bytes, then labels as
 * float64): changes with the data copy, the subset, the normalisation.
 */
export function dataFingerprint(x: Float32Array, labels: ArrayLike<number>): string {
  const h = createHash("sha256");
  h.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  h.update(new Uint8Array(Float64Array.from(labels).buffer));
  return h.digest("hex").slice(0, 16);
}

/** What a sweep would perturb: see {@link sweepSelection}. */
export interface SweepSelection {
  tensors: number;
  elements: number;
  names: string[];
}

function describeSelection(refs: WeightRef[]): SweepSelection {
  return {
    tensors: refs.length,
    elements: refs.reduce((a, w) => a + (w.variable.shape as number[]).reduce((p, d) => p * d, 1), 0),
    names: refs.map((w) => w.name),
  };
}

const BN_TARGETS: readonly string[] = ["bn-affine", "bn-mean", "bn-var"];

/**
 * The error for targets that select nothing, naming `targets`, the model and
 * why: the model has no BatchNorm layer, BN is folded away, or the model
 * simply has no such array.
 */
function emptySelectionError(spec: NoiseSpec, original: tfl.LayersModel, modelId: string): NoiselabError {
  const t = spec.targets.join("+");
  const hasBN = listWeights(original).some((w) => BN_TARGETS.includes(w.category));
  const onlyBN = spec.targets.every((x) => BN_TARGETS.includes(x));
  const why = !hasBN && onlyBN
    ? " (it has no BatchNorm layer)"
    : spec.digitalBN && onlyBN
    ? " with BN kept digital (bnPlacement digital: BN arrays get no noise)"
    : spec.foldBN
    ? " once BN is folded (the folded model has no BN arrays: use kernels, biases or all)"
    : ` (it has no ${t} array)`;
  return new NoiselabError(
    `targets: ${t} selects no weight tensor of ${modelId}${why}; ` +
      "the sweep would report the clean accuracy at every noise level",
    "targets",
  );
}

/**
 * The tensors a sweep with `spec` perturbs in `model` (after folding BN when
 * `spec.foldBN`; the folded copy is disposed). Throws a NoiselabError naming
 * `targets` and the model (`modelId`, default the model's name) when nothing
 * is selected. Lets callers fail before loading data.
 */
export function sweepSelection(
  model: tfl.LayersModel,
  spec: Partial<NoiseSpec>,
  modelId: string = model.name,
): SweepSelection {
  const s = resolveNoiseSpec(spec);
  const m = s.foldBN ? foldBatchNorm(model) : model;
  try {
    const refs = selectWeights(m, s.targets, { digitalBN: s.digitalBN });
    if (refs.length === 0) throw emptySelectionError(s, model, modelId);
    return describeSelection(refs);
  } finally {
    if (m !== model) m.dispose();
  }
}

/** Throws a NoiselabError naming `etas` unless some level is > 0 (the average is over etas > 0). */
export function checkNoisyEtas(etas: number[]): void {
  if (!etas.some((e) => e > 0)) {
    throw new NoiselabError(
      `etas: no noise level > 0 (got ${etas.join(", ")}); the average normalized accuracy is over etas > 0`,
      "etas",
    );
  }
}

/** Inputs of {@link sweepKey}. */
export interface SweepKeyInput {
  modelId: string;
  /** The evaluation data (fingerprinted) or its {@link dataFingerprint}. */
  data: { x: Float32Array; labels: ArrayLike<number> } | { dataHash: string };
  /** Id of the data copy the data came from (lib/data `Dataset.dataId`). */
  dataId?: string;
  etas: number[];
  draws: number;
  seed: string | number;
  spec?: Partial<NoiseSpec>;
  scoring?: ScoringRule;
  batchSize?: number;
  /** The fused evaluation path ({@link SweepOptions.fastPath}) as used; in the key only when set. */
  fastPath?: boolean | "bf16";
  /** Calibration images (fingerprinted) and batches of BN recalibration, or null. */
  recalibrateBN?: { x: Float32Array; batches?: number; batchSize?: number } | null;
  /** Backend name; default the current one (`backendInfo().name`). */
  backend?: string;
}

/**
 * A record of everything that can change a sweep's numbers, spelled out from
 * {@link noiseSweep}'s options: the model id, the exact evaluation data
 * (fingerprint) and its data copy id, noise levels, draws, seed, the resolved
 * noise spec, the scoring rule, the inference batch size, BN recalibration
 * (calibration-data fingerprint, batches, batch size), the backend name and the
 * version of the code that computes the numbers (`NUMERICS_VERSION` of
 * lib/util/version.ts, the project's explicit numerics version, bumped whenever
 * noise, evaluation, scoring or kernels change a number).
 *
 * Used as the identity of a sweep's partial file (lib/noise/partial.ts), and
 * it was the sweep cache key until the sweep got its config object: the cache
 * key is now lib/notebook/cache.ts `sweepCacheKey` (a hash of the resolved
 * `SweepConfig`, model, snapshot, test subset, backend, numerics version);
 * lib/notebook/cache.ts `legacySweepKey` rebuilds this record to find entries
 * stored under the old key. Hash it with lib/util `hashObject`.
 */
export function sweepKey(input: SweepKeyInput): Record<string, unknown> {
  const spec = resolveNoiseSpec(input.spec);
  const recal = input.recalibrateBN;
  const batches = recal?.batches ?? spec.recalibrateBN ?? 0;
  return {
    kind: "noiseSweep",
    modelId: input.modelId,
    data: "dataHash" in input.data ? input.data.dataHash : dataFingerprint(input.data.x, input.data.labels),
    dataId: input.dataId ?? null,
    etas: [...input.etas],
    draws: input.draws,
    seed: String(input.seed),
    spec: { ...spec, recalibrateBN: batches },
    scoring: resolveScoringRule(input.scoring),
    batchSize: input.batchSize ?? 500,
    recalibrateBN: recal && batches > 0
      ? { data: dataFingerprint(recal.x, []), batches, batchSize: recal.batchSize ?? 128 }
      : null,
    backend: storeBackendName(input.backend ?? backendInfo().name),
    numerics: NUMERICS_VERSION,
    // only when set, so the keys of every unfused sweep stay as they were
    ...(input.fastPath ? { fastPath: input.fastPath === "bf16" ? "bf16" : true } : {}),
    ...(input.fastPath === "bf16" ? { fastPathArithmetic: BF16_FAST_PATH_ARITHMETIC } : {}),
  };
}

function asEvaluation(r: number | Evaluation): Evaluation {
  return typeof r === "number" ? { accuracy: r, nonFiniteShare: NaN } : r;
}

/**
 * Run a Monte Carlo sweep over `etas` × `draws`. The model's weights are
 * restored bitwise after every draw (also on errors). All parameters are
 * validated before any evaluation: bad values, no eta > 0 (`etas`: the
 * result's average is over eta > 0) and targets that select no weight tensor
 * of the model (`targets`, unless `allowEmpty`) throw a NoiselabError naming
 * the parameter. Every row reports the share of non-finite logits rows.
 *
 * Resumable: with a partial file (`opts.partial`, or an enclosing
 * `withSweepPartial`) every finished draw is saved as it finishes and a
 * re-run skips it. Interruptible: between draws an interrupt of the notebook
 * kernel (lib/util/interrupt.ts) throws `InterruptedError`; the finished
 * draws stay in the partial file and the weights are restored.
 * @throws NoiselabError for bad input, InterruptedError on Kernel > Interrupt.
 */
export async function noiseSweep(
  model: tfl.LayersModel,
  data: SweepData,
  opts: SweepOptions,
): Promise<SweepResult> {
  const spec = resolveNoiseSpec(opts.spec);
  if (!Array.isArray(opts.etas) || opts.etas.length === 0) {
    throw new NoiselabError("etas: expected a non-empty list of noise levels", "etas");
  }
  opts.etas.forEach(checkEta);
  checkNoisyEtas(opts.etas);
  const scoring = resolveScoringRule(opts.scoring ?? DEFAULT_SCORING_RULE);
  if (!Number.isInteger(opts.draws) || opts.draws < 1) {
    throw new NoiselabError(`draws: expected a positive integer, got ${opts.draws}`, "draws");
  }
  if (opts.seed === undefined || opts.seed === null || opts.seed === "") {
    throw new NoiselabError("seed: required (noise streams are seeded)", "seed");
  }
  if (typeof opts.modelId !== "string" || !opts.modelId) {
    throw new NoiselabError("modelId: required (it labels every row)", "modelId");
  }
  const batchSize = opts.batchSize ?? 500;
  const n = countImages(model, data.x);
  if (data.labels.length !== n) {
    throw new NoiselabError(`labels: ${data.labels.length} labels for ${n} images`, "labels");
  }
  if (n === 0) throw new NoiselabError("x: no images to evaluate", "x");
  const recalBatches = opts.recalibrateBN?.batches ?? spec.recalibrateBN ?? 0;
  if (recalBatches > 0 || opts.recalibrateBN) {
    if (!opts.recalibrateBN?.x) {
      throw new NoiselabError("recalibrateBN: needs calibration images (recalibrateBN.x)", "recalibrateBN");
    }
    if (!(recalBatches >= 1)) throw new NoiselabError("recalibrateBN: batches must be >= 1", "recalibrateBN");
    if (spec.foldBN) {
      throw new NoiselabError(
        "recalibrateBN: cannot be combined with foldBN (the folded model has no BN)",
        "recalibrateBN",
      );
    }
    countImages(model, opts.recalibrateBN.x);
  }
  const fast = fastPathMode(opts);
  const evaluate = opts.evaluate ??
    (fast === "bf16" ? fusedEvaluateBf16 : fast === "fp32" ? fusedEvaluate : defaultEvaluate);
  // read before any await: an enclosing withSweepPartial's context
  const partialPath = opts.partial === false ? undefined : (opts.partial ?? ambientSweepPartial());

  const target = spec.targets.join("+");
  const seed = String(opts.seed);
  const checkInterrupt = interruptChecker(`noise sweep of ${opts.modelId} (${target})`);
  const m = spec.foldBN ? foldBatchNorm(model) : model;
  try {
    const selected = selectWeights(m, spec.targets, { digitalBN: spec.digitalBN });
    if (selected.length === 0 && !opts.allowEmpty) throw emptySelectionError(spec, model, opts.modelId);
    const nothingPerturbed = selected.length === 0;
    const dataHash = dataFingerprint(data.x, data.labels);
    const identity = partialPath
      ? {
        ...sweepKey({
          modelId: opts.modelId,
          data: { dataHash },
          etas: opts.etas,
          draws: opts.draws,
          seed,
          spec,
          scoring,
          batchSize,
          recalibrateBN: opts.recalibrateBN ?? null,
          fastPath: fast === "bf16" ? "bf16" : fast === "fp32",
        }),
        allowEmpty: Boolean(opts.allowEmpty),
      }
      : {};
    const previous = partialPath ? await readPartialSweep(partialPath, identity) : undefined;
    const finished = new Map<string, SweepRow>();
    for (const d of previous?.done ?? []) {
      const fits = opts.etas[d.i] === d.row?.eta && d.k === d.row.draw && d.k < opts.draws;
      if (fits) finished.set(`${d.i}:${d.k}`, d.row);
    }

    await yieldToEventLoop(0);
    checkInterrupt();
    const clean = previous?.clean ??
      asEvaluation(await evaluate(m, data.x, data.labels, batchSize, scoring));
    const cleanAccuracy = clean.accuracy;
    const state: PartialSweep = {
      kind: "noiseSweepPartial",
      version: 1,
      identity,
      clean: { accuracy: clean.accuracy, nonFiniteShare: clean.nonFiniteShare },
      done: (previous?.done ?? []).filter((d) => finished.get(`${d.i}:${d.k}`) === d.row),
      updatedAt: new Date().toISOString(),
    };
    const save = async () => {
      state.updatedAt = new Date().toISOString();
      await writePartialSweep(partialPath!, state);
    };
    if (partialPath && !previous) await save();

    const bnStats = listWeights(m).filter((w) => w.category === "bn-mean" || w.category === "bn-var");
    const rows: SweepRow[] = [];
    const total = opts.etas.length * opts.draws;
    let resumedDraws = 0;
    for (let i = 0; i < opts.etas.length; i++) {
      const eta = opts.etas[i];
      for (let k = 0; k < opts.draws; k++) {
        const before = finished.get(`${i}:${k}`);
        let row: SweepRow;
        if (before) {
          row = before;
          resumedDraws++;
        } else {
          await yieldToEventLoop(0);
          checkInterrupt();
          const ev = await withNoise(m, spec, eta, `${seed}:${eta}:${k}`, async (noisy) => {
            if (recalBatches < 1) {
              return asEvaluation(await evaluate(noisy, data.x, data.labels, batchSize, scoring));
            }
            const restoreStats = snapshotWeights(bnStats);
            try {
              await recalibrateBatchNorm(noisy, opts.recalibrateBN!.x, {
                batches: recalBatches,
                batchSize: opts.recalibrateBN!.batchSize ?? 128,
              });
              return asEvaluation(await evaluate(noisy, data.x, data.labels, batchSize, scoring));
            } finally {
              restoreStats();
            }
          });
          row = {
            modelId: opts.modelId,
            eta,
            target,
            form: spec.form,
            draw: k,
            accuracy: ev.accuracy,
            cleanAccuracy,
            normalizedAccuracy: ev.accuracy / cleanAccuracy,
            nonFiniteShare: ev.nonFiniteShare,
            scoring,
            ...(nothingPerturbed ? { nothingPerturbed: true as const } : {}),
          };
          if (partialPath) {
            state.done.push({ i, k, row });
            await save();
          }
        }
        rows.push(row);
        opts.onProgress?.({
          done: rows.length,
          total,
          eta,
          draw: k,
          accuracy: row.accuracy,
          cleanAccuracy,
          nonFiniteShare: row.nonFiniteShare,
          resumed: Boolean(before),
        });
      }
    }
    if (partialPath) await removePartialSweep(partialPath);
    return {
      rows,
      summary: summarizeRows(rows),
      averageNormalizedAccuracy: averageNormalizedAccuracy(rows),
      cleanAccuracy,
      cleanNonFiniteShare: clean.nonFiniteShare,
      nothingPerturbed,
      resumedDraws,
      provenance: {
        modelId: opts.modelId,
        seed,
        etas: [...opts.etas],
        draws: opts.draws,
        spec: recalBatches > 0 ? { ...spec, recalibrateBN: recalBatches } : spec,
        scoring,
        streams: `seedrandom alea, per tensor: "${seed}:<eta>:<draw>:<layer>/<weight>"`,
        data: data.label ?? "unlabelled data",
        dataHash,
        images: n,
        perturbed: describeSelection(selected),
        recalibrateBN: recalBatches > 0
          ? {
            batches: recalBatches,
            batchSize: opts.recalibrateBN!.batchSize ?? 128,
            data: opts.recalibrateBN!.label ?? "unlabelled data",
          }
          : null,
        backend: backendInfo().name,
        backendThreads: backendInfo().threads,
        backendDetail: backendInfo().detail,
        cpu: cpuName(),
        numericsVersion: NUMERICS_VERSION,
        evaluation: {
          fastPath: fast === false ? "off" : fast,
          label: fastPathLabel(fast === false ? "off" : fast),
          ...(fast === "bf16" ? { arithmetic: BF16_FAST_PATH_ARITHMETIC } : {}),
        },
        libVersion: libVersion(),
        date: new Date().toISOString(),
      },
    };
  } finally {
    if (m !== model) m.dispose();
  }
}
