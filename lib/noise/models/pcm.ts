/**
 * PCM-like inference noise: what a phase-change-memory crossbar does to
 * programmed weights over time, after AIHWKit's `PCMLikeNoiseModel`
 * (`aihwkit/inference/noise/pcm.py`), which implements the statistical PCM
 * model of Nandakumar et al. (2019) as used by Joshi et al., "Accurate deep
 * neural network inference using computational phase-change memory",
 * Nat. Commun. 11, 2473 (2020).
 *
 * **Where the constants come from.** They are AIHWKit's `PCMLikeNoiseModel`
 * defaults. Checked line by line against IBM/aihwkit
 * `src/aihwkit/inference/noise/pcm.py` (PCMLikeNoiseModel, commit 1384c56,
 * read 2026-11-30): g_max = 25 µS, prog_coeff = (0.26348, 1.9650, −1.1731)
 * fitted at g_max 25 µS, t_read = 250 ns, t0 = 20 s, the drift lines (slopes
 * −0.0155 / −0.0125, intercepts 0.0244 / −0.0059, clips [0.049, 0.1] /
 * [0.008, 0.045], ν = |μ + σ·z|), Q_s = min(0.0088 / max((|g_prog|/g_max)^0.65,
 * 1e-3), 0.2), the zero clip 1e-7 of g/g_max, t = t_inf + t0, and the clamps of
 * programmed and final conductances at 0 all match.
 *
 * **The model, per tensor** (a layer's kernel, or any other selected array;
 * last axis = outputs), with η the sweep's noise level (AIHWKit's
 * `prog_noise_scale` = `read_noise_scale` = η; `drift_scale` = 1):
 * 1. optional clipping before mapping (lib/noise `clipValues`, `clipSigma`);
 * 2. mapping to a differential pair (AIHWKit's `SinglePairConductanceConverter`,
 *    g_min = 0): g⁺ = g_max·max(W, 0)/s, g⁻ = g_max·max(−W, 0)/s, with the
 *    mapping scale s chosen by {@link PcmMapping}: `per-layer` (the default and
 *    the only mapping before it was a choice) s = max|W| of the tensor;
 *    `per-channel` s = s_c = max|W| over the element's output channel c (the
 *    last axis, {@link pcmChannelScales});
 * 3. programming noise per device: g_prog = max(0, g_T + η·σ_prog(g_T)·z),
 *    σ_prog = (c0 + c1·(g_T/g_max) + c2·(g_T/g_max)²)·g_max/25 µS with
 *    (c0, c1, c2) = (0.26348, 1.9650, −1.1731) ({@link PCM_PROG_COEFF});
 * 4. drift exponent per device, from g_r = max(|g_T|/g_max, 1e-7):
 *    μ_ν = clip(−0.0155·ln g_r + 0.0244, 0.049, 0.1),
 *    σ_ν = clip(−0.0125·ln g_r − 0.0059, 0.008, 0.045),
 *    ν = |μ_ν + σ_ν·z| ({@link pcmDriftMoments});
 * 5. drift at inference time t_inf (seconds after programming), t = t_inf + t0:
 *    g_drift = g_prog·(t/t0)^(−ν) when t > t0;
 * 6. 1/f read noise accumulated since programming:
 *    Q_s = min(0.0088 / max((g_prog/g_max)^0.65, 1e-3), 0.2),
 *    σ_read = Q_s·√ln((t + t_read)/(2·t_read)),
 *    g_t = max(0, g_drift + |g_drift|·η·σ_read·z);
 * 7. back to weights: W_t = (g⁺_t − g⁻_t)·s/g_max (s = s_c per channel under
 *    `per-channel`: AIHWKit's digital output scales, applied after the array);
 * 8. optional global drift compensation (AIHWKit's `GlobalDriftCompensation`):
 *    a reference read-out r(W) = max(mean |W|, 1e-4) (the layer's mean |output|
 *    for the one-hot inputs eye(in), as AIHWKit) taken right after programming (t_inf = 0,
 *    its own read-noise draw) and at t_inf; the layer's output is scaled by
 *    α = r(W_0)/r(W_t), here applied to the weights (W_t·α), which is the same
 *    for the matrix-vector product. α is ONE scalar per tensor under both
 *    mappings, as AIHWKit's (one `alpha` per tile, `InferenceTileWithPeriphery`
 *    in aihwkit/simulator/tiles/inference.py). Under `per-channel` the read-out
 *    is taken, as AIHWKit takes it (`_forward_drift_readout_tensor` runs the
 *    analog tile, before the digital mapping scales), on the array's values in
 *    conductance units, U = (g⁺ − g⁻)/g_max = W/s_c, so every channel weighs
 *    the same whatever its scale; under `per-layer` it stays on W_t as before
 *    (U = W/s there, so α is the same up to rounding and the 1e-4 floor, and
 *    the stored numbers are unchanged).
 *
 * Random stream order per tensor (n elements, each a pair): programming z for
 * g⁺ then g⁻ (2n), drift z (2n), read z at t (2n), read z at t_inf = 0 (2n,
 * drawn only with compensation) — the same under both mappings (only the
 * conductances the z act on differ). The same stream at different t_inf gives
 * the same devices (programming noise and ν), read at a different time.
 * @module
 */
