/**
 * The configuration of a noise sweep: ONE object holding every knob of a Monte
 * Carlo weight-noise sweep, as lib/train's `TrainConfig` does for training.
 * {@link resolveSweepConfig} merges overrides onto {@link DEFAULT_SWEEP_CONFIG}
 * and validates every field before any work (a `NoiselabError` naming the
 * field); {@link sweepConfigHash} identifies it; the `noise` command's flags
 * (lib/cli/noise_flags.ts), the notebooks' sweep knobs (lib/notebook/profiles.ts
 * `sweepConfigFor`) and the sweep cache key (lib/notebook/cache.ts
 * `sweepCacheKey`) are derived from it.
 *
 * Terms: the noise level η (`etas`) scales the noise; the noise type says how
 * (σ = η·std(W) per tensor, η·max|W|, or W·(1 + η·z)); the targets say which
 * stored arrays get it; BN folding merges each BatchNorm into the convolution
 * before it first (the hardware view); BN re-estimation recomputes the moving
 * statistics after the noise from calibration images (lib/noise/inputs.ts
 * `calibrationImages` holds the one rule that picks them).
 *
 * ```ts
 * const cfg = resolveSweepConfig({ etas: [0, 0.1, 0.2], draws: 5, targets: ["all"] });
 * const res = await noiseSweep(model, test, sweepOptionsFor(cfg, { modelId: id }));
 * ```
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { hashObject } from "../util/hash.ts";
import { DEFAULT_SCORING_RULE, SCORING_RULES, type ScoringRule } from "../models/predict.ts";
import { NOISE_FORMS, NOISE_TARGETS, type NoiseForm, type NoiseSpec, type NoiseTarget } from "./inject.ts";
import { PCM_MAPPINGS, type PcmMapping } from "./models/pcm.ts";
import type { SweepOptions, SweepProgress } from "./sweep.ts";

/**
 * How the noise scales with the weights — the field's "noise type" (the type
 * lib/noise's `NoiseSpec.form` and the sweep rows' `form` hold):
 * `additive-std` W + η·std(W)·z (std per tensor, population; the paper's),
 * `additive-max` W + η·max|W|·z (AIHWKit's convention), `multiplicative`
 * W·(1 + η·z); z ~ N(0, 1) per element; `pcm` PCM-like inference noise at
 * `inferenceTime` (lib/noise/models/pcm.ts: programming noise, drift, 1/f read
 * noise, η scales programming and read noise; η = 1 is AIHWKit's nominal device;
 * conductances relative to max|W| per layer or per output channel, `pcmMapping`).
 */
export type NoiseType = NoiseForm;
/** Every noise type (= lib/noise `NOISE_FORMS`). */
export const NOISE_TYPES: readonly NoiseType[] = NOISE_FORMS;

