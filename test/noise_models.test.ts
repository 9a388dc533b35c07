/**
 * lib/noise/models (issue #13): each component of the PCM-like noise model checked against its
 * formula by its statistics — programming noise mean/variance vs the polynomial, the drift
 * exponent's distribution, read-noise scale vs time, global drift compensation restoring the mean
 * output — plus clipping, the Gaussian forms as NoiseModels (bitwise the old numbers), BN placement,
 * the PCM conductance mapping per layer (bitwise the old numbers) or per output channel (noise scaling
 * with each channel's max|W|), and the new SweepConfig fields keeping every older config's hash.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import { buildModel } from "../lib/models/mod.ts";
import {
  clipValues,
  DEFAULT_SWEEP_CONFIG,
  driftReadout,
  GaussianNoiseModel,
  listWeights,
  noiseSpecOf,
  noiseSweep,
  noisyValues,
  PCM_G_MAX,
  PCM_PROG_COEFF,
  PCM_T0,
  PCM_T_READ,
  pcmChannelScales,
  pcmDriftExponents,
  pcmDriftFactor,
  pcmDriftMoments,
  PcmNoiseModel,
  pcmProgram,
  pcmProgSigma,
  pcmQs,
  pcmReadAt,
  pcmReadSigma,
  perturbWeights,
  resolveNoiseSpec,
  resolveSweepConfig,
  type SweepConfig,
  sweepConfigHash,
  sweepOptionsFor,
  withNoise,
} from "../lib/noise/mod.ts";
import { sweepCacheKey } from "../lib/notebook/cache.ts";
import { hashObject } from "../lib/util/hash.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";
import { NoiselabError } from "../lib/util/errors.ts";

await initBackend("cpu");

function moments(a: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  const mean = s / a.length;
  let ss = 0;
  for (let i = 0; i < a.length; i++) ss += (a[i] - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (a.length - 1)) };
}
const N = 200_000;
const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

Deno.test("PCM programming noise: mean g_T, std = (c0 + c1·x + c2·x²)·g_max/25 at x = g_T/g_max", () => {
  assert.deepEqual([...PCM_PROG_COEFF], [0.26348, 1.9650, -1.1731]);
  for (const x of [0.3, 0.6, 1.0]) {
    const g = new Float64Array(N).fill(x * PCM_G_MAX);
    const p = pcmProgram(g, makeRng(`prog:${x}`));
    const want = 0.26348 + 1.9650 * x - 1.1731 * x * x;
    near(pcmProgSigma(x * PCM_G_MAX), want, 1e-12, "sigma formula");
    const m = moments(p);
    near(m.mean, x * PCM_G_MAX, 4 * want / Math.sqrt(N), `mean at x=${x}`);
    near(m.std / want, 1, 0.01, `std at x=${x}`);
  }
  // η scales it; conductances are clipped at 0
  const g = new Float64Array(N).fill(0.5 * PCM_G_MAX);
  near(moments(pcmProgram(g, makeRng("s"), 2)).std / (2 * pcmProgSigma(0.5 * PCM_G_MAX)), 1, 0.01, "scale 2");
  const zero = pcmProgram(new Float64Array(1000), makeRng("z"));
  assert.ok(
    zero.every((v) => v >= 0) && zero.some((v) => v > 0),
    "g_T = 0 devices: noisy but never negative",
  );
});

Deno.test("PCM drift exponent: ν = |μ_ν + σ_ν·z| with μ_ν, σ_ν the clipped lines in ln(g/g_max)", () => {
  // the lines and their clips
  const at = (r: number) => pcmDriftMoments(r * PCM_G_MAX);
  near(at(0.05).mean, -0.0155 * Math.log(0.05) + 0.0244, 1e-12, "mean line");
  near(at(0.05).std, -0.0125 * Math.log(0.05) - 0.0059, 1e-12, "std line");
  assert.deepEqual(at(1), { mean: 0.049, std: 0.008 }, "clipped below at high g");
  assert.deepEqual(at(1e-6), { mean: 0.1, std: 0.045 }, "clipped above at low g");
  // the sampled exponents: folded normal of those moments, recovered from the drift itself
  for (const r of [0.05, 0.8]) {
    const { mean: mu, std: sd } = at(r);
    const g = new Float64Array(N).fill(r * PCM_G_MAX);
    const nu = pcmDriftExponents(g, makeRng(`nu:${r}`));
    // folded normal moments
    const a = mu / sd;
    const Phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
    const fmean = sd * Math.sqrt(2 / Math.PI) * Math.exp(-a * a / 2) + mu * (1 - 2 * Phi(-a));
    const fstd = Math.sqrt(mu * mu + sd * sd - fmean * fmean);
    const m = moments(nu);
    near(m.mean, fmean, 4 * sd / Math.sqrt(N), `ν mean at g/g_max=${r}`);
    near(m.std / fstd, 1, 0.01, `ν std at g/g_max=${r}`);
    // the exponent seen in g(t) = g(t0)·(t/t0)^(−ν): read at 1 year without read noise (scale 0)
    const t = 365 * 86400;
    const gt = pcmReadAt(g, nu, t, makeRng("r"), 0);
    const slope = Math.log((t + PCM_T0) / PCM_T0);
    for (let i = 0; i < 1000; i++) near(-Math.log(gt[i] / g[i]) / slope, nu[i], 1e-9, "drift exponent");
  }
  assert.equal(pcmDriftFactor(0.05, 0), 1, "no drift at t_inf = 0 (t = t0)");
});

// Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7)
function erf(x: number): number {
  const s = Math.sign(x);
  x = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-x * x);
  return s * y;
}

Deno.test("PCM read noise: relative σ = Q_s(g)·√ln((t + t_read)/(2 t_read)), growing with log time", () => {
  near(pcmQs(PCM_G_MAX), 0.0088, 1e-12, "Q_s at g_max");
  near(pcmQs(0.1 * PCM_G_MAX), 0.0088 / Math.pow(0.1, 0.65), 1e-12, "Q_s at 0.1 g_max");
  assert.equal(pcmQs(0), 0.2, "Q_s clipped at 0.2");
  const g = new Float64Array(N).fill(0.5 * PCM_G_MAX);
  const nu = new Float64Array(N); // no drift: isolates the read noise
  let prev = 0;
  for (const t of [1, 3600, 86400, 365 * 86400]) {
    const want = pcmQs(0.5 * PCM_G_MAX) * Math.sqrt(Math.log((t + PCM_T0 + PCM_T_READ) / (2 * PCM_T_READ)));
    near(pcmReadSigma(0.5 * PCM_G_MAX, t), want, 1e-12, "formula");
    const rel = Array.from(pcmReadAt(g, nu, t, makeRng(`read:${t}`)), (v) => v / g[0] - 1);
    const m = moments(rel);
    near(m.mean, 0, 4 * want / Math.sqrt(N), `mean at t=${t}`);
    near(m.std / want, 1, 0.01, `std at t=${t}`);
    assert.ok(want > prev, "grows with time");
    prev = want;
  }
});

Deno.test("global drift compensation restores the mean output; without it the output decays as (t/t0)^(−ν)", () => {
  const [nIn, nOut] = [256, 64];
  const w = gaussianFill(makeRng("w"), new Float32Array(nIn * nOut));
  for (let i = 0; i < w.length; i++) w[i] = w[i] * 0.1 + (i % nOut < 32 ? 0.02 : -0.02);
  const x = gaussianFill(makeRng("x"), new Float32Array(512 * nIn));
  for (let i = 0; i < x.length; i++) x[i] = Math.abs(x[i]); // post-ReLU inputs
  const meanAbsOut = (ww: Float32Array) => {
    let s = 0;
    for (let b = 0; b < 512; b++) {
      for (let j = 0; j < nOut; j++) {
        let o = 0;
        for (let i = 0; i < nIn; i++) o += x[b * nIn + i] * ww[i * nOut + j];
        s += Math.abs(o);
      }
    }
    return s / (512 * nOut);
  };
  const ideal = meanAbsOut(w);
  const year = 365 * 86400;
  const ctx = { eta: 1, name: "fc/kernel", shape: [nIn, nOut] };
  const plain = new PcmNoiseModel({ tInference: year, driftCompensation: false }).apply(w, makeRng("d"), ctx);
  const comp = new PcmNoiseModel({ tInference: year, driftCompensation: true }).apply(w, makeRng("d"), ctx);
  const decay = meanAbsOut(plain) / ideal, restored = meanAbsOut(comp) / ideal;
  assert.ok(decay < 0.7, `drift lowers the output after a year (ratio ${decay})`);
  near(restored, 1, 0.06, "compensated mean output");
  // the same devices: compensation is one scalar
  const alpha = comp[0] / plain[0];
  for (let i = 0; i < 100; i++) {
    near(comp[i], plain[i] * alpha, 1e-5 * Math.max(1, Math.abs(comp[i])), "scalar");
  }
  near(
    driftReadout([1, -2, 3, 4, -5, 6], [3, 2]),
    21 / 6,
    1e-12,
    "readout: AIHWKit's mean |w| (one-hot inputs)",
  );
  near(driftReadout([0, 0], [2, 1]), 1e-4, 1e-12, "readout clamped at 1e-4 as AIHWKit");
});

Deno.test("PCM model: η = 0 at t = 0 reproduces the weights; same stream = same devices at every time", () => {
  const w = gaussianFill(makeRng("w2"), new Float32Array(1000));
  const ctx = { eta: 0, name: "t", shape: [10, 100] };
  const at0 = new PcmNoiseModel({ tInference: 0, driftCompensation: false }).apply(w, makeRng("a"), ctx);
  for (let i = 0; i < w.length; i++) near(at0[i], w[i], 1e-6, "exact mapping");
  // paired over time: with η = 0 the only difference between times is the drift factor per device
  const ctx1 = { ...ctx, eta: 1 };
  const a = new PcmNoiseModel({ tInference: 3600, driftCompensation: false }).apply(w, makeRng("p"), ctx1);
  const b = new PcmNoiseModel({ tInference: 3600, driftCompensation: false }).apply(w, makeRng("p"), ctx1);
  assert.deepEqual(a, b, "deterministic");
  assert.equal(noisyValues("pcm", 0, w, makeRng("a")).length, w.length);
});

Deno.test("clipping before mapping: at ±k·std(W); 0 = off", () => {
  const w = Float32Array.from([0, 1, -1, 10, -10, 0.5]);
  assert.equal(clipValues(w, 0), w);
  const m = moments(w);
  const std = m.std * Math.sqrt((w.length - 1) / w.length);
  const c = clipValues(w, 1);
  assert.ok(Math.abs(Math.max(...c) - std) < 1e-5 && Math.abs(Math.min(...c) + std) < 1e-5);
  assert.equal(c[1], 1);
});

Deno.test("Gaussian forms as NoiseModels give the old numbers bitwise", () => {
  const w = gaussianFill(makeRng("g"), new Float32Array(500));
  for (const form of ["additive-std", "additive-max", "multiplicative"] as const) {
    // the pre-#13 code of lib/noise/inject.ts noisyValues, spelled out
    const z = gaussianFill(makeRng("k"), new Float32Array(w.length));
    const m = moments(w), n = w.length;
    const scale = form === "multiplicative"
      ? 0.1
      : form === "additive-max"
      ? 0.1 * Math.max(...Array.from(w, Math.abs))
      : 0.1 * Math.sqrt(
        Array.from(w).reduce((a, v) => a + (v - Array.from(w).reduce((x, y) => x + y, 0) / n) ** 2, 0) / n,
      );
    void m;
    const old = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      old[i] = form === "multiplicative" ? w[i] * (1 + scale * z[i]) : w[i] + scale * z[i];
    }
    const now = new GaussianNoiseModel(form).apply(w, makeRng("k"), { eta: 0.1, name: "x", shape: [500] });
    assert.deepEqual(now, old, form);
    assert.deepEqual(noisyValues(form, 0.1, w, makeRng("k")), old, form);
  }
});

Deno.test("bnPlacement: digital never perturbs BN arrays; folded = foldBN; analog as before", async () => {
  const model = buildModel("resnet8", { bn: "all", width: 4 });
  try {
    const before = new Map(listWeights(model).map((r) => [r.name, r.variable.read().dataSync().slice()]));
    const cfg = resolveSweepConfig({
      etas: [0.5],
      targets: ["all"],
      bnPlacement: "digital",
      noiseType: "pcm",
    });
    await withNoise(model, noiseSpecOf(cfg), 0.5, "s", (m) => {
      for (const r of listWeights(m)) {
        const same = r.variable.read().dataSync().every((v, i) => v === before.get(r.name)![i]);
        if (r.category.startsWith("bn-")) assert.ok(same, `${r.name} digital`);
        else if (r.category === "kernels") assert.ok(!same, `${r.name} noised`);
      }
    });
    for (const r of listWeights(model)) {
      assert.deepEqual(r.variable.read().dataSync(), before.get(r.name), "restored");
    }
  } finally {
    model.dispose();
  }
  assert.equal(resolveSweepConfig({ etas: [0.1], bnPlacement: "folded" }).foldBN, true);
  assert.equal(resolveSweepConfig({ etas: [0.1], foldBN: true }).bnPlacement, "folded");
  assert.throws(
    () => resolveSweepConfig({ etas: [0.1], foldBN: true, bnPlacement: "digital" }),
    NoiselabError,
  );
  assert.throws(
    () => resolveSweepConfig({ etas: [0.1], inferenceTime: 3600 }),
    (e) => e instanceof NoiselabError && e.subject === "inferenceTime",
  );
  assert.throws(() => resolveSweepConfig({ etas: [0.1], clipSigma: -1 }), NoiselabError);
  assert.equal(tf.memory().numTensors >= 0, true);
});

Deno.test("new SweepConfig fields keep every older configuration's hash and cache key", () => {
  const oldFields = [
    "etas",
    "draws",
    "seed",
    "targets",
    "noiseType",
    "scoring",
    "foldBN",
    "recalibrateBatches",
    "recalibrateBatchSize",
    "testSize",
    "batchSize",
  ];
  const old = (partial: Record<string, unknown>) => {
    const c = resolveSweepConfig(partial) as unknown as Record<string, unknown>;
    return Object.fromEntries(oldFields.map((k) => [k, c[k]]));
  };
  const olds: Partial<SweepConfig>[] = [{ etas: [0, 0.1] }, { etas: [0.1], foldBN: true, targets: ["all"] }, {
    etas: [0.2],
    draws: 3,
  }];
  for (const p of olds) {
    assert.equal(
      sweepConfigHash(p),
      hashObject({ kind: "SweepConfig", config: old(p) }, 16),
      JSON.stringify(p),
    );
    const k = sweepCacheKey({
      config: p,
      modelId: "m",
      dataId: "d",
      testSubset: { size: 10, subsetSeed: 0 },
    });
    assert.deepEqual(Object.keys(k.config as object).sort(), [...oldFields].sort());
  }
  const h = sweepConfigHash({ etas: [0.1] });
  for (
    const c of [
      { bnPlacement: "digital" },
      { clipSigma: 2.5 },
      { noiseType: "pcm" },
      { noiseType: "pcm", inferenceTime: 3600 },
      { noiseType: "pcm", driftCompensation: true },
      { noiseType: "pcm", pcmMapping: "per-channel" },
    ]
  ) assert.notEqual(sweepConfigHash({ etas: [0.1], ...c }), h, JSON.stringify(c));
  assert.notEqual(
    sweepConfigHash({ etas: [0.1], noiseType: "pcm", inferenceTime: 3600 }),
    sweepConfigHash({ etas: [0.1], noiseType: "pcm", inferenceTime: 86400 }),
  );
  assert.equal(DEFAULT_SWEEP_CONFIG.bnPlacement, "analog");
  // pcmMapping (added later still): out of the key at its default, so every stored pcm sweep keeps its id
  assert.equal(DEFAULT_SWEEP_CONFIG.pcmMapping, "per-layer");
  for (
    const p of [{ noiseType: "pcm" }, { noiseType: "pcm", inferenceTime: 3600, driftCompensation: true }]
  ) {
    const c = resolveSweepConfig({ etas: [1], ...p } as Partial<SweepConfig>);
    assert.equal(sweepConfigHash({ ...c, pcmMapping: "per-layer" }), sweepConfigHash({ etas: [1], ...p }));
    const key = (pcmMapping: "per-layer" | "per-channel") =>
      sweepCacheKey({
        config: { ...c, pcmMapping },
        modelId: "m",
        dataId: "d",
        testSubset: { size: 10, subsetSeed: 0 },
      }).config as Record<string, unknown>;
    assert.ok(!("pcmMapping" in key("per-layer")), "left out at its default");
    assert.equal(key("per-channel").pcmMapping, "per-channel");
  }
});

// ---------------------------------------------------------------------------------------------
// PCM conductance mapping: per layer (the old numbers) or per output channel (issue #13)

/** sha256 of PcmNoiseModel outputs on a fixed conv-shaped tensor (some exact zeros) at four settings. */
function pcmDigest(mapping?: "per-layer" | "per-channel"): string {
  const shape = [3, 3, 8, 16];
  const w = gaussianFill(makeRng("per-layer-pin"), new Float32Array(3 * 3 * 8 * 16));
  for (let i = 0; i < w.length; i += 7) w[i] = 0;
  const h = createHash("sha256");
  const settings = [[0, false, 1], [3600, true, 1], [365 * 86400, false, 0.3], [
    365 * 86400,
    true,
    2,
  ]] as const;
  for (const [t, comp, eta] of settings) {
    const model = new PcmNoiseModel({
      tInference: t,
      driftCompensation: comp,
      ...(mapping ? { mapping } : {}),
    });
    const out = model.apply(w, makeRng(`pin:${t}:${comp}`), { eta, name: "c/kernel", shape });
    h.update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }
  return h.digest("hex");
}

