/**
 * Training configuration: every knob is a named value with a documented
 * default (nanoGPT style). {@link resolveTrainConfig} merges overrides onto
 * {@link DEFAULT_TRAIN_CONFIG} and validates every field before any work is
 * done; a bad value raises a `NoiselabError` naming the parameter.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import {
  bnSlotCount,
  DEFAULT_BN_EPSILON,
  DEFAULT_BN_MOMENTUM,
  DEFAULT_SHORTCUT,
  modelInfo,
  modelNames,
  RESIDUAL_INITS,
  RESNET_SHORTCUTS,
  resolveBN,
} from "../models/mod.ts";
import type { BNSpec, ResidualInit, ResNetShortcut } from "../models/mod.ts";
import type { OptimizerName, WeightDecayMode } from "./optim.ts";
import type { ScheduleName } from "./schedule.ts";

/** Arithmetic of the training convolutions (see {@link TrainConfig.precision}). */
export type TrainPrecision = "fp32" | "bf16";
/** The training precisions. */
export const TRAIN_PRECISIONS: readonly TrainPrecision[] = ["fp32", "bf16"];

/** Data sets the trainer accepts. */
export type TrainDatasetName = "cifar10" | "cifar100";
/** Which copy of the data set (see lib/data `loadDataset`). */
export type TrainSourceName = "auto" | "jpeg" | "binary";

/** A full training configuration. All fields are part of the model id. */
export interface TrainConfig {
  /** Data set. */
  dataset: TrainDatasetName;
  /** Copy of the data set: `auto` picks the official binary if present, else the JPEG copy. */
  source: TrainSourceName;
  /** Training images: a class-stratified subset of this size (`subsetSeed`); the full split size = all. */
  trainSize: number;
  /** Test images used for the clean accuracy (stratified subset, `subsetSeed`). */
  testSize: number;
  /** Seed of the stratified train/test subsets (kept apart from `seed` so runs with different seeds see the same images). */
  subsetSeed: number;
  /** Architecture name (lib/models): `resnet20`, `resnet44`, `vgg16`, any `resnet<6n+2>`. */
  model: string;
  /** Which BN layers exist: `all`, `none`, the first k (number) or explicit indices. */
  bn: BNSpec;
  /** Base width (channels of the first stage); `null` = the architecture's default. */
  width: number | null;
  /**
   * ResNet shortcut where a block changes shape: `A` (He et al.'s parameter-free
   * subsample + zero-pad) or `projection` (1x1 stride-2 conv with bias, no BN, as
   * the Keras CIFAR-10 ResNet v1 example). Ignored by VGG. Default `A`.
   */
  shortcut: ResNetShortcut;
  /**
   * BN-free ResNet branches: last conv initialised to zero ("zero", Fixup-style) or He-normal
   * scaled by 1/sqrt(blocks) ("scaled"); see lib/models `ResidualInit`. Ignored with BN and by VGG.
   */
  residualInit: ResidualInit;
  /**
   * BN epsilon (added to the variance), > 0. Default 1e-5 (PyTorch); Keras's
   * BatchNormalization default is 1e-3. A noisy moving variance gives NaN once
   * it is below −epsilon.
   */
  bnEpsilon: number;
  /**
   * BN momentum of the moving statistics, tfjs/Keras convention
   * (`moving = m·moving + (1 − m)·batch`), 0 <= m < 1. Default 0.9 (= PyTorch's
   * 0.1); Keras's BatchNormalization default is 0.99.
   */
  bnMomentum: number;
  /** `sgd` or `adam`. */
  optimizer: OptimizerName;
  /** Peak learning rate. */
  lr: number;
  /** SGD momentum. */
  momentum: number;
  /** SGD Nesterov momentum. */
  nesterov: boolean;
  /** Weight decay coefficient on conv/dense kernels (gradient sense: `g += wd * w`). */
  weightDecay: number;
  /** `coupled` (L2) or `decoupled` (AdamW) weight decay. */
  weightDecayMode: WeightDecayMode;
  /** Adam beta1. */
  adamBeta1: number;
  /** Adam beta2. */
  adamBeta2: number;
  /** Adam epsilon. */
  adamEpsilon: number;
  /** Learning-rate schedule (per step). */
  schedule: ScheduleName;
  /** `step` schedule: epochs at which the lr is multiplied by `stepGamma`. */
  stepMilestones: number[];
  /** `step` schedule multiplier. */
  stepGamma: number;
  /** Linear warm-up epochs (may be fractional). */
  warmupEpochs: number;
  /** Training epochs. */
  epochs: number;
  /** Mini-batch size. */
  batchSize: number;
  /** Pad-4 random crop + horizontal flip (seeded). */
  augment: boolean;
  /**
   * Label smoothing of the training loss (0 = off): the one-hot target becomes
   * `(1 - s)·onehot + s / classes` (Szegedy et al. 2016, as tf.losses.softmaxCrossEntropy).
   */
  labelSmoothing: number;
  /**
   * Hardware-aware (noise-injection) training, issue #13: Gaussian noise with
   * σ = trainNoise·max|W| per kernel tensor (conv and dense kernels: the arrays
   * a crossbar holds; BN, biases untouched), drawn afresh every optimizer step
   * from the stream `"<seed>:trainNoise:<step>:<tensor index>"` (so a resumed
   * run draws what an uninterrupted one does). The forward and backward pass
   * see the noisy kernels; the gradient updates the clean ones (as AIHWKit's
   * hardware-aware training with weight noise; Joshi et al. 2020 train with
   * additive Gaussian noise relative to the largest weight of the layer).
   * 0 = off (default); not part of the model id while 0, so older ids hold.
   */
  trainNoise: number;
  /**
   * Arithmetic of the convolutions in training (issue #11): `fp32` (default) or
   * `bf16` mixed precision — forward and both backward convolutions take bf16
   * inputs, weights and output gradients with fp32 accumulation (oneDNN's
   * avx512_core_bf16 / AMX kernels), while the master weights, the optimizer,
   * BN statistics, the loss and every other op stay fp32 (as PyTorch's
   * `torch.autocast("cpu", dtype=torch.bfloat16)`, where convolutions and
   * matmuls are the bf16 ops; the dense classifier stays fp32 here). Clean
   * accuracy, snapshots and noise sweeps evaluate the fp32 weights in fp32.
   * Only the `onednn` engine on a CPU with bf16 dot products runs bf16;
   * elsewhere {@link resolveTrainPrecision} turns it into `fp32` with a
   * one-line notice before the model id is computed, so the id names the
   * arithmetic that produced the weights. Not part of the model id while
   * `fp32`, so older ids hold.
   */
  precision: TrainPrecision;
  /** Seed of the weight init, shuffling and augmentation. */
  seed: number;
}

