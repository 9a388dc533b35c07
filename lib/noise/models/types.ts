/**
 * The one interface every weight-noise model implements: given the stored
 * values of one tensor, a random stream and the noise level, return the values
 * the (simulated) hardware would compute with. lib/noise `perturbWeights` calls
 * it once per selected tensor (a layer's kernel, bias, BN array), with the
 * tensor's own stream, so every model is paired across models and noise levels
 * as the Gaussian forms always were.
 * @module
 */
import type { Rng } from "../../util/rng.ts";

/** What a noise model is told about the tensor it perturbs. */
export interface NoiseContext {
  /** Noise level η (>= 0; its meaning is the model's, see each model's JSDoc). */
  eta: number;
  /** `<layer>/<weight>`, e.g. `conv3/kernel` (for messages and provenance). */
  name: string;
  /** The tensor's shape; the last axis is the output axis (conv `[kh, kw, in, out]`, dense `[in, out]`). */
  shape: number[];
}

/** A weight-noise model: a name, its parameters (provenance) and what it does to one tensor. */
export interface NoiseModel {
  /** The `SweepConfig.noiseType` that selects it. */
  readonly name: string;
  /** Its parameters, as stored in provenance (JSON-serialisable). */
  readonly params: Readonly<Record<string, unknown>>;
  /**
   * The values the hardware computes with for stored values `w` (a new array;
   * `w` is not modified). Consumes `rng` in a fixed order, so the same stream
   * gives the same result.
   */
  apply(w: Float32Array, rng: Rng, ctx: NoiseContext): Float32Array;
}
