/**
 * Parameter profiles of the notebooks: `smoke` (pipeline check, seconds per
 * notebook, results meaningless), `quick` (the main job: a reduced but honest
 * study, about 20 minutes on 2 cores), `standard` (full training split, models
 * trained to 90%+, three training seeds: many hours on 2 cores, resumable),
 * `paper` (the paper's scale: ResNet-44/VGG-16, 200 epochs — days on a CPU).
 *
 * THE TABLE BELOW IS THE ONLY PLACE THE SIZES LIVE. A notebook's `parameters`
 * cell names a profile and may override any single value.
 * @module
 */
import { canonicalBackendName } from "../backend/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { type FastPath, type NoiseType, resolveSweepConfig, type SweepConfig } from "../noise/config.ts";
import type { NoiseTarget } from "../noise/inject.ts";
import type { ScoringRule } from "../models/predict.ts";
import { bnSlotCount, parseModelName } from "../models/build.ts";

/** Profile names. */
export type ProfileName = "smoke" | "quick" | "standard" | "paper";
/** The notebooks (file name prefixes under notebooks/). */
export type NotebookId = "01" | "02" | "03" | "04" | "05" | "06";

/** Every knob a notebook reads. Training fields map 1:1 onto lib/train's TrainConfig. */
export interface NotebookParams {
  profile: ProfileName;
  /** Data set and copy (lib/data). */
  dataset: "cifar10" | "cifar100";
  source: "auto" | "jpeg" | "binary";
  /** Architectures; notebooks 01/03/04/05 train each with and without BN. */
  models: string[];
  /**
   * Base width: null = each architecture's default (ResNet 16, VGG 64); a number applies to every
   * model; an object sets it per model name (e.g. `{ vgg11: 32 }`; models not named keep their default).
   */
  width: number | null | Record<string, number>;
  /**
   * ResNet shortcut where the shape changes: "projection" (1x1 conv, no BN: the Keras CIFAR-10 ResNet v1
   * example the paper most likely used; its kernels get noise) or "A" (He et al.'s parameter-free one).
   */
  shortcut: "A" | "projection";
  /**
   * BN-free ResNet branches: last conv initialised to zero ("zero", Fixup-style) or He-normal / √blocks
   * ("scaled": ~6 points better after 100 000 images, results/recipe/README.md).
   */
  residualInit: "zero" | "scaled";
  /** BN epsilon and momentum (Keras defaults 1e-3 / 0.99, the paper's framework; PyTorch 1e-5 / 0.9). */
  bnEpsilon: number;
  bnMomentum: number;
  /** Stratified training subset and test subset sizes (full split: 50000 / 10000). */
  trainSize: number;
  testSize: number;
  epochs: number;
  batchSize: number;
  optimizer: "sgd" | "adam";
  /** Peak learning rate; SGD momentum 0.9 (lib default). */
  lr: number;
  /**
   * Peak learning rate of the models WITHOUT any BN layer (null = `lr`): BN-free nets do not tolerate the
   * BN models' rate (ResNet-20 / VGG-11 without BN at 0.2 trained to 25% after one epoch, at 0.1 to 39-42%).
   */
  lrNoBN: number | null;
  nesterov: boolean;
  /** L2 weight decay on conv/dense kernels. */
  weightDecay: number;
  schedule: "constant" | "step" | "cosine" | "onecycle";
  labelSmoothing: number;
  augment: boolean;
  /**
   * Training arithmetic (lib/train `TrainConfig.precision`): "bf16" mixed precision (bf16 convolutions, fp32
   * master weights, BN and loss) where the engine and CPU have it — elsewhere fp32, with a notice — or "fp32".
   */
  precision: "fp32" | "bf16";
  /** Training seeds: every variant is trained once per seed; intervals combine seeds and noise draws. */
  seeds: number[];
  /**
   * Noise levels η (σ = η·std(W) per weight tensor for the default noise type) and Monte Carlo draws per
   * level. Sweep knobs map onto lib/noise's `SweepConfig` through `sweepConfigFor` (one validation:
   * `resolveSweepConfig`): etas → etas, draws → draws.
   */
  etas: number[];
  draws: number;
  /** Noise seed (integer >= 0; `SweepConfig.seed`): the noise streams and the choice of calibration images. */
  noiseSeed: number;
  /**
   * Which stored tensors get noise in notebooks 01/02/04/05 (lib/noise targets; `SweepConfig.targets`).
   * Default "all": every stored weight array, BN moving statistics included, as a loop over Keras
   * get_weights() does — the reading of the paper that matches its numbers (see PAPER.md). Notebook 03
   * varies this.
   */
  noiseTargets: NoiseTarget[];
  /**
   * Noise type (`SweepConfig.noiseType`; the knob keeps its old name): σ = η·std(W) ("additive-std", the
   * paper's), η·max|W| ("additive-max") or w·(1+η·n) ("multiplicative").
   */
  noiseForm: NoiseType;
  /**
   * Prediction rule for logits that are not finite: "argmax-numpy" (Keras/NumPy argmax: the first NaN
   * wins, so an all-NaN row predicts class 0 — the paper's framework) or "nonfinite-wrong".
   */
  scoring: ScoringRule;
  /**
   * How each noise draw is evaluated (lib/noise `SweepConfig.fastPath`): "off" (the model as trained),
   * "fp32" (BN folded after the noise, conv + bias + ReLU fused) or "bf16" (the same with bf16 forward
   * activations and convolutions on the onednn engine where the CPU has them, else fp32; rows within ~0.4
   * points of "off", about 2x the sweep throughput; README "The sweep fast path"). The sweep's clean row uses
   * the same path.
   */
  fastPath: FastPath;
  /** Notebook 02: BN layer counts to train (null = 0, a few, …, all, chosen from the model). */
  bnCounts: number[] | null;
  /** Notebook 02: the η values shown in the BN-count chart. */
  etasShown: number[];
  /**
   * Notebook 03: BN re-estimation after noise from this many calibration batches of 128 training images
   * (`SweepConfig.recalibrateBatches`; the images: lib/noise `calibrationImages`), 0 = off.
   */
  recalibrateBatches: number;
  /** Trajectory snapshots kept per training run (notebook 05 sweeps them; matched-accuracy comparisons use them). */
  snapshots: number;
  /**
   * A finding is stated only for models at or above this clean accuracy (0..1); below it the notebooks say
   * "inconclusive at this scale". Compared per data set: CIFAR-100 uses `minCleanAccuracy100`.
   */
  minCleanAccuracy: number;
  minCleanAccuracy100: number;
  /** BN and no-BN twins count as "at matched accuracy" when their clean accuracies differ by at most this (0..1). */
  maxAccuracyGap: number;
  /**
   * Notebook 06: inference times in seconds after programming at which PCM-like noise is evaluated
   * (lib/noise/models/pcm.ts; 1 s, 1 h, 1 day, 1 year = 1, 3600, 86400, 31536000).
   */
  inferenceTimes: number[];
  /**
   * Notebook 06: training noise of the hardware-aware twin (lib/train `TrainConfig.trainNoise`: σ relative to
   * max|W| per kernel, resampled every step); 0 = no noise-trained twin (the `quick` profile: training one
   * would cost ~3.5 minutes on 2 cores, beyond the main job's budget).
   */
  trainNoise: number;
  /** Compute backend preference (lib/backend). */
  backend: "auto" | "tensorflow" | "onednn" | "wasm" | "cpu";
}