import { NoiselabError } from "../../util/errors.ts";
import { gaussianFill, type Rng } from "../../util/rng.ts";
import type { NoiseContext, NoiseModel } from "./types.ts";

/** g_max of AIHWKit's PCMLikeNoiseModel default converter, in µS. */
export const PCM_G_MAX = 25;
/** Programming-noise polynomial coefficients (µS at g_max = 25 µS; constant, linear, quadratic in g/g_max). */
export const PCM_PROG_COEFF: readonly [number, number, number] = [0.26348, 1.9650, -1.1731];
/** Read duration t_read in seconds (250 ns). */
export const PCM_T_READ = 250e-9;
/** Time t0 after programming at which the target conductance is reached, in seconds (20 s). */
export const PCM_T0 = 20;
/** 1/f read-noise constant Q_s. */
export const PCM_Q_S = 0.0088;
/** Smallest g/g_max used in the drift-parameter lines (AIHWKit `_ZERO_CLIP`). */
export const PCM_ZERO_CLIP = 1e-7;

/**
 * How a tensor's weights are mapped to conductances (step 2), after AIHWKit's
 * mapping options (IBM/aihwkit `src/aihwkit/simulator/parameters/mapping.py`,
 * `MappingParameter`: `weight_scaling_omega` = 1 maps the abs-max weight to
 * the largest conductance, `weight_scaling_columnwise` chooses the max;
 * applied in `src/aihwkit/simulator/tiles/periphery.py`
 * `TileWithPeriphery.apply_weight_scaling`: abs-max over the whole
 * `[out, in]` tile, or over each output row, kept as digital output scales):
 * - `per-layer` — s = max|W| of the tensor (`weight_scaling_columnwise=False`;
 *   the default, and this model's only mapping before the choice existed);
 * - `per-channel` — s_c = max|W| over each output channel, the tensor's LAST
 *   axis as stored here (conv kernels `[kh, kw, in, out]`, dense `[in, out]`;
 *   `weight_scaling_columnwise=True`, AIHWKit's output rows). An all-zero
 *   channel is mapped with the tensor's max|W| (as under `per-layer`). Tensors
 *   of rank < 2 (biases, BN vectors: one element per channel, which would put
 *   every element at ±g_max) are mapped per tensor.
 */
export type PcmMapping = "per-layer" | "per-channel";
/** Every {@link PcmMapping}. */
export const PCM_MAPPINGS: readonly PcmMapping[] = ["per-layer", "per-channel"];

/** Parameters of {@link PcmNoiseModel}. */
export interface PcmParams {
  /** Inference time t_inf in seconds after programming (>= 0). */
  tInference: number;
  /** Apply global drift compensation (step 8). */
  driftCompensation: boolean;
  /** g_max in µS (default {@link PCM_G_MAX}; the weights are invariant to it). */
  gMax?: number;
  /** Conductance mapping ({@link PcmMapping}; default "per-layer"). */
  mapping?: PcmMapping;
}

/** Common inference times: 1 s, 1 h, 1 day, 1 year (365 days), in seconds. */
export const PCM_INFERENCE_TIMES: Readonly<Record<string, number>> = Object.freeze({
  "1s": 1,
  "1h": 3600,
  "1d": 86400,
  "1y": 365 * 86400,
});

/**
 * Seconds from a number of seconds or a number with a unit: `s`, `m` (minutes),
 * `h`, `d` (days), `y` (365 days), e.g. "3600", "1h", "1y".
 * @throws NoiselabError naming `subject` (default "inferenceTime")
 */
export function parseInferenceTime(text: string, subject = "inferenceTime"): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(s|m|h|d|y)?\s*$/i.exec(text);
  if (!m) {
    throw new NoiselabError(
      `${subject}: expected seconds or a number with a unit s|m|h|d|y (e.g. 1h, 1y), got ${
        JSON.stringify(text)
      }`,
      subject,
    );
  }
  const unit = { s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 }[(m[2] ?? "s").toLowerCase() as "s"];
  return Number(m[1]) * unit;
}