/**
 * Defaults: the Keras CIFAR-10 ResNet v1 example that the paper most likely
 * used (Adam 1e-3, L2 on kernels, shift+flip augmentation, 200 epochs), with a
 * cosine schedule instead of the example's hand-written step table and batch
 * 128 instead of 32 (fewer, larger steps are much faster in tfjs). Profiles
 * (quick/full) override what they need; the values in a stored model's
 * meta.json are the ones that were used.
 */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  dataset: "cifar10",
  source: "auto",
  trainSize: 50000,
  testSize: 10000,
  subsetSeed: 0,
  model: "resnet20",
  bn: "all",
  width: null,
  shortcut: DEFAULT_SHORTCUT,
  residualInit: "zero",
  bnEpsilon: DEFAULT_BN_EPSILON,
  bnMomentum: DEFAULT_BN_MOMENTUM,
  optimizer: "adam",
  lr: 1e-3,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 1e-4,
  weightDecayMode: "coupled",
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-7,
  schedule: "cosine",
  stepMilestones: [100, 150],
  stepGamma: 0.1,
  warmupEpochs: 0,
  epochs: 200,
  batchSize: 128,
  augment: true,
  labelSmoothing: 0,
  trainNoise: 0,
  precision: "fp32",
  seed: 0,
} as TrainConfig);

/** Split sizes of the data sets (both CIFARs: 50 000 train, 10 000 test). */
export const SPLIT_SIZES: Readonly<Record<TrainDatasetName, { train: number; test: number }>> = {
  cifar10: { train: 50000, test: 10000 },
  cifar100: { train: 50000, test: 10000 },
};

