/**
 * Parameter profiles of the notebooks: `smoke` (pipeline check, about a minute
 * per notebook on 2 cores, results meaningless), `quick` (a reduced but honest
 * study that fits this machine), `paper` (the paper's scale: full CIFAR,
 * ResNet-44/VGG-16, 200 epochs — hours to days on a CPU).
 *
 * THE TABLE BELOW IS THE ONLY PLACE THE SIZES LIVE. A notebook's `parameters`
 * cell names a profile and may override any single value.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";

/** Profile names. */
export type ProfileName = "smoke" | "quick" | "paper";
/** The notebooks (file name prefixes under notebooks/). */
export type NotebookId = "01" | "02" | "03" | "04";

/** Every knob a notebook reads. Training fields map 1:1 onto lib/train's TrainConfig. */
export interface NotebookParams {
  profile: ProfileName;
  /** Data set and copy (lib/data). */
  dataset: "cifar10" | "cifar100";
  source: "auto" | "jpeg" | "binary";
  /** Architectures; notebooks 01/03/04 train each with and without BN. */
  models: string[];
  /**
   * Base width: null = each architecture's default (ResNet 16, VGG 64); a number applies to every
   * model; an object sets it per model name (e.g. `{ vgg11: 32 }`; models not named keep their default).
   */
  width: number | null | Record<string, number>;
  /** Stratified training subset and test subset sizes (full split: 50000 / 10000). */
  trainSize: number;
  testSize: number;
  epochs: number;
  batchSize: number;
  optimizer: "sgd" | "adam";
  lr: number;
  schedule: "constant" | "step" | "cosine" | "onecycle";
  augment: boolean;
  /** Training seed. */
  seed: number;
  /** Noise levels η (σ = η·std(W) per weight tensor) and Monte Carlo draws per level. */
  etas: number[];
  draws: number;
  noiseSeed: number;
  /**
   * Which stored tensors get noise in notebooks 01/02/04 (lib/noise targets). Default "all": every
   * stored weight array, BN moving statistics included, as a loop over Keras get_weights() does —
   * the reading of the paper that matches its numbers (see PAPER.md). Notebook 03 varies this.
   */
  noiseTargets: ("kernels" | "biases" | "bn-affine" | "bn-mean" | "bn-var" | "all")[];
  /** Noise form: σ = η·std(W) ("additive-std", the paper's), η·max|W| ("additive-max") or w·(1+η·n) ("multiplicative"). */
  noiseForm: "additive-std" | "additive-max" | "multiplicative";
  /** Notebook 02: BN layer counts to train (null = 0, a few, …, all, chosen from the model). */
  bnCounts: number[] | null;
  /** Notebook 02: the η values shown in the BN-count chart. */
  etasShown: number[];
  /** Notebook 03: training batches used to re-estimate BN statistics after noise. */
  recalibrateBatches: number;
  /** Compute backend preference (lib/backend). */
  backend: "auto" | "tensorflow" | "noiselab" | "wasm" | "cpu";
}

type Base = Omit<NotebookParams, "profile">;

// ---------------------------------------------------------------------------
// THE PROFILE TABLE: one row per knob, one column per profile.
// `quick` is sized on the noiselab engine's measured speed on 2 cores (2026-11-26, training loop incl.
// augmentation, batch 128): ResNet-20 ~1000 img/s, VGG-11 at width 32 ~730 img/s (at width 64: ~4x slower),
// inference ~3500 img/s. Training: 4 ResNet-20 (01: ±BN; 02: 4 and 10 BN layers) × 100k images ≈ 400 s,
// 2 VGG-11/32 × 100k ≈ 280 s; sweeps: 7 η × 5 draws × 1000 images per model and condition (~10 s each,
// ~20 of them). About 15 minutes in all on an otherwise idle machine.
// ---------------------------------------------------------------------------
// deno-fmt-ignore
const TABLE: { [K in keyof Base]: [smoke: Base[K], quick: Base[K], paper: Base[K]] } = {
  //                    smoke                  quick                                         paper
  dataset:            ["cifar10",             "cifar10",                                    "cifar10"],
  source:             ["auto",                "auto",                                       "auto"],
  models:             [["resnet8", "vgg11"],  ["resnet20", "vgg11"],                        ["resnet44", "vgg16"]],
  width:              [4,                     { vgg11: 32 },                                null],
  trainSize:          [256,                   10000,                                        50000],
  testSize:           [200,                   1000,                                         10000],
  epochs:             [1,                     10,                                           200],
  batchSize:          [64,                    128,                                          128],
  optimizer:          ["adam",                "adam",                                       "adam"],
  lr:                 [2e-3,                  1e-3,                                         1e-3],
  schedule:           ["constant",            "cosine",                                     "cosine"],
  augment:            [false,                 true,                                         true],
  seed:               [0,                     0,                                            0],
  etas:               [[0, 0.1, 0.3],         [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8],           [0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]],
  draws:              [2,                     5,                                            20],
  noiseSeed:          [1,                     1,                                            1],
  noiseTargets:       [["all"],               ["all"],                                      ["all"]],
  noiseForm:          ["additive-std",        "additive-std",                               "additive-std"],
  bnCounts:           [[0, 3, 7],             [0, 4, 10, 19],                               null],
  etasShown:          [[0.1, 0.3],            [0.1, 0.2, 0.3],                              [0.1, 0.2, 0.4]],
  recalibrateBatches: [2,                     4,                                            20],
  backend:            ["auto",                "auto",                                       "auto"],
};

