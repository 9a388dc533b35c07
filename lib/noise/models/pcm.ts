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
 *    g_min = 0): s = max|W| of the tensor, g⁺ = g_max·max(W, 0)/s,
 *    g⁻ = g_max·max(−W, 0)/s;
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
 * 7. back to weights: W_t = (g⁺_t − g⁻_t)·s/g_max;
 * 8. optional global drift compensation (AIHWKit's `GlobalDriftCompensation`):
 *    a reference read-out r(W) = max(mean |W|, 1e-4) (the layer's mean |output|
 *    for the one-hot inputs eye(in), as AIHWKit) taken right after programming (t_inf = 0,
 *    its own read-noise draw) and at t_inf; the layer's output is scaled by
 *    α = r(W_0)/r(W_t), here applied to the weights (W_t·α), which is the same
 *    for the matrix-vector product.
 *
 * Random stream order per tensor (n elements, each a pair): programming z for
 * g⁺ then g⁻ (2n), drift z (2n), read z at t (2n), read z at t_inf = 0 (2n,
 * drawn only with compensation). The same stream at different t_inf gives the
 * same devices (programming noise and ν), read at a different time.
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

/** Parameters of {@link PcmNoiseModel}. */
export interface PcmParams {
  /** Inference time t_inf in seconds after programming (>= 0). */
  tInference: number;
  /** Apply global drift compensation (step 8). */
  driftCompensation: boolean;
  /** g_max in µS (default {@link PCM_G_MAX}; the weights are invariant to it). */
  gMax?: number;
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

/** Version of the drift-compensation read-out, part of the sweep key when compensation is on. */
export const DRIFT_READOUT = "aihwkit-eye-mean-abs";

/** PCM-like inference noise as a {@link NoiseModel} (the steps of the module JSDoc; η scales programming and read noise). */
export class PcmNoiseModel implements NoiseModel {
  readonly name = "pcm";
  readonly params: Readonly<Record<string, unknown>>;
  readonly gMax: number;
  constructor(readonly p: PcmParams) {
    this.gMax = p.gMax ?? PCM_G_MAX;
    this.params = Object.freeze({
      tInference: p.tInference,
      driftCompensation: p.driftCompensation,
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
    let s = 0;
    for (let i = 0; i < n; i++) s = Math.max(s, Math.abs(w[i]));
    if (n === 0 || s === 0) return w.slice();
    const gMax = this.gMax;
    const g = new Float64Array(2 * n); // [g+ (n), g- (n)]
    for (let i = 0; i < n; i++) {
      g[i] = gMax * Math.max(w[i], 0) / s;
      g[n + i] = gMax * Math.max(-w[i], 0) / s;
    }
    const gProg = pcmProgram(g, rng, ctx.eta, gMax);
    const nu = pcmDriftExponents(g, rng, gMax);
    const gT = pcmReadAt(gProg, nu, this.p.tInference, rng, ctx.eta, gMax);
    const toW = (gg: Float64Array) => {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = (gg[i] - gg[n + i]) * s / gMax;
      return out;
    };
    const wT = toW(gT);
    let alpha = 1;
    if (this.p.driftCompensation) {
      const w0 = toW(pcmReadAt(gProg, nu, 0, rng, ctx.eta, gMax));
      const r0 = driftReadout(w0, ctx.shape), rT = driftReadout(wT, ctx.shape);
      alpha = rT > 0 ? r0 / rT : 1;
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = wT[i] * alpha;
    return out;
  }
}