Deno.test("PCM per-layer mapping: bitwise the numbers of the code before pcmMapping existed", () => {
  // recorded by running the same inputs through lib/noise/models/pcm.ts of commit 44bb725 (before the
  // mapping was a choice): t_inf 0 / 1 h compensated / 1 y at η 0.3 / 1 y compensated at η 2
  const before = "6480bb3331e3718fe8592b7082e53c51bdd69ca7288f3b31c9feb7b32fe70a2e";
  assert.equal(pcmDigest(), before, "default mapping");
  assert.equal(pcmDigest("per-layer"), before, "per-layer spelled out");
  assert.notEqual(pcmDigest("per-channel"), before, "per-channel maps differently");
  // the spec and the sweep config say per-layer by leaving it out (old specs, keys and partial files hold)
  const spec = noiseSpecOf(resolveSweepConfig({ etas: [1], noiseType: "pcm", pcmMapping: "per-layer" }));
  assert.deepEqual(spec.pcm, { tInference: 1, driftCompensation: false });
  assert.deepEqual(
    resolveNoiseSpec({ form: "pcm", pcm: { tInference: 1, driftCompensation: false, mapping: "per-layer" } })
      .pcm,
    { tInference: 1, driftCompensation: false },
  );
});

Deno.test("PCM per-channel mapping: the noise on each output channel scales with that channel's max|W|", () => {
  // conv layout [kh, kw, in, out]: channel = last axis; channel c holds ±m_c, so its max|W| is m_c
  const m = [1, 0.1, 0.01, 0.001];
  const shape = [5, 5, 2000, m.length];
  const n = shape.reduce((a, b) => a * b, 1);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (Math.floor(i / m.length) % 2 ? -1 : 1) * m[i % m.length];
  assert.deepEqual([...pcmChannelScales(w, shape, "per-channel")], m.map(Math.fround));
  assert.deepEqual([...pcmChannelScales(w, shape, "per-layer")], [1]);

  // at t_inf = 0 (t = t0: no drift) and small η the noise is linear in η: every device of channel c is
  // programmed at ±g_max, so W/w − 1 has std η/g_max·√(σ_prog(g_max)² + (g_max·σ_read(g_max))²
  // + σ_prog(0)²·(1/2 − 1/(2π))) (target device: programming + read noise; the other device of the pair
  // at g = 0: programming noise clipped at 0, a half normal) — the same for every channel
  const eta = 0.05;
  const want = eta / PCM_G_MAX * Math.sqrt(
    pcmProgSigma(PCM_G_MAX) ** 2 + (PCM_G_MAX * pcmReadSigma(PCM_G_MAX, 0)) ** 2 +
      pcmProgSigma(0) ** 2 * (0.5 - 1 / (2 * Math.PI)),
  );
  const ctx = { eta, name: "conv/kernel", shape };
  const relStd = (mapping: "per-layer" | "per-channel") => {
    const out = new PcmNoiseModel({ tInference: 0, driftCompensation: false, mapping }).apply(
      w,
      makeRng("chan"),
      ctx,
    );
    return m.map((_, c) => {
      const rel: number[] = [];
      for (let i = c; i < n; i += m.length) rel.push(out[i] / w[i] - 1);
      return moments(rel).std;
    });
  };
  const perChannel = relStd("per-channel");
  for (const [c, sd] of perChannel.entries()) {
    near(sd / want, 1, 0.02, `relative noise of channel ${c} (max|W| ${m[c]})`);
    // i.e. the absolute noise σ is want·m_c: proportional to the channel's own max
  }
  // with the layer max the small channels sit near g = 0 and their relative noise explodes
  const perLayer = relStd("per-layer");
  near(perLayer[0] / want, 1, 0.02, "the channel holding the layer max: the same either way");
  assert.ok(
    perLayer[3] > 100 * perChannel[3],
    `per-layer: channel max 0.001 gets ${perLayer[3]} relative noise, per-channel ${perChannel[3]}`,
  );

  // an all-zero channel takes the layer max; rank < 2 is one scale; a shape that does not fit throws
  assert.deepEqual([...pcmChannelScales(Float32Array.from([2, 0, -4, 0]), [2, 2], "per-channel")], [4, 4]);
  assert.deepEqual([...pcmChannelScales(Float32Array.from([1, -3]), [2], "per-channel")], [3]);
  assert.throws(
    () => pcmChannelScales(new Float32Array(6), [4, 2], "per-channel"),
    (e) => e instanceof NoiselabError && e.subject === "pcmMapping",
  );
  // 1-D arrays (biases, BN vectors) and tensors whose channels share one max: the same numbers as per-layer
  const both = (v: Float32Array, shape: number[], comp: boolean) =>
    (["per-layer", "per-channel"] as const).map((mapping) =>
      new PcmNoiseModel({ tInference: 86400, driftCompensation: comp, mapping })
        .apply(v, makeRng("same"), { eta: 1, name: "b", shape })
    );
  const v = gaussianFill(makeRng("v"), new Float32Array(64));
  const [a1, b1] = both(v, [64], true);
  assert.deepEqual(a1, b1, "rank 1: per tensor");
  for (let j = 0; j < 8; j++) v[j * 8 + j] = 5; // row j of channel j: every channel of [8, 8] has max|W| 5
  assert.deepEqual([...pcmChannelScales(v, [8, 8], "per-channel")], new Array(8).fill(5));
  const [a2, b2] = both(v, [8, 8], false);
  assert.deepEqual(a2, b2, "equal channel maxima, no compensation: bitwise");
});