type Base = Omit<NotebookParams, "profile">;

// ---------------------------------------------------------------------------
// THE PROFILE TABLE: one row per knob, one column per profile.
// Recipe (quick/standard): SGD + Nesterov, one-cycle, label smoothing 0.1, weight decay 5e-4, batch 128,
// lr 0.2 with BN / 0.1 without, BN-free ResNet branches "scaled" — measured on this machine kind (AMD EPYC,
// 2 cores; results/recipe/README.md): ResNet-20 + BN reaches 72% clean on CIFAR-10 (JPEG copy) after 2 epochs
// of the full training split. The paper's architecture (projection shortcuts, Keras BN epsilon/momentum) in
// every profile. `quick` is sized so that the main job (all notebooks) fits in 20 minutes on the slower
// machine (measured 17m27s for 01-05 on one AMD EPYC instance; 21m16s for 01-06 on another, 2026-11-30; both AVX-512 — an AVX2-only EPYC took 46m56s, README). `standard`: 40 epochs gave ResNet-20 + BN 87.6% (results/standard/README.md);
// 100 is an unmeasured estimate for the 90% target.
// `paper` keeps batch 128 (the Keras example uses 32: 4x the steps, too slow in tfjs on a CPU).
// ---------------------------------------------------------------------------
// deno-fmt-ignore
const TABLE: { [K in keyof Base]: [smoke: Base[K], quick: Base[K], standard: Base[K], paper: Base[K]] } = {
  //                    smoke                  quick                                   standard                                  paper
  dataset:            ["cifar10",             "cifar10",                              "cifar10",                                "cifar10"],
  source:             ["auto",                "auto",                                 "auto",                                   "auto"],
  models:             [["resnet8", "vgg11"],  ["resnet20", "vgg11"],                  ["resnet20", "vgg11"],                    ["resnet44", "vgg16"]],
  width:              [8,                     { vgg11: 32 },                          null,                                     null],
  shortcut:           ["projection",          "projection",                           "projection",                             "projection"],
  residualInit:       ["scaled",              "scaled",                               "scaled",                                 "scaled"],
  bnEpsilon:          [1e-3,                  1e-3,                                   1e-3,                                     1e-3],
  bnMomentum:         [0.99,                  0.99,                                   0.99,                                     0.99],
  trainSize:          [2000,                  50000,                                  50000,                                    50000],
  testSize:           [500,                   1000,                                   10000,                                    10000],
  epochs:             [3,                     2,                                      100,                                      200],
  batchSize:          [64,                    128,                                    128,                                      128],
  optimizer:          ["sgd",                 "sgd",                                  "sgd",                                    "adam"],
  lr:                 [0.05,                  0.2,                                    0.2,                                      1e-3],
  lrNoBN:             [null,                  0.1,                                    0.1,                                      null],
  nesterov:           [true,                  true,                                   true,                                     false],
  weightDecay:        [5e-4,                  5e-4,                                   5e-4,                                     1e-4],
  schedule:           ["onecycle",            "onecycle",                             "onecycle",                               "cosine"],
  labelSmoothing:     [0.1,                   0.1,                                    0.1,                                      0],
  augment:            [false,                 true,                                   true,                                     true],
  // bf16 mixed-precision training (issue #11) is 1.3x (ResNet-20) to 1.5x (VGG-11) faster here, but over 3 seeds
  // of the quick ResNet-20 + BN it ended 2.8 ± 1.7 points below fp32 (72.0/67.9/71.6 vs 66.9/68.3/67.8%): the
  // quick and larger profiles train in fp32, where accuracy is the point; smoke (plumbing) trains in bf16.
  // Sweeps use the bf16 fast path in smoke/quick (rows within 0.4 points of "off", ~2.2x); standard/paper: "off".
  precision:          ["bf16",                "fp32",                                 "fp32",                                   "fp32"],
  seeds:              [[0, 1],                [0],                                    [0, 1, 2],                                [0, 1, 2]],
  etas:               [[0, 0.1, 0.3],         [0, 0.05, 0.1, 0.2, 0.3, 0.5],          [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8],       [0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]],
  draws:              [2,                     4,                                      10,                                       20],
  noiseSeed:          [1,                     1,                                      1,                                        1],
  noiseTargets:       [["all"],               ["all"],                                ["all"],                                  ["all"]],
  noiseForm:          ["additive-std",        "additive-std",                         "additive-std",                           "additive-std"],
  scoring:            ["argmax-numpy",        "argmax-numpy",                         "argmax-numpy",                           "argmax-numpy"],
  fastPath:           ["bf16",                "bf16",                                 "off",                                    "off"],
  bnCounts:           [[0, 3, 7],             [0, 10, 19],                            [0, 4, 10, 19],                           null],
  etasShown:          [[0.1, 0.3],            [0.1, 0.2, 0.3],                        [0.1, 0.2, 0.3],                          [0.1, 0.2, 0.4]],
  recalibrateBatches: [2,                     4,                                      20,                                       20],
  snapshots:          [3,                     5,                                      9,                                        9],
  minCleanAccuracy:   [0.7,                   0.7,                                    0.9,                                      0.9],
  minCleanAccuracy100:[0.4,                   0.4,                                    0.6,                                      0.6],
  maxAccuracyGap:     [0.05,                  0.05,                                   0.02,                                     0.02],
  // notebook 06 (issue #13): PCM-like noise at these times after programming; 0.04 ≈ the PCM programming noise
  // at g_max relative to g_max ((0.26348 + 1.9650 − 1.1731) µS / 25 µS = 4.2%); quick: 0 = no noise-trained twin
  // (its training, ResNet-20 2 epochs + the per-step noise, would cost ~3.5 min: over the main job's budget)
  inferenceTimes:     [[1, 86400, 31536000],  [1, 3600, 86400, 31536000],             [1, 3600, 86400, 31536000],               [1, 3600, 86400, 31536000]],
  trainNoise:         [0.04,                  0,                                      0.04,                                     0.04],
  backend:            ["auto",                "auto",                                 "auto",                                   "auto"],
};

