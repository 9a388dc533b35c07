/**
 * Weight-noise injection: which stored tensors get noise (targets), how much
 * (forms), and perturb-then-always-restore.
 *
 * Forms (eta >= 0, z ~ N(0, 1) drawn independently per element):
 * - `additive-std`:   W + eta·std(W)·z, std over the whole tensor (the paper's form);
 * - `additive-max`:   W + eta·max|W|·z (AIHWKit's convention);
 * - `multiplicative`: W·(1 + eta·z);
 * - `pcm`: PCM-like inference noise at an inference time (programming noise,
 *   drift, 1/f read noise, optional global drift compensation, conductances
 *   relative to max|W| per layer or per output channel; eta scales the
 *   programming and read noise): lib/noise/models/pcm.ts, with its constants
 *   and sources.
 * Every form is a lib/noise/models `NoiseModel` ({@link noiseModelOf}).
 * Before the noise, tensors may be clipped at ±k·std(W) (`clipSigma`), and
 * BN arrays may be kept digital (`digitalBN`: never selected).
 *
 * Targets (by the weight's name inside its layer):
 * - `kernels`: conv and dense `kernel`; `biases`: `bias`;
 * - `bn-affine`: BN `gamma`/`beta`; `bn-mean`: `moving_mean`; `bn-var`: `moving_variance`;
 * - `all`: every stored tensor, which is what perturbing a Keras model's
 *   `get_weights()` does (the paper's probable behaviour). A noisy moving
 *   variance can turn negative, BN then yields NaN logits; how such rows are
 *   scored is the sweep's `scoring` rule (lib/models `ScoringRule`: NumPy's
 *   argmax by default, so an all-NaN row predicts class 0), and every sweep
 *   row reports the share of such images (`nonFiniteShare`).
 *
 * Random streams: with a string/number `seed`, tensor `<layer>/<weight>` uses
 * its own stream seeded `${seed}:<layer>/<weight>`, so models that share a
 * layer (e.g. `conv1/kernel` with and without BN) get the same z for it.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { makeRng, type Rng } from "../util/rng.ts";
import {
  clipValues,
  gaussianScale,
  gaussianValues,
  type NoiseModel,
  noiseModelFor,
  PCM_MAPPINGS,
  type PcmMapping,
} from "./models/mod.ts";

/** Which stored tensors get noise. */
export type NoiseTarget = "kernels" | "biases" | "bn-affine" | "bn-mean" | "bn-var" | "all";
/** How the noise scales with the weights. */
export type NoiseForm = "additive-std" | "additive-max" | "multiplicative" | "pcm";

/** All targets. */
export const NOISE_TARGETS: readonly NoiseTarget[] = [
  "kernels",
  "biases",
  "bn-affine",
  "bn-mean",
  "bn-var",
  "all",
];
/** All forms. */
export const NOISE_FORMS: readonly NoiseForm[] = ["additive-std", "additive-max", "multiplicative", "pcm"];

/** A noise configuration. */
export interface NoiseSpec {
  /** Noise form (default "additive-std"). */
  form: NoiseForm;
  /** Targets (default ["kernels"]). */
  targets: NoiseTarget[];
  /** Fold BN into the preceding convs before adding noise (sweep only; default false). */
  foldBN?: boolean;
  /**
   * Re-estimate BN moving statistics after noise from this many batches of
   * calibration images (sweep only; the images come from the sweep option
   * `recalibrateBN.x`). 0/undefined = off.
   */
  recalibrateBN?: number;
  /**
   * `pcm` only: inference time in seconds after programming, global drift compensation (default 0 s,
   * off) and the conductance mapping (lib/noise/models `PcmMapping`; present only when "per-channel",
   * so the specs of older sweeps are unchanged).
   */
  pcm?: { tInference: number; driftCompensation: boolean; mapping?: PcmMapping };
  /** Clip each selected tensor at ±k·std(W) before the noise (lib/noise/models `clipValues`); 0/undefined = off. */
  clipSigma?: number;
  /** BN kept digital: BN arrays (γ, β, μ, σ²) are never perturbed, whatever the targets. Default false. */
  digitalBN?: boolean;
}

