import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import * as tfl from "@tensorflow/tfjs-layers";
import { bnLayerNames, buildModel, predictLogits } from "../lib/models/mod.ts";
import {
  averageNormalizedAccuracy,
  confidenceInterval,
  foldBatchNorm,
  listWeights,
  noiseSweep,
  perturbWeights,
  recalibrateBatchNorm,
  summarizeRows,
  tQuantile,
  withNoise,
} from "../lib/noise/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";

await initBackend("cpu"); // reference backend: exact, deterministic

const S8: [number, number, number] = [8, 8, 3];

function images(n: number, shape: [number, number, number], seed: string): Float32Array {
  return gaussianFill(makeRng(seed), new Float32Array(n * shape[0] * shape[1] * shape[2]));
}

function snapshot(m: tfl.LayersModel): Map<string, Float32Array> {
  return new Map(listWeights(m).map((w) => [w.name, (w.variable.read().dataSync() as Float32Array).slice()]));
}

/** Give every tensor non-trivial values (BN variances positive) so that every target matters. */
function randomize(m: tfl.LayersModel, seed: string): void {
  const rng = makeRng(seed);
  for (const w of listWeights(m)) {
    const n = w.variable.shape.reduce((a, b) => a! * b!, 1)!;
    const z = gaussianFill(rng, new Float32Array(n));
    const cur = w.variable.read().dataSync() as Float32Array;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (w.kind === "moving_variance") v[i] = 0.5 + rng();
      else if (w.kind === "gamma") v[i] = 1 + 0.3 * z[i];
      else if (w.kind === "kernel") v[i] = cur[i] + 0.05 * z[i];
      else v[i] = 0.1 * z[i];
    }
    const t = tf.tensor(v, w.variable.shape as number[]);
    w.variable.write(t);
    t.dispose();
  }
}

/** Labels = the clean model's own predictions, so clean accuracy is 1 and noise can only lower it. */
async function selfLabels(m: tfl.LayersModel, x: Float32Array): Promise<number[]> {
  const l = await predictLogits(m, x);
  const c = m.outputs[0].shape.at(-1) as number;
  return Array.from({ length: l.length / c }, (_, i) => {
    const row = Array.from(l.subarray(i * c, i * c + c));
    return row.indexOf(Math.max(...row));
  });
}

function bigDense(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [400] });
  const out = tfl.layers.dense({
    units: 500,
    name: "fc",
    kernelInitializer: tfl.initializers.heNormal({ seed }),
  })
    .apply(input) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function diffStats(a: Float32Array, b: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += b[i] - a[i];
  const m = s / a.length;
  let ss = 0;
  for (let i = 0; i < a.length; i++) ss += (b[i] - a[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(ss / a.length) };
}

Deno.test("noise statistics: std, mean and scale of each form on a 200k-element kernel", () => {
  const m = bigDense(1);
  const w0 = snapshot(m).get("fc/kernel")!;
  const n = w0.length;
  const wMean = w0.reduce((s, v) => s + v, 0) / n;
  const wStd = Math.sqrt(w0.reduce((s, v) => s + (v - wMean) ** 2, 0) / n);
  const wMax = w0.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  for (
    const [form, eta, expectStd] of [
      ["additive-std", 0.2, 0.2 * wStd],
      ["additive-max", 0.1, 0.1 * wMax],
    ] as const
  ) {
    const restore = perturbWeights(m, { form, targets: ["kernels"] }, eta, "stat");
    const d = diffStats(w0, snapshot(m).get("fc/kernel")!);
    restore();
    assert.ok(Math.abs(d.std / expectStd - 1) < 0.01, `${form}: std ${d.std} vs ${expectStd}`);
    assert.ok(Math.abs(d.mean) < 4 * expectStd / Math.sqrt(n), `${form}: mean ${d.mean}`);
  }
  // multiplicative: relative change has std eta
  const restore = perturbWeights(m, { form: "multiplicative", targets: ["kernels"] }, 0.3, "stat");
  const w1 = snapshot(m).get("fc/kernel")!;
  restore();
  const rel = new Float32Array(n);
  const ones = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    rel[i] = w1[i] / w0[i];
    ones[i] = 1;
  }
  const d = diffStats(ones, rel);
  assert.ok(
    Math.abs(d.std / 0.3 - 1) < 0.01 && Math.abs(d.mean) < 0.01,
    `multiplicative ${JSON.stringify(d)}`,
  );
  assert.deepEqual(snapshot(m).get("fc/kernel"), w0);
  m.dispose();
});

