/**
 * Shared pieces of the model builders: options, seeded initialisers, the
 * conv(+BN) unit and the analytic parameter count.
 * @module
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { makeRng, nextSeed } from "../util/rng.ts";
import { NoiselabError } from "../util/errors.ts";
import type { BNSpec } from "./bn.ts";

/** Options of {@link buildModel}. */
export interface ModelOptions {
  /** Where BN goes (default "all"); see `bn.ts`. */
  bn?: BNSpec;
  /** Output classes (default 10). */
  numClasses?: number;
  /** Initialisation seed (default 0): same seed ⇒ same initial weights. */
  seed?: number;
  /**
   * Width of the first stage: ResNet default 16 (stages 16/32/64 scaled by
   * width/16), VGG default 64 (every conv scaled by width/64). Small values
   * make tiny test models.
   */
  width?: number;
  /** Input shape [H, W, C] (default [32, 32, 3]). VGG needs H and W divisible by 32. */
  inputShape?: [number, number, number];
  /**
   * BN momentum of the moving statistics, in the tfjs/Keras convention:
   * `moving = m·moving + (1 − m)·batch`, 0 <= m < 1. Default 0.9 (= PyTorch's
   * `momentum=0.1`, akamaster's setting). Keras's `BatchNormalization` default
   * is 0.99 (keras.io/api/layers/normalization_layers/batch_normalization).
   */
  bnMomentum?: number;
  /**
   * BN epsilon, added to the variance: `y = γ·(x − μ)/sqrt(σ² + ε) + β`, ε > 0.
   * Default 1e-5 (PyTorch / akamaster); Keras's default is 1e-3 (same page).
   * With noise on the moving variance, a channel turns NaN once its noisy σ²
   * drops below −ε, so ε sets how negative a variance must get before NaN.
   */
  bnEpsilon?: number;
  /**
   * ResNet shortcut where a block changes shape (stride 2, more channels);
   * ignored by VGG (no shortcuts). Default "A". See {@link ResNetShortcut}.
   */
  shortcut?: ResNetShortcut;
  /**
   * Initialisation of a BN-free residual branch's last conv (ResNet only; branches with BN
   * are always He-normal). Default "zero". See {@link ResidualInit}.
   */
  residualInit?: ResidualInit;
}

/**
 * How the last convolution of a residual branch WITHOUT BN is initialised:
 * - `"zero"`: zeros, so every block starts as the identity (Fixup's rule 2,
 *   Zhang et al. 2019, arXiv 1901.09321; also Goyal et al. 2017's zero-γ);
 *   the branch's first conv then gets no gradient until the last one has grown,
 *   which makes early training slow;
 * - `"scaled"`: He-normal multiplied by 1/√L, L = residual blocks of the
 *   network, so the variance of the residual stream grows by (1 + 1/L) per
 *   block, about e over the whole net instead of 2^L (the branch-scaling
 *   argument of Fixup §3 / De & Smith 2020, arXiv 2002.10444, SkipInit).
 */
export type ResidualInit = "zero" | "scaled";

/** The values {@link ResidualInit} takes. */
export const RESIDUAL_INITS: readonly ResidualInit[] = ["zero", "scaled"];

/**
 * ResNet shortcut at a change of shape:
 * - `"A"`: He et al.'s CIFAR option A, parameter-free (every second pixel,
 *   channels zero-padded), as akamaster's `pytorch_resnet_cifar10`;
 * - `"projection"`: a 1x1 convolution with stride 2 and a bias, no BN and
 *   no activation (layer `short{b}_conv`), as the Keras CIFAR-10 ResNet v1
 *   example (`resnet_layer(kernel_size=1, strides=2, activation=None,
 *   batch_normalization=False)`; Keras `Conv2D` has `use_bias=True`).
 */
export type ResNetShortcut = "A" | "projection";

/** The values {@link ResNetShortcut} takes. */
export const RESNET_SHORTCUTS: readonly ResNetShortcut[] = ["A", "projection"];

