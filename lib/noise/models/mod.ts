/**
 * Weight-noise models behind one interface ({@link NoiseModel}): the Gaussian
 * forms (`additive-std`, `additive-max`, `multiplicative`; gaussian.ts) and
 * PCM-like inference noise with drift and global drift compensation (`pcm`;
 * pcm.ts, constants and sources in its JSDoc), plus clipping before mapping
 * (clip.ts). {@link noiseModelFor} builds the model a `NoiseSpec` names.
 * @module
 */
import { type GaussianForm, GaussianNoiseModel } from "./gaussian.ts";
import { PcmNoiseModel, type PcmParams } from "./pcm.ts";
import type { NoiseModel } from "./types.ts";

export * from "./types.ts";
export * from "./gaussian.ts";
export * from "./pcm.ts";
export * from "./clip.ts";

/**
 * The model a noise type names: a Gaussian form, or `pcm` with its parameters (defaults: t_inf 0 s, no
 * compensation, per-layer mapping).
 */
export function noiseModelFor(form: GaussianForm | "pcm", pcm?: PcmParams): NoiseModel {
  if (form === "pcm") return new PcmNoiseModel(pcm ?? { tInference: 0, driftCompensation: false });
  return new GaussianNoiseModel(form);
}