Deno.test("targets: only the chosen tensors change", () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, bn: 4 });
  randomize(m, "t");
  const before = snapshot(m);
  const kindsOf: Record<string, string[]> = {
    kernels: ["kernel"],
    biases: ["bias"],
    "bn-affine": ["gamma", "beta"],
    "bn-mean": ["moving_mean"],
    "bn-var": ["moving_variance"],
    all: ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"],
  };
  for (const [target, kinds] of Object.entries(kindsOf)) {
    const restore = perturbWeights(m, { targets: [target as any] }, 0.1, "tg");
    const after = snapshot(m);
    restore();
    let changed = 0;
    for (const [name, v] of before) {
      const kind = name.split("/")[1];
      const same = v.every((x, i) => x === after.get(name)![i]);
      assert.equal(!same, kinds.includes(kind), `${target}: ${name} changed=${!same}`);
      if (!same) changed++;
    }
    assert.ok(changed > 0, target);
  }
  // combining targets
  const restore = perturbWeights(m, { targets: ["biases", "bn-mean"] }, 0.1, "tg");
  const after = snapshot(m);
  restore();
  for (const [name, v] of before) {
    const kind = name.split("/")[1];
    assert.equal(
      !v.every((x, i) => x === after.get(name)![i]),
      kind === "bias" || kind === "moving_mean",
      name,
    );
  }
  m.dispose();
});

Deno.test("seeding: same seed ⇒ same noise, other seeds differ, shared layers get the same stream", () => {
  const a = buildModel("resnet8", { width: 4, inputShape: S8, seed: 3 });
  const b = buildModel("resnet8", { width: 4, inputShape: S8, seed: 3, bn: "none" });
  const noisy = (m: tfl.LayersModel, seed: string) => {
    const restore = perturbWeights(m, { targets: ["kernels"] }, 0.5, seed);
    const s = snapshot(m);
    restore();
    return s;
  };
  const a1 = noisy(a, "s:0.5:0");
  const a2 = noisy(a, "s:0.5:0");
  const a3 = noisy(a, "s:0.5:1");
  for (const [k, v] of a1) assert.deepEqual(a2.get(k), v, k);
  assert.notDeepEqual(a3.get("conv1/kernel"), a1.get("conv1/kernel"));
  // conv1 has the same initial kernel in both models → identical noisy kernel (paired streams)
  assert.deepEqual(snapshot(a).get("conv1/kernel"), snapshot(b).get("conv1/kernel"));
  assert.deepEqual(noisy(b, "s:0.5:0").get("conv1/kernel"), a1.get("conv1/kernel"));
  a.dispose();
  b.dispose();
});

Deno.test("withNoise: restores bitwise after success and when fn throws; bad input touches nothing", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8 });
  randomize(m, "r");
  const before = snapshot(m);
  const x = images(4, S8, "wx");
  const clean = await predictLogits(m, x);
  const inside = await withNoise(m, { targets: ["all"] }, 0.3, "w", async (noisy) => {
    const s = snapshot(noisy);
    assert.notDeepEqual(s.get("conv2/kernel"), before.get("conv2/kernel"));
    return await predictLogits(noisy, x);
  });
  assert.notDeepEqual(inside, clean);
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  await assert.rejects(() =>
    withNoise(m, { targets: ["all"], form: "multiplicative" }, 0.3, "w", () => {
      throw new Error("boom");
    }), /boom/);
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  assert.deepEqual(await predictLogits(m, x), clean);
  const nerr = (re: RegExp) => (e: unknown) => e instanceof NoiselabError && re.test(e.message);
  await assert.rejects(() => withNoise(m, {}, -0.1, "w", () => 0), nerr(/^eta:/));
  await assert.rejects(() => withNoise(m, {}, NaN, "w", () => 0), nerr(/^eta:/));
  await assert.rejects(
    () => withNoise(m, { targets: ["weights" as any] }, 0.1, "w", () => 0),
    nerr(/^targets:.*weights/),
  );
  await assert.rejects(() => withNoise(m, { targets: [] }, 0.1, "w", () => 0), nerr(/^targets:/));
  await assert.rejects(
    () => withNoise(m, { form: "gauss" as any }, 0.1, "w", () => 0),
    nerr(/^form:.*gauss/),
  );
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  m.dispose();
});