/** Every knob of one noise sweep. All fields are part of {@link sweepConfigHash}. */
export interface SweepConfig {
  /**
   * Noise levels η (dimensionless; each finite and >= 0, at least one > 0: the
   * paper's average normalized accuracy is over η > 0). No default: required.
   */
  etas: number[];
  /** Monte Carlo draws per noise level (integer >= 1). Default 10. */
  draws: number;
  /**
   * Noise seed (integer >= 0). Draw k of level e perturbs tensor
   * `<layer>/<weight>` with the stream seeded `"<seed>:<e>:<k>:<layer>/<weight>"`,
   * the same for every model (paired comparisons). Also seeds the choice of the
   * calibration images (`recal:<seed>`). Default 0.
   */
  seed: number;
  /**
   * Which stored arrays get noise, all together in one sweep: `kernels`, `biases`,
   * `bn-affine` (γ, β), `bn-mean` (moving μ), `bn-var` (moving σ²), `all` (every
   * stored array). Duplicates are dropped, order kept (rows name them joined by
   * "+"). That they select something is checked later, per model (lib/noise
   * `sweepSelection`). Default ["kernels"].
   */
  targets: NoiseTarget[];
  /** The noise type ({@link NoiseType}). Default "additive-std" (the paper's). */
  noiseType: NoiseType;
  /**
   * How a logits row that is not all finite is scored (lib/models `ScoringRule`):
   * "argmax-numpy" (default: NumPy/Keras argmax, an all-NaN row predicts class 0,
   * the paper's framework) or "nonfinite-wrong".
   */
  scoring: ScoringRule;
  /**
   * BN folding: fold every BatchNorm into the convolution before it (kernel
   * W·γ/√(σ²+ε), bias β − γμ/√(σ²+ε)) and put the noise on the folded model.
   * Default false.
   */
  foldBN: boolean;
  /**
   * BN re-estimation after the noise, per draw: the number of calibration
   * batches (integer >= 0; 0 = off). Calibration images = `recalibrateBatches` ×
   * `recalibrateBatchSize` training images chosen by lib/noise/inputs.ts
   * `calibrationImages`. Cannot be combined with `foldBN` (the folded model has
   * no BN). Default 0.
   */
  recalibrateBatches: number;
  /** Images per calibration batch of BN re-estimation (integer >= 1). Default 128. */
  recalibrateBatchSize: number;
  /**
   * Test images the accuracy is measured on: null = the model's own test subset
   * (its training config's `testSize` and `subsetSeed`); a number = a stratified
   * subset of that size with the model's subset seed (integer >= 1; at most the
   * test split, checked per model). Default null.
   */
  testSize: number | null;
  /** Inference batch size (images per forward pass, integer >= 1; numbers do not depend on it). Default 500. */
  batchSize: number;
  /**
   * Where BN lives on the hardware: "analog" (BN arrays stored with the weights
   * and perturbed when the targets select them: the paper's probable setting and
   * this workspace's behaviour before the field existed; default), "digital"
   * (BN computed noise-free beside the crossbar: AIHWKit's default; BN arrays
   * never get noise) or "folded" (BN folded into the preceding convolution
   * before mapping: CrossSim's default; the same as `foldBN: true`, which it sets).
   */
  bnPlacement: BNPlacement;
  /** Clip each perturbed tensor at ±k·std(W) before mapping/noise (number >= 0; 0 = off). Default 0. */
  clipSigma: number;
  /**
   * `pcm` only: inference time in seconds after programming (>= 0; 1 h = 3600,
   * 1 day = 86400, 1 year = 31536000). Default 1.
   */
  inferenceTime: number;
  /** `pcm` only: global drift compensation (a scalar per tensor from a reference read-out). Default false. */
  driftCompensation: boolean;
  /**
   * `pcm` only: how weights are mapped to conductances (issue #13; lib/noise/models `PcmMapping`):
   * "per-layer" (max|W| of the tensor → g_max; default, the only mapping before the field existed)
   * or "per-channel" (max|W| of each output channel, the last axis → g_max; AIHWKit's
   * `MappingParameter.weight_scaling_columnwise`). Drift compensation stays one scalar per tensor.
   */
  pcmMapping: PcmMapping;
  /**
   * How each draw is evaluated (issue #11): "off" (the model as it is; default),
   * "fp32" (lib/models fused.ts: BN folded into the convs after the noise,
   * conv + bias + ReLU fused; equal up to float rounding, bitwise-equal rows on
   * the quick models) or "bf16" (the same with bf16 forward convolutions on the
   * onednn engine, fp32 where it cannot; rows within about 0.4 points). On the
   * engine, both run as one native plan per draw (lib/models native_plan.ts):
   * fp32 with the same bits as layer by layer, bf16 with bf16 activations
   * between layers. See lib/noise `SweepOptions.fastPath`.
   */
  fastPath: FastPath;
}

/**
 * The arithmetic of the bf16 fast path, part of a bf16 sweep's keys (lib/noise
 * `sweepKeyView`, `sweepKey`): "bf16-activations/per-image" — the engine's
 * native plans (lib/models native_plan.ts) keep activations in bf16 between
 * layers and fuse the residual add into the convolution, and only the images
 * whose ReLU inputs are not finite or bounded (lib/backend/engine plan.ts) run
 * layer by layer. History: before 2026-12-01 only convolution inputs were
 * rounded to bf16 (no such field); "bf16-activations" (2026-12-01, a few hours)
 * sent a whole batch layer by layer when one image needed it.
 */