/** σ_prog(g) in µS (step 3) for target conductances g (µS). */
export function pcmProgSigma(g: number, gMax = PCM_G_MAX): number {
  const x = g / gMax;
  const [c0, c1, c2] = PCM_PROG_COEFF;
  return (c0 + c1 * x + c2 * x * x) * gMax / 25;
}

/** Programmed conductances (step 3): max(0, g + scale·σ_prog(g)·z). */
export function pcmProgram(g: Float64Array, rng: Rng, scale = 1, gMax = PCM_G_MAX): Float64Array {
  const z = gaussianFill(rng, new Float32Array(g.length));
  const out = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = Math.max(0, g[i] + scale * pcmProgSigma(g[i], gMax) * z[i]);
  return out;
}

/** μ_ν and σ_ν of the drift exponent for a target conductance g (step 4). */
export function pcmDriftMoments(g: number, gMax = PCM_G_MAX): { mean: number; std: number } {
  const r = Math.max(Math.abs(g / gMax), PCM_ZERO_CLIP);
  const l = Math.log(r);
  return {
    mean: Math.min(Math.max(-0.0155 * l + 0.0244, 0.049), 0.1),
    std: Math.min(Math.max(-0.0125 * l - 0.0059, 0.008), 0.045),
  };
}

/** Drift exponents ν per device (step 4): |μ_ν + σ_ν·z|. */
export function pcmDriftExponents(g: Float64Array, rng: Rng, gMax = PCM_G_MAX): Float64Array {
  const z = gaussianFill(rng, new Float32Array(g.length));
  const out = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const m = pcmDriftMoments(g[i], gMax);
    out[i] = Math.abs(m.mean + m.std * z[i]);
  }
  return out;
}

/** The drift factor (t/t0)^(−ν) at inference time tInference (step 5; 1 when t <= t0). */
export function pcmDriftFactor(nu: number, tInference: number): number {
  const t = tInference + PCM_T0;
  return t > PCM_T0 ? Math.pow(t / PCM_T0, -nu) : 1;
}

/** Q_s for a programmed conductance (step 6). */
export function pcmQs(gProg: number, gMax = PCM_G_MAX): number {
  return Math.min(PCM_Q_S / Math.max(Math.pow(Math.abs(gProg) / gMax, 0.65), 1e-3), 0.2);
}

/** The relative read-noise σ of a device with programmed conductance gProg at tInference (step 6, before η). */
export function pcmReadSigma(gProg: number, tInference: number, gMax = PCM_G_MAX): number {
  const t = tInference + PCM_T0;
  return pcmQs(gProg, gMax) * Math.sqrt(Math.log((t + PCM_T_READ) / (2 * PCM_T_READ)));
}

/** Conductances at tInference (steps 5 and 6) from programmed ones and drift exponents. */
export function pcmReadAt(
  gProg: Float64Array,
  nu: Float64Array,
  tInference: number,
  rng: Rng,
  scale = 1,
  gMax = PCM_G_MAX,
): Float64Array {
  const z = gaussianFill(rng, new Float32Array(gProg.length));
  const out = new Float64Array(gProg.length);
  for (let i = 0; i < gProg.length; i++) {
    const gd = gProg[i] * pcmDriftFactor(nu[i], tInference);
    out[i] = Math.max(0, gd + Math.abs(gd) * scale * pcmReadSigma(gProg[i], tInference, gMax) * z[i]);
  }
  return out;
}

/**
 * The read-out of global drift compensation, as AIHWKit's `GlobalDriftCompensation`
 * (aihwkit/inference/compensation/drift.py: read-out inputs = the one-hot vectors
 * `eye(in_size)`, read-out = `clamp(mean |output|, min=1e-4)`): with one-hot
 * inputs the outputs are the weights themselves, so the read-out is the mean
 * |w| over the whole tensor, at least 1e-4. `shape` is accepted for the
 * interface and unused (the read-out is the same for every layout).
 */
export function driftReadout(w: ArrayLike<number>, _shape: number[]): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += Math.abs(w[i]);
  return Math.max(s / Math.max(w.length, 1), 1e-4);
}

/**
 * The mapping scales of step 2 for tensor values `w` of shape `shape`: one per
 * output channel (`scales[i % scales.length]` is element i's, the last axis
 * varying fastest). `per-layer`, and any tensor of rank < 2, gives one scale,
 * max|W|; `per-channel` gives max|W| over each channel of the last axis, an
 * all-zero channel taking the tensor's max|W| ({@link PcmMapping}). The tensor
 * max is 0 only for an all-zero tensor.
 * @throws NoiselabError naming `pcmMapping` when `per-channel` gets a shape whose size is not w.length
 */