function column(i: 0 | 1 | 2 | 3): Base {
  return Object.fromEntries(Object.entries(TABLE).map(([k, v]) => [k, v[i]])) as unknown as Base;
}

/** Per-notebook changes on top of a profile's shared values. */
const PER_NOTEBOOK: Record<ProfileName, Partial<Record<NotebookId, Partial<Base>>>> = {
  smoke: {
    "02": { models: ["resnet8"] },
    "03": {},
    // CIFAR-100 needs more images than CIFAR-10 for a smoke model to learn anything (100 classes)
    "04": { dataset: "cifar100", trainSize: 5000 },
    "05": { models: ["resnet8"] },
    "06": { models: ["resnet8"] },
  },
  quick: {
    // VGG-11 (8 BN slots) trains ~1.5x faster than ResNet-20 here; 0 and 8 BN layers are notebook 01's models
    "02": { models: ["vgg11"], bnCounts: [0, 4, 8] },
    // CIFAR-100 in quick: ResNet-20 only, one epoch (sized for the time budget; says so when under-trained)
    // CIFAR-100 in quick: ResNet-20 only, 2 epochs of 20 000 images (sized for the time budget: the text says
    // "inconclusive" when the models stay under minCleanAccuracy100)
    "04": { dataset: "cifar100", source: "binary", models: ["resnet20"], trainSize: 20000 },
    // notebook 03 sweeps 9 conditions per architecture and 05 every snapshot: fewer levels and draws
    "03": { etas: [0, 0.05, 0.1, 0.2, 0.3], draws: 3 },
    "05": { models: ["resnet20"], etas: [0, 0.05, 0.1, 0.2, 0.3], draws: 3 },
    // notebook 06: ResNet-20 only (no noise-trained twin: trainNoise 0 below, its training would not fit), 3 draws per condition and time
    // 1 s, 1 day, 1 year (1 h left out), 3 draws: 21 sweeps. Measured with 4 times (28 sweeps) the notebook took
    // 219 s on a loaded machine (load average ~4.5 on 2 cores), over the main job's +3 min budget
    "06": { models: ["resnet20"], draws: 3, inferenceTimes: [1, 86400, 31536000] },
  },
  standard: {
    "02": { models: ["resnet20"] },
    "04": { dataset: "cifar100", source: "binary", models: ["resnet20"] },
    "05": { models: ["resnet20", "vgg11"] },
    "06": { models: ["resnet20", "vgg11"] },
  },
  paper: {
    "02": { models: ["resnet44"] },
    "04": { dataset: "cifar100", source: "binary" },
    "05": { models: ["resnet44"] },
  },
};
// ---------------------------------------------------------------------------