export const BF16_FAST_PATH_ARITHMETIC = "bf16-activations/per-image";

/** Evaluation path of a sweep: see {@link SweepConfig.fastPath}. */
export type FastPath = "off" | "fp32" | "bf16";
/** Every evaluation path. */
export const FAST_PATHS: readonly FastPath[] = ["off", "fp32", "bf16"];

/** Where BN lives: see {@link SweepConfig.bnPlacement}. */
export type BNPlacement = "analog" | "digital" | "folded";
/** Every BN placement. */
export const BN_PLACEMENTS: readonly BNPlacement[] = ["analog", "digital", "folded"];

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

/**
 * The defaults: the `noise` command's since its first version (10 draws, seed
 * 0, additive-std on kernels, NumPy scoring, no folding, no re-estimation,
 * the model's test subset, batches of 500). `etas` has no default (empty =
 * required). The notebooks' profiles set their own values
 * (lib/notebook/profiles.ts `sweepConfigFor`).
 */
export const DEFAULT_SWEEP_CONFIG: Readonly<SweepConfig> = deepFreeze({
  etas: [],
  draws: 10,
  seed: 0,
  targets: ["kernels"],
  noiseType: "additive-std",
  scoring: DEFAULT_SCORING_RULE,
  foldBN: false,
  recalibrateBatches: 0,
  recalibrateBatchSize: 128,
  testSize: null,
  batchSize: 500,
  bnPlacement: "analog",
  clipSigma: 0,
  inferenceTime: 1,
  driftCompensation: false,
  pcmMapping: "per-layer",
  fastPath: "off",
} as SweepConfig);

/**
 * The fields added after sweeps were first stored (issue #13): left out of
 * {@link sweepKeyView} while at their defaults, so every older configuration
 * keeps its hash and cache key.
 */
const LATER_FIELDS: readonly (keyof SweepConfig)[] = [
  "bnPlacement",
  "clipSigma",
  "inferenceTime",
  "driftCompensation",
  "pcmMapping",
  "fastPath",
];

/**
 * The part of a resolved configuration that identifies it (hash and cache
 * key): every field, except the later fields while at their defaults and
 * `bnPlacement: "folded"` (which `foldBN: true` already says).
 */
export function sweepKeyView(c: SweepConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  for (const k of LATER_FIELDS) if (out[k] === DEFAULT_SWEEP_CONFIG[k]) delete out[k];
  if (c.bnPlacement === "folded") delete out.bnPlacement;
  // the compensation's read-out was corrected to AIHWKit's on 2026-11-30: sweeps with it get new keys
  if (c.driftCompensation) out.driftReadout = "aihwkit-eye-mean-abs";
  // bf16 sweeps run the engine's native plans with bf16 activations since 2026-12-01: new keys
  if (c.fastPath === "bf16") out.fastPathArithmetic = BF16_FAST_PATH_ARITHMETIC;
  return out;
}

/** The names of all sweep configuration fields, in {@link DEFAULT_SWEEP_CONFIG}'s order. */
export const SWEEP_CONFIG_KEYS: readonly (keyof SweepConfig)[] = Object.keys(
  DEFAULT_SWEEP_CONFIG,
) as (keyof SweepConfig)[];