Deno.test("PCM per-channel mapping: drift compensation stays one scalar per tensor and restores the mean output", () => {
  const [nIn, nOut] = [256, 64];
  const w = gaussianFill(makeRng("wc"), new Float32Array(nIn * nOut));
  // channels of very different scales (1, 0.1, 0.01) and offsets, as in the per-layer test
  for (let i = 0; i < w.length; i++) {
    w[i] = (w[i] * 0.1 + (i % nOut < 32 ? 0.02 : -0.02)) * 10 ** -(i % 3);
  }
  const x = gaussianFill(makeRng("xc"), new Float32Array(256 * nIn));
  for (let i = 0; i < x.length; i++) x[i] = Math.abs(x[i]);
  // the mean |output| of each scale group, so the small channels count as much as the large ones
  const meanAbsOut = (ww: Float32Array, group: number) => {
    let s = 0, k = 0;
    for (let b = 0; b < 256; b++) {
      for (let j = group; j < nOut; j += 3) {
        let o = 0;
        for (let i = 0; i < nIn; i++) o += x[b * nIn + i] * ww[i * nOut + j];
        s += Math.abs(o);
        k++;
      }
    }
    return s / k;
  };
  const year = 365 * 86400;
  const ctx = { eta: 1, name: "fc/kernel", shape: [nIn, nOut] };
  const model = (comp: boolean) =>
    new PcmNoiseModel({ tInference: year, driftCompensation: comp, mapping: "per-channel" });
  const plain = model(false).apply(w, makeRng("dc"), ctx);
  const comp = model(true).apply(w, makeRng("dc"), ctx);
  for (let g = 0; g < 3; g++) {
    const ideal = meanAbsOut(w, g);
    assert.ok(meanAbsOut(plain, g) / ideal < 0.7, `drift lowers channel group ${g}'s output after a year`);
    near(meanAbsOut(comp, g) / ideal, 1, 0.06, `compensated mean output of channel group ${g}`);
  }
  const alpha = comp[0] / plain[0];
  for (let i = 0; i < 300; i++) {
    near(comp[i], plain[i] * alpha, 1e-5 * Math.max(Math.abs(comp[i]), 1e-30), "one scalar for the tensor");
  }
});