const PROFILE_BASES: Record<ProfileName, Base> = {
  smoke: column(0),
  quick: column(1),
  standard: column(2),
  paper: column(3),
};

/** Profile names, in size order. */
export const PROFILE_NAMES: readonly ProfileName[] = ["smoke", "quick", "standard", "paper"];
/** Notebook ids. */
export const NOTEBOOK_IDS: readonly NotebookId[] = ["01", "02", "03", "04", "05", "06"];

/** The profile's parameters for a notebook (a fresh copy). */
export function profileParams(notebook: NotebookId, profile: ProfileName): NotebookParams {
  if (!PROFILE_NAMES.includes(profile)) {
    throw new NoiselabError(
      `profile: unknown profile "${profile}" (known: ${PROFILE_NAMES.join(", ")})`,
      "profile",
    );
  }
  if (!NOTEBOOK_IDS.includes(notebook)) {
    throw new NoiselabError(
      `notebook: unknown notebook id "${notebook}" (known: ${NOTEBOOK_IDS.join(", ")})`,
      "notebook",
    );
  }
  return structuredClone({ profile, ...PROFILE_BASES[profile], ...(PER_NOTEBOOK[profile][notebook] ?? {}) });
}

const KEYS = Object.keys(TABLE) as (keyof Base)[];