/** Validate a (partial) spec and fill defaults. Throws a NoiselabError naming `form`/`targets`/... */
export function resolveNoiseSpec(spec: Partial<NoiseSpec> = {}): NoiseSpec {
  const form = spec.form ?? "additive-std";
  if (!NOISE_FORMS.includes(form)) {
    throw new NoiselabError(
      `form: unknown noise form ${JSON.stringify(form)}; use ${NOISE_FORMS.join(", ")}`,
      "form",
    );
  }
  const targets = spec.targets ?? ["kernels"];
  if (!Array.isArray(targets) || targets.length === 0) {
    throw new NoiselabError(`targets: expected a non-empty list of ${NOISE_TARGETS.join(", ")}`, "targets");
  }
  for (const t of targets) {
    if (!NOISE_TARGETS.includes(t)) {
      throw new NoiselabError(
        `targets: unknown target ${JSON.stringify(t)}; use ${NOISE_TARGETS.join(", ")}`,
        "targets",
      );
    }
  }
  const rb = spec.recalibrateBN ?? 0;
  if (!Number.isInteger(rb) || rb < 0) {
    throw new NoiselabError(`recalibrateBN: expected a number of batches >= 0, got ${rb}`, "recalibrateBN");
  }
  const out: NoiseSpec = { form, targets: [...new Set(targets)], foldBN: spec.foldBN ?? false };
  if (rb > 0) out.recalibrateBN = rb;
  // the new fields appear only when set, so specs (and the keys built from them) of older sweeps are unchanged
  if (form === "pcm") {
    const t = spec.pcm?.tInference ?? 0;
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      throw new NoiselabError(`pcm.tInference: expected seconds >= 0, got ${t}`, "tInference");
    }
    out.pcm = { tInference: t, driftCompensation: Boolean(spec.pcm?.driftCompensation) };
    const mapping = spec.pcm?.mapping ?? "per-layer";
    if (!PCM_MAPPINGS.includes(mapping)) {
      throw new NoiselabError(
        `pcm.mapping: unknown mapping ${JSON.stringify(mapping)}; use ${PCM_MAPPINGS.join(", ")}`,
        "mapping",
      );
    }
    if (mapping !== "per-layer") out.pcm.mapping = mapping;
  } else if (spec.pcm) {
    throw new NoiselabError(`pcm: inference time and drift compensation need form "pcm", got ${form}`, "pcm");
  }
  const k = spec.clipSigma ?? 0;
  if (typeof k !== "number" || !Number.isFinite(k) || k < 0) {
    throw new NoiselabError(`clipSigma: expected a multiple of std(W) >= 0 (0 = off), got ${k}`, "clipSigma");
  }
  if (k > 0) out.clipSigma = k;
  if (spec.digitalBN) out.digitalBN = true;
  return out;
}

/** Throws a NoiselabError naming `eta` unless it is a finite number >= 0. */
export function checkEta(eta: number): void {
  if (typeof eta !== "number" || !Number.isFinite(eta) || eta < 0) {
    throw new NoiselabError(`eta: expected a finite noise level >= 0, got ${eta}`, "eta");
  }
}

/** A stored tensor of a model, with its noise category. */
export interface WeightRef {
  /** `<layer>/<weight>`, e.g. `conv3/kernel`, `bn2/moving_variance` (stable across save/load). */
  name: string;
  layer: string;
  /** Weight name inside the layer: kernel, bias, gamma, beta, moving_mean, moving_variance, ... */
  kind: string;
  /** Target category ("other" for anything not listed: only `all` selects it). */
  category: Exclude<NoiseTarget, "all"> | "other";
  variable: tfl.LayerVariable;
}

function categoryOf(kind: string): WeightRef["category"] {
  switch (kind) {
    case "kernel":
    case "depthwise_kernel":
    case "pointwise_kernel":
      return "kernels";
    case "bias":
      return "biases";
    case "gamma":
    case "beta":
      return "bn-affine";
    case "moving_mean":
      return "bn-mean";
    case "moving_variance":
      return "bn-var";
    default:
      return "other";
  }
}

/** Every stored tensor of the model, in layer order. */
export function listWeights(model: tfl.LayersModel): WeightRef[] {
  const out: WeightRef[] = [];
  for (const layer of model.layers) {
    for (const v of layer.weights) {
      const kind = v.originalName.split("/").at(-1)!;
      out.push({
        name: `${layer.name}/${kind}`,
        layer: layer.name,
        kind,
        category: categoryOf(kind),
        variable: v,
      });
    }
  }
  return out;
}