/** One line per field (units and allowed values), for help texts (`noiselab help noise`). */
export const SWEEP_CONFIG_DOCS: Readonly<Record<keyof SweepConfig, string>> = Object.freeze({
  etas: "noise levels η, comma-separated, each >= 0, at least one > 0 (required)",
  draws: "Monte Carlo draws per noise level",
  seed: 'noise seed: draw k of level e uses the streams "S:e:k:<layer>/<weight>"',
  targets: `arrays that get noise: ${NOISE_TARGETS.join("|")}`,
  noiseType:
    "noise type: additive-std (σ = η·std(W) per tensor) | additive-max (η·max|W|) | multiplicative | pcm (PCM-like, η = 1 nominal)",
  scoring: `how a logits row with NaN/Inf is scored: ${SCORING_RULES.join(" | ")}`,
  foldBN: "BN folding: fold BN into the convs before adding noise",
  recalibrateBatches: "BN re-estimation after noise from K calibration batches of training images (0 = off)",
  recalibrateBatchSize: "images per calibration batch of BN re-estimation",
  testSize: "test images (default: the model's own test subset)",
  batchSize: "inference batch size",
  bnPlacement:
    "where BN lives: analog (stored and noised, as before) | digital (noise-free, AIHWKit) | folded (into the convs)",
  clipSigma: "clip each perturbed tensor at ±k·std(W) before the noise (0 = off)",
  inferenceTime: "pcm: time after programming the weights are read at: seconds or 1s/1h/1d/1y",
  driftCompensation: "pcm: global drift compensation per tensor from a reference read-out",
  pcmMapping:
    "pcm: conductances relative to max|W| per-layer | per-channel (each output channel; 1-D arrays per tensor)",
  fastPath:
    "evaluation: off | fp32 (BN folded after the noise, conv+bias+ReLU fused; rows equal off's on the quick " +
    "models) | bf16 (same, bf16 activations; not bitwise, rows within ~0.5 points; fp32 off the onednn engine " +
    'or without CPU bf16) — README "The sweep fast path"',
});

function bad(field: string, msg: string): NoiselabError {
  return new NoiselabError(`${field}: ${msg}`, field);
}

/** A value as an error message shows it (numbers as written, NaN included). */
function show(v: unknown): string {
  return typeof v === "number" ? String(v) : JSON.stringify(v);
}

function integer(c: Record<string, unknown>, k: keyof SweepConfig, min: number): void {
  const v = c[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw bad(k, `expected an integer >= ${min}, got ${show(v)}`);
  }
}

/**
 * Merge `partial` onto {@link DEFAULT_SWEEP_CONFIG} and validate every field:
 * the sweep's ONE validation, run before any model or data is loaded. Returns
 * a fresh object (arrays copied; `targets` without duplicates).
 *
 * Rules: `etas` a non-empty list of finite numbers >= 0 with at least one > 0;
 * `draws` integer >= 1; `seed` integer >= 0; `targets` a non-empty list of
 * {@link NOISE_TARGETS}; `noiseType` one of {@link NOISE_TYPES}; `scoring` one
 * of lib/models `SCORING_RULES`; `foldBN` boolean; `recalibrateBatches` integer
 * >= 0 and 0 when `foldBN`; `recalibrateBatchSize` and `batchSize` integers >= 1;
 * `bnPlacement` one of {@link BN_PLACEMENTS} ("folded" sets `foldBN`, `foldBN: true`
 * gives "folded", anything else with `foldBN: true` is an error); `clipSigma` and
 * `inferenceTime` numbers >= 0; `driftCompensation` boolean; `pcmMapping` one of
 * lib/noise/models `PCM_MAPPINGS`; `inferenceTime`, `driftCompensation` and
 * `pcmMapping` left at their defaults unless `noiseType` is "pcm";
 * `testSize` null or an integer >= 1. Whether the targets select a tensor of a
 * given model, and whether `testSize` fits its test split, are checked per
 * model (lib/noise `sweepSelection`, lib/noise/inputs.ts `sweepData`).
 * @throws NoiselabError naming the field (`subject` = the field name) on the first problem,
 *   including an unknown field.
 */