/**
 * The allowed values of every training knob that takes one of a fixed set of strings: the one list that
 * {@link resolveTrainConfig} validates against and `noiselab train --help` prints.
 */
export const TRAIN_CONFIG_CHOICES = {
  dataset: Object.keys(SPLIT_SIZES) as TrainDatasetName[],
  source: ["auto", "jpeg", "binary"],
  shortcut: RESNET_SHORTCUTS,
  residualInit: RESIDUAL_INITS,
  optimizer: ["sgd", "adam"],
  weightDecayMode: ["coupled", "decoupled"],
  schedule: ["constant", "step", "cosine", "onecycle"],
  precision: TRAIN_PRECISIONS,
} as const satisfies { readonly [K in keyof TrainConfig]?: readonly TrainConfig[K][] };

/** The names of all configuration fields. */
export const TRAIN_CONFIG_KEYS: readonly (keyof TrainConfig)[] = Object.keys(
  DEFAULT_TRAIN_CONFIG,
) as (keyof TrainConfig)[];

function bad(param: string, msg: string): NoiselabError {
  return new NoiselabError(`${param}: ${msg}`, param);
}

function num(cfg: Record<string, unknown>, k: string, opts: {
  int?: boolean;
  min?: number;
  minExclusive?: number;
  max?: number;
  maxExclusive?: number;
}): void {
  const v = cfg[k];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw bad(k, `expected a finite number, got ${JSON.stringify(v)}`);
  }
  if (opts.int && !Number.isInteger(v)) throw bad(k, `expected an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw bad(k, `must be >= ${opts.min}, got ${v}`);
  if (opts.minExclusive !== undefined && v <= opts.minExclusive) {
    throw bad(k, `must be > ${opts.minExclusive}, got ${v}`);
  }
  if (opts.max !== undefined && v > opts.max) throw bad(k, `must be <= ${opts.max}, got ${v}`);
  if (opts.maxExclusive !== undefined && v >= opts.maxExclusive) {
    throw bad(k, `must be < ${opts.maxExclusive}, got ${v}`);
  }
}

function oneOf(cfg: Record<string, unknown>, k: keyof typeof TRAIN_CONFIG_CHOICES): void {
  const allowed: readonly string[] = TRAIN_CONFIG_CHOICES[k];
  const v = cfg[k];
  if (typeof v !== "string" || !allowed.includes(v)) {
    throw bad(k, `expected one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  }
}

function bool(cfg: Record<string, unknown>, k: string): void {
  if (typeof cfg[k] !== "boolean") throw bad(k, `expected true or false, got ${JSON.stringify(cfg[k])}`);
}

/**
 * Check a model name against lib/models and return its number of BN layers
 * (in the full-BN model) for the given width.
 */
export function checkModelName(name: unknown, width: number | null = null): number {
  if (typeof name !== "string" || name.length === 0) {
    throw bad("model", `expected a model name, got ${JSON.stringify(name)}`);
  }
  try {
    modelInfo(name);
    return bnSlotCount(name, width === null ? {} : { width });
  } catch (e) {
    if (e instanceof NoiselabError && e.subject === "model") throw e;
    const known = modelNames().join(", ");
    const why = e instanceof Error ? ` (${e.message})` : "";
    throw bad("model", `unknown model '${name}'; known: ${known}, or any resnet<6n+2>${why}`);
  }
}

/**
 * Merge `partial` onto the defaults and validate every field. Throws a
 * `NoiselabError` naming the parameter on the first problem: unknown key,
 * wrong type, out-of-range value, subset larger than the split, unknown model
 * or data set, BN count larger than the model's BN layers.
 */