function check(cond: boolean, key: string, want: string, v: unknown): void {
  if (!cond) throw new NoiselabError(`parameter ${key}: expected ${want}, got ${JSON.stringify(v)}`, key);
}

/**
 * Validate resolved notebook parameters.
 * @throws NoiselabError naming the first bad parameter
 */
export function validateParams(p: NotebookParams): NotebookParams {
  const posInt = (k: keyof Base) =>
    check(Number.isInteger(p[k]) && (p[k] as number) > 0, k, "a positive integer", p[k]);
  check(["cifar10", "cifar100"].includes(p.dataset), "dataset", `"cifar10" or "cifar100"`, p.dataset);
  check(["auto", "jpeg", "binary"].includes(p.source), "source", `"auto", "jpeg" or "binary"`, p.source);
  check(
    Array.isArray(p.models) && p.models.length > 0 && p.models.every((m) => typeof m === "string"),
    "models",
    "a non-empty list of model names",
    p.models,
  );
  for (const m of p.models) {
    try {
      parseModelName(m);
      bnSlotCount(m); // the depth must exist for the family
    } catch (e) {
      throw new NoiselabError(`parameter models: ${(e as Error).message.replace(/^model: /, "")}`, "models");
    }
  }
  const posIntOk = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  check(
    p.width === null || posIntOk(p.width) ||
      (typeof p.width === "object" && !Array.isArray(p.width) && Object.values(p.width).every(posIntOk)),
    "width",
    "null, a positive integer, or an object of model name → positive integer",
    p.width,
  );
  for (const k of ["trainSize", "testSize", "epochs", "batchSize"] as const) posInt(k);
  check(
    Number.isInteger(p.snapshots) && p.snapshots >= 0,
    "snapshots",
    "a non-negative integer",
    p.snapshots,
  );
  check(typeof p.lr === "number" && p.lr > 0, "lr", "a positive number", p.lr);
  check(
    p.lrNoBN === null || (typeof p.lrNoBN === "number" && p.lrNoBN > 0),
    "lrNoBN",
    "null or a positive number",
    p.lrNoBN,
  );
  for (const k of ["weightDecay"] as const) {
    check(typeof p[k] === "number" && p[k] >= 0 && Number.isFinite(p[k]), k, "a number >= 0", p[k]);
  }
  for (const k of ["labelSmoothing", "minCleanAccuracy", "minCleanAccuracy100", "maxAccuracyGap"] as const) {
    check(typeof p[k] === "number" && p[k] >= 0 && p[k] < 1, k, "a number in [0, 1)", p[k]);
  }
  check(typeof p.bnEpsilon === "number" && p.bnEpsilon > 0, "bnEpsilon", "a number > 0", p.bnEpsilon);
  check(
    typeof p.bnMomentum === "number" && p.bnMomentum >= 0 && p.bnMomentum < 1,
    "bnMomentum",
    "a number in [0, 1)",
    p.bnMomentum,
  );
  check(["A", "projection"].includes(p.shortcut), "shortcut", `"A" or "projection"`, p.shortcut);
  check(["zero", "scaled"].includes(p.residualInit), "residualInit", `"zero" or "scaled"`, p.residualInit);
  check(["sgd", "adam"].includes(p.optimizer), "optimizer", `"sgd" or "adam"`, p.optimizer);
  check(
    ["constant", "step", "cosine", "onecycle"].includes(p.schedule),
    "schedule",
    "constant|step|cosine|onecycle",
    p.schedule,
  );
  for (const k of ["augment", "nesterov"] as const) {
    check(typeof p[k] === "boolean", k, "true or false", p[k]);
  }
  check(["fp32", "bf16"].includes(p.precision), "precision", `"fp32" or "bf16"`, p.precision);
  check(
    Array.isArray(p.seeds) && p.seeds.length > 0 && p.seeds.every((x) => Number.isInteger(x) && x >= 0) &&
      new Set(p.seeds).size === p.seeds.length,
    "seeds",
    "a non-empty list of distinct integers >= 0",
    p.seeds,
  );
  // the sweep knobs: lib/noise's one validation (resolveSweepConfig), errors named by the notebook knob
  checkSweepKnobs(p);
  check(
    Array.isArray(p.etasShown) && p.etasShown.length > 0 &&
      p.etasShown.every((e) => typeof e === "number" && e >= 0 && Number.isFinite(e)),
    "etasShown",
    "a non-empty list of numbers >= 0",
    p.etasShown,
  );
  check(
    p.etasShown.every((e) => p.etas.includes(e)),
    "etasShown",
    `values taken from etas (${p.etas.join(", ")})`,
    p.etasShown,
  );
  check(
    p.bnCounts === null ||
      (Array.isArray(p.bnCounts) && p.bnCounts.every((n) => Number.isInteger(n) && n >= 0)),
    "bnCounts",
    "null or a list of integers >= 0",
    p.bnCounts,
  );
  check(
    Array.isArray(p.inferenceTimes) && p.inferenceTimes.length > 0 &&
      p.inferenceTimes.every((t) => typeof t === "number" && Number.isFinite(t) && t >= 0),
    "inferenceTimes",
    "a non-empty list of seconds >= 0",
    p.inferenceTimes,
  );
  check(
    typeof p.trainNoise === "number" && Number.isFinite(p.trainNoise) && p.trainNoise >= 0,
    "trainNoise",
    "a number >= 0 (0: no noise-trained twin)",
    p.trainNoise,
  );
  check(
    ["auto", "tensorflow", "onednn", "wasm", "cpu"].includes(p.backend),
    "backend",
    "auto|tensorflow|onednn|wasm|cpu",
    p.backend,
  );
  return p;
}