export function resolveSweepConfig(
  partial: Partial<SweepConfig> | Record<string, unknown> = {},
): SweepConfig {
  if (partial === null || typeof partial !== "object" || Array.isArray(partial)) {
    throw bad("config", "expected an object of sweep parameters");
  }
  for (const k of Object.keys(partial)) {
    if (!(SWEEP_CONFIG_KEYS as readonly string[]).includes(k)) {
      throw bad(k, `unknown sweep parameter '${k}'; known: ${SWEEP_CONFIG_KEYS.join(", ")}`);
    }
  }
  const c: Record<string, unknown> = { ...DEFAULT_SWEEP_CONFIG };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) c[k] = v;

  const etas = c.etas;
  if (Array.isArray(etas) && etas.length === 0) {
    throw bad("etas", "required: a non-empty list of noise levels η, e.g. [0, 0.1, 0.2]");
  }
  if (!Array.isArray(etas)) throw bad("etas", `expected a list of noise levels η, got ${show(etas)}`);
  for (const e of etas) {
    if (typeof e !== "number" || !Number.isFinite(e) || e < 0) {
      throw bad("etas", `each noise level η must be a finite number >= 0, got ${show(e)}`);
    }
  }
  if (!etas.some((e) => e > 0)) {
    throw bad(
      "etas",
      `needs at least one noise level > 0 (the average normalized accuracy is over η > 0), got ${
        etas.join(",")
      }`,
    );
  }
  integer(c, "draws", 1);
  integer(c, "seed", 0);
  const targets = c.targets;
  if (!Array.isArray(targets) || targets.length === 0) {
    throw bad("targets", `expected a non-empty list of ${NOISE_TARGETS.join(", ")}`);
  }
  for (const t of targets) {
    if (!(NOISE_TARGETS as readonly unknown[]).includes(t)) {
      throw bad("targets", `unknown target ${JSON.stringify(t)}; use ${NOISE_TARGETS.join(", ")}`);
    }
  }
  if (!(NOISE_TYPES as readonly unknown[]).includes(c.noiseType)) {
    throw bad(
      "noiseType",
      `unknown noise type ${JSON.stringify(c.noiseType)}; use ${NOISE_TYPES.join(", ")}`,
    );
  }
  if (!(SCORING_RULES as readonly unknown[]).includes(c.scoring)) {
    const shown = typeof c.scoring === "string" ? `'${c.scoring}'` : JSON.stringify(c.scoring);
    throw bad("scoring", `unknown scoring rule ${shown}; use ${SCORING_RULES.join(", ")}`);
  }
  if (typeof c.foldBN !== "boolean") {
    throw bad("foldBN", `expected true or false, got ${show(c.foldBN)}`);
  }
  if (!(BN_PLACEMENTS as readonly unknown[]).includes(c.bnPlacement)) {
    throw bad(
      "bnPlacement",
      `unknown BN placement ${JSON.stringify(c.bnPlacement)}; use ${BN_PLACEMENTS.join(", ")}`,
    );
  }
  if (c.bnPlacement === "folded") c.foldBN = true;
  else if (c.foldBN) {
    if (partial && (partial as Record<string, unknown>).bnPlacement !== undefined) {
      throw bad(
        "bnPlacement",
        `foldBN: true means bnPlacement "folded", got ${JSON.stringify(c.bnPlacement)}`,
      );
    }
    c.bnPlacement = "folded";
  }
  for (const k of ["clipSigma", "inferenceTime"] as const) {
    const v = c[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw bad(k, `expected a number >= 0, got ${show(v)}`);
    }
  }
  if (!(FAST_PATHS as readonly unknown[]).includes(c.fastPath)) {
    throw bad(
      "fastPath",
      `unknown evaluation path ${JSON.stringify(c.fastPath)}; use ${FAST_PATHS.join(", ")}`,
    );
  }
  if (typeof c.driftCompensation !== "boolean") {
    throw bad("driftCompensation", `expected true or false, got ${show(c.driftCompensation)}`);
  }
  if (!(PCM_MAPPINGS as readonly unknown[]).includes(c.pcmMapping)) {
    throw bad(
      "pcmMapping",
      `unknown conductance mapping ${JSON.stringify(c.pcmMapping)}; use ${PCM_MAPPINGS.join(", ")}`,
    );
  }
  if (c.noiseType !== "pcm") {
    for (const k of ["inferenceTime", "driftCompensation", "pcmMapping"] as const) {
      if (c[k] !== DEFAULT_SWEEP_CONFIG[k]) {
        throw bad(k, `applies to noiseType pcm only (noiseType is ${c.noiseType})`);
      }
    }
  }
  integer(c, "recalibrateBatches", 0);
  if ((c.recalibrateBatches as number) > 0 && c.foldBN) {
    throw bad(
      "recalibrateBatches",
      "BN re-estimation cannot be combined with BN folding (foldBN: the folded model has no BN)",
    );
  }
  integer(c, "recalibrateBatchSize", 1);
  if (c.testSize !== null) integer(c, "testSize", 1);
  integer(c, "batchSize", 1);
  return {
    ...(c as unknown as SweepConfig),
    etas: [...etas as number[]],
    targets: [...new Set(targets as NoiseTarget[])],
  };
}