const BN_CATEGORIES: readonly string[] = ["bn-affine", "bn-mean", "bn-var"];

/** The stored tensors that `targets` select (BN arrays left out with `opts.digitalBN`). */
export function selectWeights(
  model: tfl.LayersModel,
  targets: NoiseTarget[],
  opts: { digitalBN?: boolean } = {},
): WeightRef[] {
  const all = targets.includes("all");
  return listWeights(model).filter((w) =>
    (all || (targets as string[]).includes(w.category)) &&
    !(opts.digitalBN && BN_CATEGORIES.includes(w.category))
  );
}

/** Copy the current values of some tensors; the returned function writes them back bitwise. */
export function snapshotWeights(refs: WeightRef[]): () => void {
  const saved = refs.map((r) => ({
    v: r.variable,
    data: (r.variable.read().dataSync() as Float32Array).slice(),
  }));
  return () => {
    for (const s of saved) writeVariable(s.v, s.data);
  };
}

function writeVariable(v: tfl.LayerVariable, data: Float32Array): void {
  const t = tf.tensor(data, v.shape as number[], "float32");
  try {
    v.write(t);
  } finally {
    t.dispose();
  }
}

/**
 * The noise standard deviation for tensor values `w` (before multiplying by
 * z) of a Gaussian form. For `multiplicative` it is relative (eta), applied as
 * w·eta·z. (lib/noise/models `gaussianScale`.)
 */
export function noiseScale(form: NoiseForm, eta: number, w: Float32Array): number {
  if (form === "pcm") throw new NoiselabError("form: pcm noise has no single scale", "form");
  return gaussianScale(form, eta, w);
}

/** Noisy copy of `w` drawn from `rng` under a Gaussian form (pure function; the model is untouched). */
export function noisyValues(form: NoiseForm, eta: number, w: Float32Array, rng: Rng): Float32Array {
  if (form === "pcm") return noiseModelFor("pcm").apply(w, rng, { eta, name: "", shape: [w.length] });
  return gaussianValues(form, eta, w, rng);
}

/** The lib/noise/models `NoiseModel` of a (resolved) spec. */
export function noiseModelOf(spec: NoiseSpec): NoiseModel {
  return noiseModelFor(spec.form, spec.pcm);
}

/**
 * Perturb the model's selected tensors in place; returns a function that
 * restores them bitwise. Prefer {@link withNoise}, which always restores.
 * `seed` string/number: per-tensor streams `${seed}:<layer>/<weight>`;
 * an `Rng`: one stream consumed in layer order.
 */
export function perturbWeights(
  model: tfl.LayersModel,
  spec: Partial<NoiseSpec>,
  eta: number,
  seed: string | number | Rng,
): () => void {
  const s = resolveNoiseSpec(spec);
  checkEta(eta);
  const refs = selectWeights(model, s.targets, { digitalBN: s.digitalBN });
  const noise = noiseModelOf(s);
  const restore = snapshotWeights(refs);
  try {
    for (const r of refs) {
      const rng = typeof seed === "function" ? seed : makeRng(`${seed}:${r.name}`);
      const w = clipValues(r.variable.read().dataSync() as Float32Array, s.clipSigma ?? 0);
      writeVariable(
        r.variable,
        noise.apply(w, rng, { eta, name: r.name, shape: r.variable.shape as number[] }),
      );
    }
  } catch (e) {
    restore();
    throw e;
  }
  return restore;
}

/**
 * Perturb the model (see {@link perturbWeights}), run `fn(model)`, and ALWAYS
 * restore the original weights bitwise — also when `fn` throws. Bad `spec`
 * or `eta` throw before anything is touched.
 */
export async function withNoise<T>(
  model: tfl.LayersModel,
  spec: Partial<NoiseSpec>,
  eta: number,
  seed: string | number | Rng,
  fn: (model: tfl.LayersModel) => T | Promise<T>,
): Promise<T> {
  const restore = perturbWeights(model, spec, eta, seed);
  try {
    return await fn(model);
  } finally {
    restore();
  }
}