/** Default BN momentum of the models (tfjs/Keras convention; PyTorch's 0.1). */
export const DEFAULT_BN_MOMENTUM = 0.9;
/** Default BN epsilon of the models (PyTorch's). */
export const DEFAULT_BN_EPSILON = 1e-5;
/** Default ResNet shortcut. */
export const DEFAULT_SHORTCUT: ResNetShortcut = "A";

/** One convolution of a model, in forward order (used for parameter counting). */
export interface ConvSpec {
  inChannels: number;
  outChannels: number;
  kernel: number;
}

/** Resolved options (every field set). */
export interface ResolvedModelOptions {
  numClasses: number;
  seed: number;
  width: number;
  inputShape: [number, number, number];
  bnMomentum: number;
  bnEpsilon: number;
  shortcut: ResNetShortcut;
  residualInit: ResidualInit;
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new NoiselabError(`${name}: expected a positive integer, got ${JSON.stringify(v)}`, name);
  }
  return v;
}

/** Validate and fill in {@link ModelOptions} (everything except `bn`). */
export function resolveOptions(opts: ModelOptions, defaultWidth: number): ResolvedModelOptions {
  const numClasses = positiveInt(opts.numClasses ?? 10, "numClasses");
  const width = positiveInt(opts.width ?? defaultWidth, "width");
  const seed = opts.seed ?? 0;
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new NoiselabError(`seed: expected a number, got ${JSON.stringify(seed)}`, "seed");
  }
  const inputShape = opts.inputShape ?? [32, 32, 3];
  if (!Array.isArray(inputShape) || inputShape.length !== 3) {
    throw new NoiselabError(
      `inputShape: expected [H, W, C], got ${JSON.stringify(inputShape)}`,
      "inputShape",
    );
  }
  inputShape.forEach((d) => positiveInt(d, "inputShape"));
  const bnMomentum = opts.bnMomentum ?? DEFAULT_BN_MOMENTUM;
  if (typeof bnMomentum !== "number" || !(bnMomentum >= 0 && bnMomentum < 1)) {
    throw new NoiselabError(
      `bnMomentum: expected a number 0 <= m < 1, got ${JSON.stringify(bnMomentum)}`,
      "bnMomentum",
    );
  }
  const bnEpsilon = opts.bnEpsilon ?? DEFAULT_BN_EPSILON;
  if (typeof bnEpsilon !== "number" || !(bnEpsilon > 0 && Number.isFinite(bnEpsilon))) {
    throw new NoiselabError(
      `bnEpsilon: expected a finite number > 0, got ${JSON.stringify(bnEpsilon)}`,
      "bnEpsilon",
    );
  }
  const shortcut = opts.shortcut ?? DEFAULT_SHORTCUT;
  if (!RESNET_SHORTCUTS.includes(shortcut)) {
    throw new NoiselabError(
      `shortcut: expected "A" or "projection", got ${JSON.stringify(shortcut)}`,
      "shortcut",
    );
  }
  const residualInit = opts.residualInit ?? "zero";
  if (!RESIDUAL_INITS.includes(residualInit)) {
    throw new NoiselabError(
      `residualInit: expected "zero" or "scaled", got ${JSON.stringify(residualInit)}`,
      "residualInit",
    );
  }
  return {
    numClasses,
    seed,
    width,
    inputShape: [...inputShape],
    bnMomentum,
    bnEpsilon,
    shortcut,
    residualInit,
  };
}

/** Per-layer initialiser seed derived from the model seed and the layer name (stable across runs). */
export function layerSeed(seed: number, layerName: string): number {
  return nextSeed(makeRng(`init:${seed}:${layerName}`));
}

/**
 * He-normal (fan-in, scale 2; tfjs draws it truncated) initialiser with a layer-specific seed,
 * optionally multiplied by `gain` (variance scale 2·gain²).
 */
export function heNormal(seed: number, layerName: string, gain = 1) {
  if (gain === 1) return tfl.initializers.heNormal({ seed: layerSeed(seed, layerName) });
  return tfl.initializers.varianceScaling({
    scale: 2 * gain * gain,
    mode: "fanIn",
    distribution: "truncatedNormal",
    seed: layerSeed(seed, layerName),
  });
}