Deno.test("PCM per-channel mapping on a model: the output channel is the last axis of conv and dense kernels", () => {
  const model = buildModel("resnet8", { bn: "all", width: 4 });
  try {
    const kernels = listWeights(model).filter((r) => r.category === "kernels");
    const conv = kernels.filter((r) => r.variable.shape.length === 4)
      .sort((a, b) => b.variable.read().size - a.variable.read().size)[0];
    const dense = kernels.find((r) => r.variable.shape.length === 2)!;
    assert.equal(dense.variable.shape[1], 10, "dense kernel [in, out]");
    // shrink output channel 0 of each a thousandfold: per-channel, its noise shrinks with it
    for (const r of [conv, dense]) {
      const v = (r.variable.read().dataSync() as Float32Array).slice();
      const c = r.variable.shape.at(-1)!;
      for (let i = 0; i < v.length; i += c) v[i] *= 1e-3;
      const t = tf.tensor(v, r.variable.shape as number[]);
      r.variable.write(t);
      t.dispose();
    }
    const noiseOf = (mapping: "per-layer" | "per-channel") => {
      const clean = [conv, dense].map((r) => (r.variable.read().dataSync() as Float32Array).slice());
      const restore = perturbWeights(
        model,
        { form: "pcm", targets: ["kernels"], pcm: { tInference: 0, driftCompensation: false, mapping } },
        1,
        "layout",
      );
      try {
        return [conv, dense].map((r, k) => {
          const noisy = r.variable.read().dataSync() as Float32Array;
          const c = r.variable.shape.at(-1)!;
          let s0 = 0, n0 = 0, s1 = 0, n1 = 0;
          for (let i = 0; i < noisy.length; i++) {
            const d = Math.abs(noisy[i] - clean[k][i]);
            if (i % c === 0) (s0 += d, n0++);
            else (s1 += d, n1++);
          }
          return (s0 / n0) / (s1 / n1); // mean |noise| of channel 0 against the other channels
        });
      } finally {
        restore();
      }
    };
    const [convC, denseC] = noiseOf("per-channel");
    const [convL, denseL] = noiseOf("per-layer");
    assert.ok(convC < 0.01 && denseC < 0.01, `per-channel: channel 0's noise ratio ${convC}, ${denseC}`);
    assert.ok(convL > 0.1 && denseL > 0.1, `per-layer: channel 0's noise ratio ${convL}, ${denseL}`);
  } finally {
    model.dispose();
  }
});