/**
 * The parameters a notebook runs with: the profile's values, with every
 * non-null/undefined entry of `overrides` replacing the profile's. Validates
 * everything (NoiselabError naming the parameter) before any work.
 */
export function resolveParams(
  notebook: NotebookId,
  profile: string,
  overrides: Record<string, unknown> = {},
): NotebookParams {
  const p = profileParams(notebook, profile as ProfileName) as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null || v === undefined) continue;
    if (!(KEYS as string[]).includes(k)) {
      throw new NoiselabError(`parameter ${k}: unknown (known: ${KEYS.join(", ")})`, k);
    }
    p[k] = k === "backend" && typeof v === "string" ? canonicalBackendName(v) : structuredClone(v);
  }
  const etas = p.etas as number[], shown = p.etasShown as number[];
  if (
    (overrides.etasShown === null || overrides.etasShown === undefined) && Array.isArray(etas) &&
    !shown.every((e) => etas.includes(e))
  ) {
    // etas were overridden without etasShown: show up to three non-zero levels spread over the grid
    const nz = etas.filter((e) => e > 0);
    p.etasShown = nz.length <= 3 ? nz : [nz[0], nz[Math.floor(nz.length / 2)], nz[nz.length - 1]];
    if (!(p.etasShown as number[]).length) p.etasShown = [...etas];
  }
  const out = validateParams(p as unknown as NotebookParams);
  // notebooks that compare BN models with BN-free ones: noise only on BN arrays perturbs nothing in the
  // BN-free models (the sweep would refuse after training); say so here, naming the knob
  const BN_ONLY = ["bn-affine", "bn-mean", "bn-var"];
  if (["01", "02", "04", "05"].includes(notebook) && out.noiseTargets.every((t) => BN_ONLY.includes(t))) {
    throw new NoiselabError(
      `parameter noiseTargets: ${
        JSON.stringify(out.noiseTargets)
      } perturbs only BatchNorm arrays, so it selects ` +
        `nothing in the BN-free models notebook ${notebook} compares; add "kernels" (or use "all"), or study ` +
        "BN-only noise in notebook 03",
      "noiseTargets",
    );
  }
  return out;
}

/** The base width of one model under the parameters (null = the architecture's default). */
export function widthFor(p: Pick<NotebookParams, "width">, model: string): number | null {
  if (p.width === null || typeof p.width === "number") return p.width;
  return p.width[model] ?? null;
}