Deno.test("foldBatchNorm: same predictions, no BN layers, original untouched (ResNet, partial BN, VGG)", async () => {
  for (
    const [name, opts, x] of [
      ["resnet8", { width: 4, inputShape: S8 }, images(6, S8, "f1")],
      ["resnet8", { width: 4, inputShape: S8, bn: [1, 4] }, images(6, S8, "f2")],
      ["vgg11", { width: 4 }, images(3, [32, 32, 3], "f3")],
    ] as const
  ) {
    const m = buildModel(name, opts as any);
    randomize(m, "fold");
    const before = snapshot(m);
    const f = foldBatchNorm(m);
    assert.deepEqual(bnLayerNames(f), []);
    assert.ok(bnLayerNames(m).length > 0);
    assert.equal(f.countParams() < m.countParams(), true);
    const a = await predictLogits(m, x);
    const b = await predictLogits(f, x);
    const scale = a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `${name} ${a[i]} vs ${b[i]}`);
    }
    for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
    f.dispose();
    // the original still works after the folded copy is disposed
    assert.deepEqual(await predictLogits(m, x), a);
    m.dispose();
  }
});

Deno.test("recalibrateBatchNorm: equals train-mode (batch-statistics) BN over the calibration set", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, bn: [0, 2, 3, 6] });
  randomize(m, "rc");
  const x = images(20, S8, "rcx");
  const oldMean = snapshot(m).get("bn3/moving_mean")!;
  // 3 batches of 8 cover all 20 images (last chunk has 4): exercises pooling across chunks
  const updated = await recalibrateBatchNorm(m, x, { batches: 3, batchSize: 8 });
  assert.equal(updated, 4);
  assert.notDeepEqual(snapshot(m).get("bn3/moving_mean"), oldMean);
  const inference = await predictLogits(m, x);
  const xt = tf.tensor4d(x, [20, ...S8]);
  const train = m.apply(xt, { training: true }) as tf.Tensor;
  const t = train.dataSync() as Float32Array;
  const scale = t.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  for (let i = 0; i < t.length; i++) {
    assert.ok(Math.abs(t[i] - inference[i]) <= 2e-4 * scale, `${t[i]} vs ${inference[i]}`);
  }
  tf.dispose([xt, train]);
  await assert.rejects(() => recalibrateBatchNorm(m, x, { batches: 0 }), NoiselabError);
  m.dispose();
});

Deno.test("noiseSweep: rows, summary, eta=0 exact, noise lowers accuracy, deterministic, weights restored", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, bn: 3, seed: 4 });
  randomize(m, "sw");
  const x = images(40, S8, "swx");
  const labels = await selfLabels(m, x);
  const before = snapshot(m);
  const progress: number[] = [];
  const opts = {
    etas: [0, 0.05, 1.5],
    draws: 3,
    seed: 9,
    modelId: "m1",
    spec: { targets: ["kernels" as const] },
    batchSize: 16,
    onProgress: (p: { done: number }) => progress.push(p.done),
  };
  const r = await noiseSweep(m, { x, labels, label: "synthetic" }, opts);
  assert.equal(r.cleanAccuracy, 1);
  assert.equal(r.rows.length, 9);
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const row of r.rows.filter((q) => q.eta === 0)) assert.equal(row.accuracy, 1);
  const s = r.summary;
  assert.deepEqual(s.map((q) => q.eta), [0, 0.05, 1.5]);
  assert.equal(s[0].normalizedMean, 1);
  assert.ok(s[2].mean < s[1].mean, `accuracy at eta 1.5 (${s[2].mean}) < at 0.05 (${s[1].mean})`);
  assert.ok(s[1].ciLow <= s[1].mean && s[1].mean <= s[1].ciHigh);
  assert.ok(
    Math.abs(
      r.averageNormalizedAccuracy - (s[1].normalizedMean + s[2].normalizedMean) / 2,
    ) < 1e-12,
  );
  assert.equal(r.provenance.backend, "cpu");
  assert.equal(r.provenance.images, 40);
  const nKernels = listWeights(m).filter((w) => w.kind === "kernel").length;
  assert.equal(r.provenance.perturbed.tensors, nKernels);
  assert.ok(
    r.provenance.perturbed.names.includes("conv7/kernel") &&
      r.provenance.perturbed.names.includes("fc/kernel"),
  );
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  const r2 = await noiseSweep(m, { x, labels }, { ...opts, onProgress: undefined });
  assert.deepEqual(r2.rows, r.rows);
  // bad input → errors naming the parameter, before any work
  const nerr = (re: RegExp) => (e: unknown) => e instanceof NoiselabError && re.test(e.message);
  await assert.rejects(() => noiseSweep(m, { x, labels }, { ...opts, etas: [0.1, -1] }), nerr(/^eta:/));
  await assert.rejects(() => noiseSweep(m, { x, labels }, { ...opts, draws: 0 }), nerr(/^draws:/));
  await assert.rejects(() => noiseSweep(m, { x, labels: labels.slice(1) }, opts), nerr(/^labels:/));
  await assert.rejects(
    () => noiseSweep(m, { x, labels }, { ...opts, spec: { form: "x" as any } }),
    nerr(/^form:/),
  );
  m.dispose();
});