/**
 * 16-hex hash of the resolved configuration (every field; `partial` is resolved
 * first, so defaults spelled out or left out hash the same). Part of the sweep
 * cache key (lib/notebook/cache.ts `sweepCacheKey`).
 * @throws NoiselabError as {@link resolveSweepConfig}
 */
export function sweepConfigHash(config: Partial<SweepConfig> | Record<string, unknown>): string {
  const c = resolveSweepConfig(config);
  return hashObject({ kind: "SweepConfig", config: sweepKeyView(c) }, 16);
}

/**
 * The lib/noise `NoiseSpec` of a configuration: noise type, targets, BN
 * folding, and (only when set, so older specs are unchanged) PCM inference
 * time and drift compensation, the per-channel PCM mapping, clipping, digital BN.
 */
export function noiseSpecOf(config: SweepConfig): NoiseSpec {
  const spec: NoiseSpec = { form: config.noiseType, targets: [...config.targets], foldBN: config.foldBN };
  if (config.noiseType === "pcm") {
    spec.pcm = { tInference: config.inferenceTime, driftCompensation: config.driftCompensation };
    if (config.pcmMapping !== "per-layer") spec.pcm.mapping = config.pcmMapping;
  }
  if (config.clipSigma > 0) spec.clipSigma = config.clipSigma;
  if (config.bnPlacement === "digital") spec.digitalBN = true;
  return spec;
}

/** The calibration images of BN re-estimation (lib/noise/inputs.ts `calibrationImages`). */
export interface CalibrationImages {
  /** NHWC float32, normalised with the model's statistics. */
  x: Float32Array;
  n: number;
  /** Where they come from (provenance), e.g. "512 training images (CIFAR-10, JPEG q75 copy)". */
  label: string;
}

/**
 * The options of lib/noise `noiseSweep` for a resolved configuration: how the
 * CLI and the notebooks run a sweep. `calibration` is required when
 * `config.recalibrateBatches > 0` (lib/noise/inputs.ts `calibrationImages`).
 * @throws NoiselabError naming `recalibrateBatches` when calibration images are missing
 */
export function sweepOptionsFor(
  config: SweepConfig,
  ctx: {
    modelId: string;
    calibration?: CalibrationImages;
    onProgress?: (p: SweepProgress) => void;
  },
): SweepOptions {
  let recalibrateBN: SweepOptions["recalibrateBN"];
  if (config.recalibrateBatches > 0) {
    if (!ctx.calibration) {
      throw bad(
        "recalibrateBatches",
        "BN re-estimation needs calibration images (lib/noise calibrationImages)",
      );
    }
    recalibrateBN = {
      x: ctx.calibration.x,
      batches: config.recalibrateBatches,
      batchSize: config.recalibrateBatchSize,
      label: ctx.calibration.label,
    };
  }
  return {
    etas: [...config.etas],
    draws: config.draws,
    seed: config.seed,
    spec: noiseSpecOf(config),
    scoring: config.scoring,
    batchSize: config.batchSize,
    modelId: ctx.modelId,
    ...(config.fastPath === "bf16"
      ? { fastPath: "bf16" as const }
      : config.fastPath === "fp32"
      ? { fastPath: true }
      : {}),
    recalibrateBN,
    onProgress: ctx.onProgress,
  };
}
