/**
 * Weight-noise injection: which stored tensors get noise (targets), how much
 * (forms), and perturb-then-always-restore.
 *
 * Forms (eta >= 0, z ~ N(0, 1) drawn independently per element):
 * - `additive-std`:   W + eta·std(W)·z, std over the whole tensor (the paper's form);
 * - `additive-max`:   W + eta·max|W|·z (AIHWKit's convention);
 * - `multiplicative`: W·(1 + eta·z).
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
import { gaussianFill, makeRng, type Rng } from "../util/rng.ts";

/** Which stored tensors get noise. */
export type NoiseTarget = "kernels" | "biases" | "bn-affine" | "bn-mean" | "bn-var" | "all";
/** How the noise scales with the weights. */
export type NoiseForm = "additive-std" | "additive-max" | "multiplicative";

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
export const NOISE_FORMS: readonly NoiseForm[] = ["additive-std", "additive-max", "multiplicative"];

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

/** The stored tensors that `targets` select. */
export function selectWeights(model: tfl.LayersModel, targets: NoiseTarget[]): WeightRef[] {
  const all = targets.includes("all");
  return listWeights(model).filter((w) => all || (targets as string[]).includes(w.category));
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
 * z). For `multiplicative` it is relative (eta), applied as w·eta·z.
 */
export function noiseScale(form: NoiseForm, eta: number, w: Float32Array): number {
  if (form === "multiplicative") return eta;
  const n = w.length;
  if (n === 0) return 0;
  if (form === "additive-max") {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(w[i]));
    return eta * m;
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += w[i];
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (w[i] - mean) ** 2;
  return eta * Math.sqrt(ss / n); // population std of the tensor
}

/** Noisy copy of `w` drawn from `rng` (pure function; the model is untouched). */
export function noisyValues(form: NoiseForm, eta: number, w: Float32Array, rng: Rng): Float32Array {
  const z = gaussianFill(rng, new Float32Array(w.length));
  const scale = noiseScale(form, eta, w);
  const out = new Float32Array(w.length);
  if (form === "multiplicative") { for (let i = 0; i < w.length; i++) out[i] = w[i] * (1 + scale * z[i]); }
  else for (let i = 0; i < w.length; i++) out[i] = w[i] + scale * z[i];
  return out;
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
  const refs = selectWeights(model, s.targets);
  const restore = snapshotWeights(refs);
  try {
    for (const r of refs) {
      const rng = typeof seed === "function" ? seed : makeRng(`${seed}:${r.name}`);
      const w = r.variable.read().dataSync() as Float32Array;
      writeVariable(r.variable, noisyValues(s.form, eta, w, rng));
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