Deno.test("noiseSweep: every-tensor noise with NaN variances gives low accuracy, not a crash", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 5 });
  randomize(m, "nan");
  const x = images(30, S8, "nx");
  const labels = await selfLabels(m, x);
  let sawNaN = false;
  const evaluate = async (mm: tfl.LayersModel, xx: Float32Array, ll: ArrayLike<number>, bs: number) => {
    const logits = await predictLogits(mm, xx, bs);
    if (logits.some((v) => Number.isNaN(v))) sawNaN = true;
    const { accuracy } = await import("../lib/models/predict.ts");
    return accuracy(mm, xx, ll, bs);
  };
  // eta 3 on variances in [0.5, 1.5]: many become negative → NaN
  const r = await noiseSweep(m, { x, labels }, {
    etas: [3],
    draws: 2,
    seed: 1,
    modelId: "m",
    spec: { targets: ["bn-var"] },
    evaluate,
  });
  assert.ok(sawNaN, "negative variances should produce NaN logits");
  assert.ok(r.rows.every((q) => Number.isFinite(q.accuracy) && q.accuracy < 0.5), JSON.stringify(r.rows));
  m.dispose();
});

Deno.test("noiseSweep: foldBN and recalibrateBN options run and leave the model unchanged", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 6 });
  randomize(m, "opt");
  const x = images(24, S8, "ox");
  const labels = await selfLabels(m, x);
  const before = snapshot(m);
  const folded = await noiseSweep(m, { x, labels }, {
    etas: [0, 0.3],
    draws: 2,
    seed: 2,
    modelId: "m",
    spec: { foldBN: true, targets: ["kernels", "biases"] },
  });
  assert.equal(folded.cleanAccuracy, 1); // folding keeps predictions
  assert.equal(folded.rows[0].target, "kernels+biases");
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  const recal = await noiseSweep(m, { x, labels }, {
    etas: [0.3],
    draws: 2,
    seed: 2,
    modelId: "m",
    spec: { targets: ["kernels"] },
    recalibrateBN: { x: images(32, S8, "cal"), batches: 2, batchSize: 16 },
  });
  assert.equal(recal.provenance.recalibrateBN?.batches, 2);
  assert.equal(recal.provenance.spec.recalibrateBN, 2);
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  await assert.rejects(
    () =>
      noiseSweep(m, { x, labels }, {
        etas: [0.1],
        draws: 1,
        seed: 1,
        modelId: "m",
        spec: { recalibrateBN: 2 },
      }),
    (e: unknown) => e instanceof NoiselabError && /^recalibrateBN/.test(e.message),
  );
  m.dispose();
});

Deno.test("stats: Student t quantiles, confidence intervals, average normalized accuracy", () => {
  assert.ok(Math.abs(tQuantile(0.975, 4) - 2.776445) < 1e-5);
  assert.ok(Math.abs(tQuantile(0.975, 1) - 12.706205) < 1e-5);
  const ci = confidenceInterval([1, 2, 3, 4, 5]);
  const half = 2.776445 * Math.sqrt(2.5) / Math.sqrt(5);
  assert.ok(Math.abs(ci.low - (3 - half)) < 1e-5 && Math.abs(ci.high - (3 + half)) < 1e-5);
  assert.ok(Number.isNaN(confidenceInterval([0.5]).low));
  const row = (eta: number, draw: number, acc: number) => ({
    modelId: "a",
    eta,
    target: "kernels",
    form: "additive-std",
    draw,
    accuracy: acc,
    cleanAccuracy: 0.8,
    normalizedAccuracy: acc / 0.8,
  });
  const rows = [row(0, 0, 0.8), row(0.1, 0, 0.4), row(0.1, 1, 0.6), row(0.2, 0, 0.2)];
  assert.equal(summarizeRows(rows).length, 3);
  // mean over the noisy levels only (η = 0 excluded): (mean(0.5, 0.75) + 0.25) / 2
  assert.ok(Math.abs(averageNormalizedAccuracy(rows) - (0.625 + 0.25) / 2) < 1e-12);
  assert.ok(Number.isNaN(averageNormalizedAccuracy([row(0, 0, 0.8)])), "no noisy level: NaN");
  assert.throws(
    () => averageNormalizedAccuracy([...rows, { ...row(0, 0, 0.5), modelId: "b" }]),
    NoiselabError,
  );
});