export function pcmChannelScales(w: ArrayLike<number>, shape: number[], mapping: PcmMapping): Float64Array {
  const n = w.length;
  let s = 0;
  for (let i = 0; i < n; i++) s = Math.max(s, Math.abs(w[i]));
  if (mapping === "per-layer" || shape.length < 2) return Float64Array.of(s);
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[shape.length - 1];
  if (size !== n || c < 1) {
    throw new NoiselabError(
      `pcmMapping: per-channel mapping needs the tensor's shape, got [${shape.join(", ")}] for ${n} values`,
      "pcmMapping",
    );
  }
  const out = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    const a = Math.abs(w[i]), k = i % c;
    if (a > out[k]) out[k] = a;
  }
  for (let k = 0; k < c; k++) if (out[k] === 0) out[k] = s;
  return out;
}

/** Version of the drift-compensation read-out, part of the sweep key when compensation is on. */
export const DRIFT_READOUT = "aihwkit-eye-mean-abs";

/** PCM-like inference noise as a {@link NoiseModel} (the steps of the module JSDoc; η scales programming and read noise). */
export class PcmNoiseModel implements NoiseModel {
  readonly name = "pcm";
  readonly params: Readonly<Record<string, unknown>>;
  readonly gMax: number;
  readonly mapping: PcmMapping;
  constructor(readonly p: PcmParams) {
    this.gMax = p.gMax ?? PCM_G_MAX;
    this.mapping = p.mapping ?? "per-layer";
    if (!PCM_MAPPINGS.includes(this.mapping)) {
      throw new NoiselabError(
        `pcmMapping: unknown mapping ${JSON.stringify(this.mapping)}; use ${PCM_MAPPINGS.join(", ")}`,
        "pcmMapping",
      );
    }
    this.params = Object.freeze({
      tInference: p.tInference,
      driftCompensation: p.driftCompensation,
      mapping: this.mapping,
      gMax: this.gMax,
      progCoeff: [...PCM_PROG_COEFF],
      tRead: PCM_T_READ,
      t0: PCM_T0,
      qS: PCM_Q_S,
      source: "AIHWKit PCMLikeNoiseModel defaults (Nandakumar et al. 2019; Joshi et al. 2020)",
    });
  }

  apply(w: Float32Array, rng: Rng, ctx: NoiseContext): Float32Array {
    const n = w.length;
    if (n === 0) return w.slice();
    // mapping scales (step 2): one (per-layer: the same arithmetic as before the choice) or one per channel
    const s = pcmChannelScales(w, ctx.shape, this.mapping);
    const c = s.length;
    if (s[0] === 0) return w.slice(); // all-zero tensor (a channel scale is 0 only then)
    const gMax = this.gMax;
    const g = new Float64Array(2 * n); // [g+ (n), g- (n)]
    for (let i = 0; i < n; i++) {
      g[i] = gMax * Math.max(w[i], 0) / s[i % c];
      g[n + i] = gMax * Math.max(-w[i], 0) / s[i % c];
    }
    const gProg = pcmProgram(g, rng, ctx.eta, gMax);
    const nu = pcmDriftExponents(g, rng, gMax);
    const gT = pcmReadAt(gProg, nu, this.p.tInference, rng, ctx.eta, gMax);
    const toW = (gg: Float64Array) => {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = (gg[i] - gg[n + i]) * s[i % c] / gMax;
      return out;
    };
    const wT = toW(gT);
    let alpha = 1;
    if (this.p.driftCompensation) {
      const g0 = pcmReadAt(gProg, nu, 0, rng, ctx.eta, gMax);
      let r0: number, rT: number;
      if (this.mapping === "per-layer") {
        r0 = driftReadout(toW(g0), ctx.shape);
        rT = driftReadout(wT, ctx.shape);
      } else {
        // the array's read-out in conductance units (before the digital scales), as AIHWKit (step 8)
        const toU = (gg: Float64Array) => {
          const out = new Float64Array(n);
          for (let i = 0; i < n; i++) out[i] = (gg[i] - gg[n + i]) / gMax;
          return out;
        };
        r0 = driftReadout(toU(g0), ctx.shape);
        rT = driftReadout(toU(gT), ctx.shape);
      }
      alpha = rT > 0 ? r0 / rT : 1;
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = wT[i] * alpha;
    return out;
  }
}