/** Builds conv{i} [+ bn{i}] units in forward order, numbering them as DESIGN.md requires. */
export class ConvStack {
  /** Number of convs created so far (the next one is conv{count+1}). */
  count = 0;
  constructor(private readonly bnMask: boolean[], private readonly o: ResolvedModelOptions) {}

  /**
   * 3x3 (or k x k) "same" conv, no activation; followed by BN when the mask
   * says so. Without BN the conv gets a bias. `residualGain` marks a residual
   * branch's last conv: without BN its kernel is zeros (gain 0) or He-normal times
   * the gain; with BN it stays He-normal.
   */
  conv(
    x: tfl.SymbolicTensor,
    filters: number,
    { stride = 1, kernel = 3, residualGain }: { stride?: number; kernel?: number; residualGain?: number } =
      {},
  ): tfl.SymbolicTensor {
    const i = ++this.count;
    const hasBN = this.bnMask[i - 1];
    if (hasBN === undefined) throw new Error(`internal: conv${i} has no BN slot`);
    const name = `conv${i}`;
    // A strided conv pads explicitly by (kernel-1)/2 on every side, as PyTorch's `padding=1` does:
    // tfjs "same" with stride 2 on an even size pads only bottom/right, which centres the kernels on
    // odd pixels while the option-A shortcut (1x1, stride 2) takes the even ones.
    const explicitPad = stride > 1 && kernel > 1;
    if (explicitPad) {
      const p = Math.floor((kernel - 1) / 2);
      x = tfl.layers.zeroPadding2d({ name: `pad${i}`, padding: [[p, p], [p, p]] }).apply(
        x,
      ) as tfl.SymbolicTensor;
    }
    let y = tfl.layers.conv2d({
      name,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: explicitPad ? "valid" : "same",
      useBias: !hasBN,
      kernelInitializer: residualGain === undefined || hasBN
        ? heNormal(this.o.seed, name)
        : residualGain === 0
        ? "zeros"
        : heNormal(this.o.seed, name, residualGain),
      biasInitializer: "zeros",
    }).apply(x) as tfl.SymbolicTensor;
    if (hasBN) {
      y = tfl.layers.batchNormalization({
        name: `bn${i}`,
        axis: -1,
        momentum: this.o.bnMomentum,
        epsilon: this.o.bnEpsilon,
      }).apply(y) as tfl.SymbolicTensor;
    }
    return y;
  }

  /** Zero-initialise flag for a residual branch's last conv: true when that conv will have no BN. */
  nextHasBN(): boolean {
    return this.bnMask[this.count] ?? false;
  }
}

/** ReLU as its own named layer. */
export function relu(x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor {
  return tfl.layers.activation({ activation: "relu", name }).apply(x) as tfl.SymbolicTensor;
}

/**
 * Parameter count from the conv list: `trainable` counts conv kernels (+bias
 * when no BN), BN gamma/beta and the classifier — the convention of the
 * published tables; `total` adds BN's moving mean/variance (what tfjs'
 * `countParams()` reports). `extraConvs` are convolutions outside the BN
 * slots (ResNet projection shortcuts): kernel + bias, never BN.
 */
export function countParams(
  convs: ConvSpec[],
  bnMask: boolean[],
  dense: { in: number; out: number }[],
  extraConvs: ConvSpec[] = [],
): { trainable: number; total: number } {
  let trainable = 0;
  for (const c of extraConvs) trainable += c.kernel * c.kernel * c.inChannels * c.outChannels + c.outChannels;
  let stats = 0;
  convs.forEach((c, i) => {
    trainable += c.kernel * c.kernel * c.inChannels * c.outChannels;
    if (bnMask[i]) {
      trainable += 2 * c.outChannels;
      stats += 2 * c.outChannels;
    } else trainable += c.outChannels;
  });
  for (const d of dense) trainable += d.in * d.out + d.out;
  return { trainable, total: trainable + stats };
}