export function resolveTrainConfig(
  partial: Partial<TrainConfig> | Record<string, unknown> = {},
): TrainConfig {
  if (partial === null || typeof partial !== "object" || Array.isArray(partial)) {
    throw bad("config", "expected an object of training parameters");
  }
  for (const k of Object.keys(partial)) {
    if (!(TRAIN_CONFIG_KEYS as readonly string[]).includes(k)) {
      throw bad(k, `unknown training parameter '${k}'; known: ${TRAIN_CONFIG_KEYS.join(", ")}`);
    }
  }
  const merged: Record<string, unknown> = { ...DEFAULT_TRAIN_CONFIG };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) merged[k] = v;
  const c = merged;

  oneOf(c, "dataset");
  oneOf(c, "source");
  const sizes = SPLIT_SIZES[c.dataset as TrainDatasetName];
  num(c, "trainSize", { int: true, min: 1 });
  if ((c.trainSize as number) > sizes.train) {
    throw bad("trainSize", `${c.trainSize} is larger than the ${c.dataset} training split (${sizes.train})`);
  }
  num(c, "testSize", { int: true, min: 1 });
  if ((c.testSize as number) > sizes.test) {
    throw bad("testSize", `${c.testSize} is larger than the ${c.dataset} test split (${sizes.test})`);
  }
  num(c, "subsetSeed", { int: true, min: 0 });
  if (c.width !== null) num(c, "width", { int: true, min: 1 });
  const total = checkModelName(c.model, c.width as number | null);
  // the name as lib/models reads it (trimmed, lower case): "ResNet20" and "resnet20" are one model
  c.model = (c.model as string).trim().toLowerCase();
  resolveBN(c.bn as BNSpec, total, c.model as string);
  // one model, one id: explicit BN indices in ascending order ("2,0" is "0,2")
  if (Array.isArray(c.bn)) c.bn = [...c.bn].sort((a, b) => a - b);
  oneOf(c, "shortcut");
  oneOf(c, "residualInit");
  // shortcut and residualInit exist only in ResNets: a VGG config keeps their defaults, so its id
  // does not depend on them (as lib/notebook's study configs already do)
  if (!(c.model as string).startsWith("resnet")) {
    c.shortcut = DEFAULT_TRAIN_CONFIG.shortcut;
    c.residualInit = DEFAULT_TRAIN_CONFIG.residualInit;
  }
  num(c, "bnEpsilon", { minExclusive: 0 });
  num(c, "bnMomentum", { min: 0, maxExclusive: 1 });
  oneOf(c, "optimizer");
  num(c, "lr", { minExclusive: 0 });
  num(c, "momentum", { min: 0, maxExclusive: 1 });
  bool(c, "nesterov");
  if (c.nesterov && c.optimizer === "sgd" && c.momentum === 0) {
    throw bad("nesterov", "Nesterov momentum needs momentum > 0");
  }
  num(c, "weightDecay", { min: 0 });
  oneOf(c, "weightDecayMode");
  num(c, "adamBeta1", { min: 0, maxExclusive: 1 });
  num(c, "adamBeta2", { min: 0, maxExclusive: 1 });
  num(c, "adamEpsilon", { minExclusive: 0 });
  oneOf(c, "schedule");
  num(c, "epochs", { int: true, min: 1 });
  num(c, "batchSize", { int: true, min: 1 });
  num(c, "stepGamma", { minExclusive: 0 });
  num(c, "warmupEpochs", { min: 0 });
  if ((c.warmupEpochs as number) >= (c.epochs as number) && (c.warmupEpochs as number) > 0) {
    throw bad("warmupEpochs", `must be smaller than epochs (${c.epochs}), got ${c.warmupEpochs}`);
  }
  const ms = c.stepMilestones;
  if (!Array.isArray(ms)) throw bad("stepMilestones", `expected a list of epochs, got ${JSON.stringify(ms)}`);
  ms.forEach((m, i) => {
    if (typeof m !== "number" || !Number.isInteger(m) || m < 1) {
      throw bad("stepMilestones", `expected positive integer epochs, got ${JSON.stringify(m)}`);
    }
    if (i > 0 && m <= ms[i - 1]) {
      throw bad("stepMilestones", `must be strictly increasing, got ${ms.join(",")}`);
    }
    if (c.schedule === "step" && m > (c.epochs as number)) {
      throw bad("stepMilestones", `milestone ${m} is beyond the last epoch (epochs = ${c.epochs})`);
    }
  });
  bool(c, "augment");
  num(c, "labelSmoothing", { min: 0, maxExclusive: 1 });
  num(c, "trainNoise", { min: 0 });
  oneOf(c, "precision");
  num(c, "seed", { int: true, min: 0 });
  return { ...(c as unknown as TrainConfig), stepMilestones: [...ms as number[]] };
}