function column(i: 0 | 1 | 2): Base {
  return Object.fromEntries(Object.entries(TABLE).map(([k, v]) => [k, v[i]])) as unknown as Base;
}

/** Per-notebook changes on top of a profile's shared values. */
const PER_NOTEBOOK: Record<ProfileName, Partial<Record<NotebookId, Partial<Base>>>> = {
  smoke: {
    "02": { models: ["resnet8"] },
    "03": {},
    "04": { dataset: "cifar100" },
  },
  quick: {
    "02": { models: ["resnet20"] },
    "04": { dataset: "cifar100", source: "binary" },
  },
  paper: {
    "02": { models: ["resnet44"] },
    "04": { dataset: "cifar100", source: "binary" },
  },
};
// ---------------------------------------------------------------------------

const PROFILE_BASES: Record<ProfileName, Base> = { smoke: column(0), quick: column(1), paper: column(2) };

/** Profile names, in size order. */
export const PROFILE_NAMES: readonly ProfileName[] = ["smoke", "quick", "paper"];
/** Notebook ids. */
export const NOTEBOOK_IDS: readonly NotebookId[] = ["01", "02", "03", "04"];

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

function validate(p: NotebookParams): NotebookParams {
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
  const posIntOk = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  check(
    p.width === null || posIntOk(p.width) ||
      (typeof p.width === "object" && !Array.isArray(p.width) && Object.values(p.width).every(posIntOk)),
    "width",
    "null, a positive integer, or an object of model name → positive integer",
    p.width,
  );
  for (const k of ["trainSize", "testSize", "epochs", "batchSize", "draws"] as const) posInt(k);
  check(
    Number.isInteger(p.recalibrateBatches) && p.recalibrateBatches >= 0,
    "recalibrateBatches",
    "a non-negative integer",
    p.recalibrateBatches,
  );
  check(typeof p.lr === "number" && p.lr > 0, "lr", "a positive number", p.lr);
  check(["sgd", "adam"].includes(p.optimizer), "optimizer", `"sgd" or "adam"`, p.optimizer);
  check(
    ["constant", "step", "cosine", "onecycle"].includes(p.schedule),
    "schedule",
    "constant|step|cosine|onecycle",
    p.schedule,
  );
  check(typeof p.augment === "boolean", "augment", "true or false", p.augment);
  check(Number.isFinite(p.seed) && Number.isFinite(p.noiseSeed), "seed", "numbers (seed, noiseSeed)", [
    p.seed,
    p.noiseSeed,
  ]);
  for (const k of ["etas", "etasShown"] as const) {
    check(
      Array.isArray(p[k]) && p[k].length > 0 &&
        p[k].every((e) => typeof e === "number" && e >= 0 && Number.isFinite(e)),
      k,
      "a non-empty list of numbers >= 0",
      p[k],
    );
  }
  check(
    Array.isArray(p.noiseTargets) && p.noiseTargets.length > 0 &&
      p.noiseTargets.every((t) => ["kernels", "biases", "bn-affine", "bn-mean", "bn-var", "all"].includes(t)),
    "noiseTargets",
    "a non-empty list of kernels|biases|bn-affine|bn-mean|bn-var|all",
    p.noiseTargets,
  );
  check(
    ["additive-std", "additive-max", "multiplicative"].includes(p.noiseForm),
    "noiseForm",
    "additive-std|additive-max|multiplicative",
    p.noiseForm,
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
    ["auto", "tensorflow", "noiselab", "wasm", "cpu"].includes(p.backend),
    "backend",
    "auto|tensorflow|noiselab|wasm|cpu",
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
    p[k] = structuredClone(v);
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
  return validate(p as unknown as NotebookParams);
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
): Record<string, unknown> {
  return {
    dataset: p.dataset,
    source: p.source,
    trainSize: p.trainSize,
    testSize: p.testSize,
    model,
    bn,
    width: widthFor(p, model),
    optimizer: p.optimizer,
    lr: p.lr,
    schedule: p.schedule,
    epochs: p.epochs,
    batchSize: p.batchSize,
    augment: p.augment,
    seed: p.seed,
  };
}
