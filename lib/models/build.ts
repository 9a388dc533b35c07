/**
 * The model registry: names, info (parameters, BN layers) and `buildModel`.
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { bnLabel, resolveBN } from "./bn.ts";
import {
  type ConvSpec,
  countParams,
  type ModelOptions,
  type ResNetShortcut,
  resolveOptions,
} from "./common.ts";
import { buildResNet, resnetBlocks, resnetConvs, resnetShortcutConvs } from "./resnet.ts";
import { buildVGG, vggConvs, vggFeatures } from "./vgg.ts";

/** Architecture family. */
export type Arch = "resnet" | "vgg";

/** Metadata stored in every built model (`model.getUserDefinedMetadata().noiselab`). */
export interface NoiselabModelMeta {
  name: string;
  arch: Arch;
  depth: number;
  width: number;
  numClasses: number;
  seed: number;
  bnMask: boolean[];
  bnLabel: string;
  /**
   * ResNet shortcut at a change of shape (ResNet only; absent for VGG).
   * {@link modelMeta} reports models saved before this field existed as "A".
   */
  shortcut?: ResNetShortcut;
  /** BN epsilon the BN layers were built with (absent in models saved before it was recorded). */
  bnEpsilon?: number;
  /** BN momentum the BN layers were built with (absent in models saved before it was recorded). */
  bnMomentum?: number;
}

/** Information about a named model (with the default or given width / classes). */
export interface ModelInfo {
  name: string;
  arch: Arch;
  depth: number;
  /** Convolutions = BN slots (forward order). */
  convLayers: number;
  /** BN layers in the full (bn: "all") model. */
  bnLayers: number;
  /** Trainable parameters with all BN (the convention of the published tables). */
  params: number;
  /** `params` plus BN moving mean/variance (what tfjs `countParams()` reports). */
  totalParams: number;
  /** Parameters of the BN-free model (convs with biases). */
  paramsNoBN: number;
}

/** Named models listed for users. Any ResNet depth 6n+2 (e.g. resnet8, resnet14) is also accepted. */
export function modelNames(): string[] {
  return ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "vgg11", "vgg13", "vgg16", "vgg19"];
}

/** Parse "resnet20" / "vgg16"; throws a NoiselabError naming `model` for anything else. */
export function parseModelName(name: string): { arch: Arch; depth: number } {
  const m = typeof name === "string" ? /^(resnet|vgg)(\d+)$/.exec(name.trim().toLowerCase()) : null;
  if (!m) {
    throw new NoiselabError(
      `model: unknown model ${JSON.stringify(name)}; known: ${modelNames().join(", ")} (or any resnet<6n+2>)`,
      "model",
    );
  }
  const arch = m[1] as Arch;
  const depth = Number(m[2]);
  if (arch === "resnet") resnetBlocks(depth);
  else vggConvs(depth); // validates the depth
  return { arch, depth };
}

function convsOf(arch: Arch, depth: number, width: number, inC: number): ConvSpec[] {
  return arch === "resnet" ? resnetConvs(depth, width, inC) : vggConvs(depth, width, inC);
}

function defaultWidth(arch: Arch): number {
  return arch === "resnet" ? 16 : 64;
}

/**
 * Number of BN slots of a model: the places a BatchNorm layer can sit (one after every convolution),
 * whether or not the model has BN there (a model's BN layers are a subset, `BNSpec`). `opts` does not
 * change it. Called `bnCount` before 2026-11.
 */
export function bnSlotCount(name: string, _opts: ModelOptions = {}): number {
  const { arch, depth } = parseModelName(name);
  return convsOf(arch, depth, defaultWidth(arch), 3).length;
}

/**
 * Parameters and BN layer count of a named model (computed from the
 * architecture, no weights built). `opts.shortcut: "projection"` adds the
 * ResNet projection convolutions (kernel + bias) to every count.
 */
export function modelInfo(name: string, opts: ModelOptions = {}): ModelInfo {
  const { arch, depth } = parseModelName(name);
  const o = resolveOptions(opts, defaultWidth(arch));
  const convs = convsOf(arch, depth, o.width, o.inputShape[2]);
  const feat = arch === "resnet" ? convs.at(-1)!.outChannels : vggFeatures(depth, o.width, o.inputShape);
  const dense = [{ in: feat, out: o.numClasses }];
  const extra = arch === "resnet" ? resnetShortcutConvs(depth, o.width, o.shortcut) : [];
  const all = countParams(convs, convs.map(() => true), dense, extra);
  const none = countParams(convs, convs.map(() => false), dense, extra);
  return {
    name: `${arch}${depth}`,
    arch,
    depth,
    convLayers: convs.length,
    bnLayers: convs.length,
    params: all.trainable,
    totalParams: all.total,
    paramsNoBN: none.trainable,
  };
}

/**
 * Build a fresh (seeded) model. Layer names: `conv{i}` in forward order,
 * `bn{i}` after conv i where BN is on, `act{i}` ReLUs, `fc` classifier;
 * ResNet shortcuts `short{b}_pool` + `short{b}_pad` (option A) or
 * `short{b}_conv` (projection).
 * Bad options raise a NoiselabError naming the option before anything is built.
 */
export function buildModel(name: string, opts: ModelOptions = {}): tfl.LayersModel {
  const { arch, depth } = parseModelName(name);
  const o = resolveOptions(opts, defaultWidth(arch));
  const count = convsOf(arch, depth, o.width, o.inputShape[2]).length;
  const mask = resolveBN(opts.bn, count, `${arch}${depth}`);
  const model = arch === "resnet" ? buildResNet(depth, o, mask) : buildVGG(depth, o, mask);
  const meta: NoiselabModelMeta = {
    name: `${arch}${depth}`,
    arch,
    depth,
    width: o.width,
    numClasses: o.numClasses,
    seed: o.seed,
    bnMask: mask,
    bnLabel: bnLabel(mask),
    ...(arch === "resnet" ? { shortcut: o.shortcut } : {}),
    bnEpsilon: o.bnEpsilon,
    bnMomentum: o.bnMomentum,
  };
  model.setUserDefinedMetadata({ noiselab: meta });
  return model;
}

/** The noiselab metadata of a model built by {@link buildModel} (also survives save/load), if any. */
export function modelMeta(model: tfl.LayersModel): NoiselabModelMeta | undefined {
  const m = model.getUserDefinedMetadata() as { noiselab?: NoiselabModelMeta } | undefined;
  const meta = m?.noiselab;
  // ResNets saved before `shortcut` was recorded were all built with option A
  if (meta && meta.arch === "resnet" && meta.shortcut === undefined) return { ...meta, shortcut: "A" };
  return meta;
}

/** Names of the BN layers present in a model, in forward order. */
export function bnLayerNames(model: tfl.LayersModel): string[] {
  return model.layers.filter((l) => l.getClassName() === "BatchNormalization").map((l) => l.name);
}
