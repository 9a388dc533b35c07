/**
 * The Gaussian weight-noise forms as {@link NoiseModel}s (z ~ N(0, 1) per element, η >= 0):
 * - `additive-std`: W + η·std(W)·z, std per tensor (population) — Fagbohungbe & Qian (IEEE Access
 *   2022), the paper this workspace reproduces;
 * - `additive-max`: W + η·max|W|·z — AIHWKit's convention (noise relative to the largest weight of
 *   the tensor, which a crossbar maps to g_max);
 * - `multiplicative`: W·(1 + η·z).
 * The numbers are those of lib/noise/inject.ts `noisyValues` (one code path, bitwise unchanged).
 * @module
 */
import { gaussianFill, type Rng } from "../../util/rng.ts";
import type { NoiseContext, NoiseModel } from "./types.ts";

/** The Gaussian forms. */
export type GaussianForm = "additive-std" | "additive-max" | "multiplicative";
/** Every Gaussian form. */
export const GAUSSIAN_FORMS: readonly GaussianForm[] = ["additive-std", "additive-max", "multiplicative"];

/**
 * The noise standard deviation for tensor values `w` (before multiplying by
 * z). For `multiplicative` it is relative (η), applied as w·η·z.
 */
export function gaussianScale(form: GaussianForm, eta: number, w: Float32Array): number {
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

/** Noisy copy of `w` under a Gaussian form, drawn from `rng` (n normal draws, element order). */
export function gaussianValues(form: GaussianForm, eta: number, w: Float32Array, rng: Rng): Float32Array {
  const z = gaussianFill(rng, new Float32Array(w.length));
  const scale = gaussianScale(form, eta, w);
  const out = new Float32Array(w.length);
  if (form === "multiplicative") { for (let i = 0; i < w.length; i++) out[i] = w[i] * (1 + scale * z[i]); }
  else for (let i = 0; i < w.length; i++) out[i] = w[i] + scale * z[i];
  return out;
}

/** A Gaussian form as a {@link NoiseModel}. */
export class GaussianNoiseModel implements NoiseModel {
  readonly params: Readonly<Record<string, unknown>>;
  constructor(readonly name: GaussianForm) {
    this.params = Object.freeze({ form: name });
  }
  apply(w: Float32Array, rng: Rng, ctx: NoiseContext): Float32Array {
    return gaussianValues(this.name, ctx.eta, w, rng);
  }
}