Deno.test("pcmMapping: a pcm-only SweepConfig field, in the sweep's spec and provenance when per-channel", async () => {
  assert.throws(
    () => resolveSweepConfig({ etas: [0.1], pcmMapping: "per-channel" }),
    (e) => e instanceof NoiselabError && e.subject === "pcmMapping" && /pcm only/.test(e.message),
  );
  assert.throws(
    () => resolveSweepConfig({ etas: [0.1], noiseType: "pcm", pcmMapping: "per-row" as never }),
    (e) =>
      e instanceof NoiselabError && e.subject === "pcmMapping" &&
      /unknown conductance mapping/.test(e.message),
  );
  assert.throws(
    () =>
      resolveNoiseSpec({
        form: "pcm",
        pcm: { tInference: 0, driftCompensation: false, mapping: "x" as never },
      }),
    NoiselabError,
  );
  const cfg = resolveSweepConfig({ etas: [1], draws: 1, noiseType: "pcm", pcmMapping: "per-channel" });
  assert.deepEqual(noiseSpecOf(cfg).pcm, { tInference: 1, driftCompensation: false, mapping: "per-channel" });
  const model = buildModel("resnet8", { bn: "all", width: 4 });
  try {
    const x = gaussianFill(makeRng("img"), new Float32Array(4 * 32 * 32 * 3));
    const res = await noiseSweep(model, { x, labels: [0, 1, 2, 3] }, sweepOptionsFor(cfg, { modelId: "m" }));
    assert.equal(res.provenance.spec.pcm?.mapping, "per-channel");
    const plain = await noiseSweep(
      model,
      { x, labels: [0, 1, 2, 3] },
      sweepOptionsFor(resolveSweepConfig({ ...cfg, pcmMapping: "per-layer" }), { modelId: "m" }),
    );
    assert.ok(plain.provenance.spec.pcm && !("mapping" in plain.provenance.spec.pcm), "per-layer: as before");
  } finally {
    model.dispose();
  }
});