/** The lib/train config (partial; defaults fill the rest) for one model of a notebook. */
export function trainConfigFor(
  p: NotebookParams,
  model: string,
  bn: "all" | "none" | number | number[],
  seed: number = p.seeds[0],
): Record<string, unknown> {
  return {
    dataset: p.dataset,
    source: p.source,
    trainSize: p.trainSize,
    testSize: p.testSize,
    model,
    bn,
    width: widthFor(p, model),
    // the shortcut only exists in ResNets: VGG configs keep the default so their ids do not depend on it
    ...(/^\s*resnet/i.test(model) ? { shortcut: p.shortcut, residualInit: p.residualInit } : {}),
    bnEpsilon: p.bnEpsilon,
    bnMomentum: p.bnMomentum,
    optimizer: p.optimizer,
    lr: bn === "none" || bn === 0 || (Array.isArray(bn) && bn.length === 0) ? p.lrNoBN ?? p.lr : p.lr,
    nesterov: p.optimizer === "sgd" ? p.nesterov : false,
    weightDecay: p.weightDecay,
    schedule: p.schedule,
    labelSmoothing: p.labelSmoothing,
    epochs: p.epochs,
    batchSize: p.batchSize,
    augment: p.augment,
    precision: p.precision,
    seed,
  };
}

/**
 * The notebook knobs of a sweep and the lib/noise `SweepConfig` field each sets (the knobs keep their
 * names: the notebooks' parameters cells use them). Fields not listed take the notebooks' fixed values:
 * `foldBN` false unless a condition folds, `recalibrateBatchSize` 128, `batchSize` 500 (the defaults).
 */
export const NOTEBOOK_SWEEP_KNOBS: Readonly<Record<string, keyof SweepConfig>> = Object.freeze({
  etas: "etas",
  draws: "draws",
  noiseSeed: "seed",
  noiseTargets: "targets",
  noiseForm: "noiseType",
  scoring: "scoring",
  fastPath: "fastPath",
  recalibrateBatches: "recalibrateBatches",
  testSize: "testSize",
});

/** What a sweep condition (lib/notebook `SweepCondition`) sets on top of the parameters' sweep. */
export interface SweepConditionPart {
  /** Config fields the condition sets (e.g. `targets`, `foldBN`), replacing the parameters' values. */
  sweep?: Partial<SweepConfig>;
  /** Re-estimate BN statistics after the noise with `recalibrateBatches` calibration batches (0 = off). */
  recalibrate?: boolean;
}

/**
 * THE mapping of notebook parameters onto a lib/noise `SweepConfig` (resolved and validated): the
 * notebooks' sweeps are built by it, as `noiselab noise` builds its own from its flags (lib/cli
 * noise_flags.ts). `etas` → etas, `draws` → draws, `noiseSeed` → seed, `noiseTargets` → targets,
 * `noiseForm` → noiseType, `scoring` → scoring, `testSize` → testSize, `recalibrateBatches` →
 * recalibrateBatches when the condition re-estimates BN (else 0); then the condition's own fields
 * (`condition.sweep`: targets, BN folding) replace the parameters' values.
 * @throws NoiselabError naming the config field (lib/noise `resolveSweepConfig`)
 */
export function sweepConfigFor(p: NotebookParams, condition: SweepConditionPart = {}): SweepConfig {
  return resolveSweepConfig({
    etas: p.etas,
    draws: p.draws,
    seed: p.noiseSeed,
    targets: p.noiseTargets,
    noiseType: p.noiseForm,
    scoring: p.scoring,
    fastPath: p.fastPath,
    foldBN: false,
    recalibrateBatches: condition.recalibrate ? p.recalibrateBatches : 0,
    testSize: p.testSize,
    ...(condition.sweep ?? {}),
  });
}

/**
 * Validate the sweep knobs of the parameters through {@link sweepConfigFor} (BN re-estimation on, so
 * `recalibrateBatches` is checked too); an error names the notebook knob (`parameter noiseForm: ...`).
 */
function checkSweepKnobs(p: NotebookParams): void {
  try {
    sweepConfigFor(p, { recalibrate: true });
  } catch (e) {
    if (!(e instanceof NoiselabError) || !e.subject) throw e;
    const knob = Object.entries(NOTEBOOK_SWEEP_KNOBS).find(([, f]) => f === e.subject)?.[0] ?? e.subject;
    const why = e.message.startsWith(`${e.subject}: `) ? e.message.slice(e.subject.length + 2) : e.message;
    throw new NoiselabError(`parameter ${knob}: ${why}`, knob);
  }
}

/** The clean-accuracy threshold of the parameters for a data set (see `minCleanAccuracy`). */
export function minCleanAccuracyFor(p: NotebookParams, dataset: string = p.dataset): number {
  return dataset === "cifar100" ? p.minCleanAccuracy100 : p.minCleanAccuracy;
}
