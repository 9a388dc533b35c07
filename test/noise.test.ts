import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import * as tfl from "@tensorflow/tfjs-layers";
import { bnLayerNames, buildModel, predictLogits } from "../lib/models/mod.ts";
import {
  averageNormalizedAccuracy,
  averageNormalizedInterval,
  foldBatchNorm,
  listWeights,
  meanInterval,
  noiseScale,
  noiseSweep,
  noisyValues,
  perturbWeights,
  recalibrateBatchNorm,
  summarizeRows,
  sweepKey,
  type SweepRow,
  sweepSelection,
  tQuantile,
  withNoise,
} from "../lib/noise/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";
import { NUMERICS_VERSION } from "../lib/util/version.ts";

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
  // independent oracle: re-create every draw by hand (same per-tensor streams), predict, take the
  // arg-max with a plain loop, count; then the paper's metric as mean over η > 0 of mean over draws
  const handAcc = new Map<number, number[]>();
  for (const eta of opts.etas) {
    for (let k = 0; k < opts.draws; k++) {
      const restore = perturbWeights(m, { targets: ["kernels"] }, eta, `9:${eta}:${k}`);
      const logits = await predictLogits(m, x, 16);
      restore();
      let correct = 0;
      for (let i = 0; i < labels.length; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        if (best === labels[i]) correct++;
      }
      if (!handAcc.has(eta)) handAcc.set(eta, []);
      handAcc.get(eta)!.push(correct / labels.length);
    }
  }
  for (const row of r.rows) {
    assert.equal(row.accuracy, handAcc.get(row.eta)![row.draw], `eta ${row.eta} draw ${row.draw}`);
  }
  const avg = (v: number[]) => v.reduce((p, q) => p + q, 0) / v.length;
  const oracle = (avg(handAcc.get(0.05)!) + avg(handAcc.get(1.5)!)) / 2; // clean accuracy is 1
  assert.ok(oracle < 0.99, `the oracle must be informative (${oracle})`);
  assert.ok(
    Math.abs(r.averageNormalizedAccuracy - oracle) < 1e-12,
    `${r.averageNormalizedAccuracy} vs ${oracle}`,
  );
  // 95% t interval on 2 df (t = 4.302653) over the three draws, clipped to [0, 1]
  const acc1 = handAcc.get(0.05)!;
  const sd1 = Math.sqrt(acc1.reduce((p, q) => p + (q - avg(acc1)) ** 2, 0) / 2);
  const h1 = 4.302653 * sd1 / Math.sqrt(3);
  assert.ok(Math.abs(s[1].lo - Math.max(0, avg(acc1) - h1)) < 1e-5, `lo ${s[1].lo}`);
  assert.ok(Math.abs(s[1].hi - Math.min(1, avg(acc1) + h1)) < 1e-5, `hi ${s[1].hi}`);
  for (const row of r.rows) {
    assert.equal(row.nonFiniteShare, 0);
    assert.equal(row.scoring, "argmax-numpy");
  }
  assert.equal(r.cleanNonFiniteShare, 0);
  assert.equal(r.provenance.scoring, "argmax-numpy");
  assert.match(r.provenance.dataHash, /^[0-9a-f]{16}$/);
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

function setWeight(m: tfl.LayersModel, name: string, values: Float32Array): void {
  const w = listWeights(m).find((q) => q.name === name);
  assert.ok(w, `no tensor ${name}`);
  const t = tf.tensor(values, w.variable.shape as number[]);
  w.variable.write(t);
  t.dispose();
}

function restoreAll(m: tfl.LayersModel, saved: Map<string, Float32Array>): void {
  for (const [name, v] of saved) setWeight(m, name, v);
}

Deno.test("nonFiniteShare: a very negative BN moving variance makes every logits row NaN; both scoring rules", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 5 });
  randomize(m, "nan");
  const x = images(30, S8, "nx");
  const labels = Array.from({ length: 30 }, (_, i) => i % 10); // balanced: 3 images per class
  const healthy = await noiseSweep(m, { x, labels }, {
    etas: [0.01],
    draws: 2,
    seed: 1,
    modelId: "m",
    spec: { targets: ["kernels"] },
  });
  assert.deepEqual(healthy.rows.map((q) => q.nonFiniteShare), [0, 0]);
  assert.equal(healthy.cleanNonFiniteShare, 0);
  const n = listWeights(m).find((w) => w.name === "bn1/moving_variance")!.variable.shape[0]!;
  setWeight(m, "bn1/moving_variance", new Float32Array(n).fill(-100));
  const base = { etas: [0.01], draws: 2, seed: 1, modelId: "m", spec: { targets: ["kernels" as const] } };
  const numpy = await noiseSweep(m, { x, labels }, base);
  assert.equal(numpy.cleanNonFiniteShare, 1);
  for (const row of numpy.rows) {
    assert.equal(row.nonFiniteShare, 1, "every image's logits are NaN");
    assert.equal(row.accuracy, 0.1, "argmax-numpy: all-NaN rows predict class 0 → chance on balanced labels");
    assert.equal(row.scoring, "argmax-numpy");
  }
  assert.equal(numpy.summary[0].nonFiniteShare, 1);
  const wrong = await noiseSweep(m, { x, labels }, { ...base, scoring: "nonfinite-wrong" });
  for (const row of wrong.rows) {
    assert.equal(row.nonFiniteShare, 1);
    assert.equal(row.accuracy, 0, "nonfinite-wrong: NaN rows are wrong");
  }
  assert.equal(wrong.provenance.scoring, "nonfinite-wrong");
  m.dispose();
});

Deno.test("noiseSweep: noise on BN variances that turns some negative shows up as non-finite rows", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 5 });
  randomize(m, "nan");
  const x = images(30, S8, "nx");
  const labels = await selfLabels(m, x);
  let nanDraws = 0;
  const evaluate = async (mm: tfl.LayersModel, xx: Float32Array, ll: ArrayLike<number>, bs: number) => {
    const logits = await predictLogits(mm, xx, bs);
    if (logits.some((v) => Number.isNaN(v))) nanDraws++;
    const { evaluateLogits } = await import("../lib/models/predict.ts");
    return evaluateLogits(mm, xx, ll, { batchSize: bs, scoring: "nonfinite-wrong" });
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
  assert.ok(nanDraws > 0, "negative variances should produce NaN logits");
  assert.equal(r.rows.filter((q) => q.nonFiniteShare > 0).length, nanDraws);
  for (const q of r.rows) assert.ok(q.accuracy <= 1 - q.nonFiniteShare + 1e-12, JSON.stringify(q));
  // a custom evaluator returning a bare number: the share is unknown (NaN), not 0
  const bare = await noiseSweep(m, { x, labels }, {
    etas: [3],
    draws: 1,
    seed: 1,
    modelId: "m",
    spec: { targets: ["bn-var"] },
    evaluate: () => Promise.resolve(0.5),
  });
  assert.ok(Number.isNaN(bare.rows[0].nonFiniteShare));
  m.dispose();
});

Deno.test("noiseSweep: foldBN option runs and leaves the model unchanged", async () => {
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
  m.dispose();
});

Deno.test("noiseSweep: recalibrateBN re-estimates BN statistics per draw (= perturb, recalibrate, evaluate by hand)", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 6 });
  randomize(m, "opt"); // stored moving statistics are arbitrary, far from the data's
  const x = images(24, S8, "ox");
  const labels = await selfLabels(m, x);
  const cal = images(32, S8, "cal");
  const before = snapshot(m);
  const opts = { etas: [0.3], draws: 3, seed: 2, modelId: "m", spec: { targets: ["kernels" as const] } };
  const plain = await noiseSweep(m, { x, labels }, opts);
  const recal = await noiseSweep(m, { x, labels }, {
    ...opts,
    recalibrateBN: { x: cal, batches: 2, batchSize: 16 },
  });
  assert.equal(recal.provenance.recalibrateBN?.batches, 2);
  assert.equal(recal.provenance.spec.recalibrateBN, 2);
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  // oracle: the same draws by hand, with the BN statistics re-estimated on the 32 calibration images
  const hand: number[] = [];
  for (let k = 0; k < 3; k++) {
    const restore = perturbWeights(m, { targets: ["kernels"] }, 0.3, `2:0.3:${k}`);
    assert.equal(await recalibrateBatchNorm(m, cal, { batches: 2, batchSize: 16 }), 7);
    const logits = await predictLogits(m, x);
    restore();
    restoreAll(m, before);
    let correct = 0;
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
      if (best === labels[i]) correct++;
    }
    hand.push(correct / labels.length);
  }
  assert.deepEqual(recal.rows.map((q) => q.accuracy), hand);
  // recalibration must change the outcome here (else the comparison above proves nothing)
  assert.notDeepEqual(plain.rows.map((q) => q.accuracy), hand);
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

Deno.test("noiseSweep: no selected tensor, no eta > 0 or a bad scoring rule is an error naming it, before any work", async () => {
  const noBn = buildModel("resnet8", { width: 4, inputShape: S8, bn: "none" });
  const withBn = buildModel("resnet8", { width: 4, inputShape: S8 });
  const data = { x: images(4, S8, "e"), labels: [0, 1, 2, 3] };
  let calls = 0;
  const evaluate = () => (calls++, Promise.resolve(1));
  const base = { etas: [0, 0.1], draws: 1, seed: 1, modelId: "m", evaluate };
  const nerr = (re: RegExp) => (e: unknown) => e instanceof NoiselabError && re.test(e.message);
  await assert.rejects(
    () => noiseSweep(noBn, data, { ...base, spec: { targets: ["bn-var"] } }),
    nerr(/^targets: bn-var selects no weight tensor of m \(it has no BatchNorm layer\)/),
  );
  await assert.rejects(
    () => noiseSweep(noBn, data, { ...base, modelId: "twin", spec: { targets: ["bn-affine"] } }),
    nerr(/^targets: bn-affine selects no weight tensor of twin \(it has no BatchNorm layer\)/),
  );
  await assert.rejects(
    () => noiseSweep(withBn, data, { ...base, spec: { targets: ["bn-mean"], foldBN: true } }),
    nerr(/^targets: bn-mean selects no weight tensor of m once BN is folded/),
  );
  await assert.rejects(
    () => noiseSweep(withBn, data, { ...base, spec: { targets: ["bn-mean", "bn-var"], foldBN: true } }),
    nerr(/^targets: bn-mean\+bn-var/),
  );
  await assert.rejects(
    () => noiseSweep(withBn, data, { ...base, etas: [0] }),
    nerr(/^etas: no noise level > 0/),
  );
  await assert.rejects(() => noiseSweep(withBn, data, { ...base, etas: [0, 0] }), nerr(/^etas:/));
  await assert.rejects(
    () => noiseSweep(withBn, data, { ...base, scoring: "max" as any }),
    nerr(/^scoring: unknown scoring rule "max"/),
  );
  assert.equal(calls, 0, "nothing was evaluated");
  assert.throws(
    () => sweepSelection(noBn, { targets: ["bn-affine"] }, "model x"),
    nerr(/^targets: bn-affine selects no weight tensor of model x \(it has no BatchNorm layer\)/),
  );
  const nBn = listWeights(withBn).filter((w) => w.kind === "moving_variance").length;
  assert.ok(nBn > 0);
  assert.equal(sweepSelection(withBn, { targets: ["bn-var"] }).tensors, nBn);
  assert.equal(
    sweepSelection(withBn, { targets: ["all"], foldBN: true }).names.some((q) => q.startsWith("bn")),
    false,
  );
  // a selection that is partly empty still perturbs something: allowed
  const nKernels = listWeights(noBn).filter((w) => w.kind === "kernel").length;
  assert.equal(sweepSelection(noBn, { targets: ["kernels", "bn-var"] }).tensors, nKernels);
  const ok = await noiseSweep(withBn, data, { ...base, spec: { targets: ["bn-var"] } });
  assert.equal(ok.rows.length, 2);
  assert.equal(ok.nothingPerturbed, false);
  assert.ok(ok.rows.every((r) => !("nothingPerturbed" in r)));
  noBn.dispose();
  withBn.dispose();
});

Deno.test("noiseSweep allowEmpty: an empty selection asked for on purpose gives rows marked nothingPerturbed", async () => {
  const noBn = buildModel("resnet8", { width: 4, inputShape: S8, bn: "none" });
  randomize(noBn, "ae");
  const x = images(8, S8, "aex");
  const labels = await selfLabels(noBn, x);
  const r = await noiseSweep(noBn, { x, labels }, {
    etas: [0.1, 0.5],
    draws: 2,
    seed: 1,
    modelId: "twin",
    spec: { targets: ["bn-var"] },
    allowEmpty: true,
  });
  assert.equal(r.nothingPerturbed, true);
  assert.equal(r.provenance.perturbed.tensors, 0);
  assert.equal(r.rows.length, 4);
  for (const row of r.rows) {
    assert.equal(row.nothingPerturbed, true);
    assert.equal(row.accuracy, r.cleanAccuracy);
  }
  noBn.dispose();
});

function denseChain(sizes: number[], names: string[], opts: { bias?: boolean; bnAfter?: number } = {}) {
  const input = tfl.input({ shape: [sizes[0]] });
  let h = input as tfl.SymbolicTensor;
  for (let i = 1; i < sizes.length; i++) {
    h = tfl.layers.dense({ units: sizes[i], name: names[i - 1], useBias: opts.bias ?? false }).apply(
      h,
    ) as tfl.SymbolicTensor;
    if (opts.bnAfter === i) h = tfl.layers.batchNormalization({ name: "bn1" }).apply(h) as tfl.SymbolicTensor;
  }
  return tfl.model({ inputs: input, outputs: h });
}

function filled(n: number, seed: string, mean: number, std: number): Float32Array {
  const z = gaussianFill(makeRng(seed), new Float32Array(n));
  for (let i = 0; i < n; i++) z[i] = mean + std * z[i];
  return z;
}

function popStd(v: Float32Array): number {
  let s = 0;
  for (const q of v) s += q;
  const m = s / v.length;
  let ss = 0;
  for (const q of v) ss += (q - m) ** 2;
  return Math.sqrt(ss / v.length);
}

Deno.test("noise statistics per tensor: own sigma per tensor, population std not RMS, Gaussian shape", () => {
  // a: std 1, mean 0; b: std 0.01, mean 0; c: std 0.01 around mean 5 (RMS ≈ 5)
  const m = denseChain([300, 400, 500, 600], ["a", "b", "c"]);
  setWeight(m, "a/kernel", filled(300 * 400, "a", 0, 1));
  setWeight(m, "b/kernel", filled(400 * 500, "b", 0, 0.01));
  setWeight(m, "c/kernel", filled(500 * 600, "c", 5, 0.01));
  const w0 = snapshot(m);
  const eta = 0.5;
  const restore = perturbWeights(m, { form: "additive-std", targets: ["kernels"] }, eta, "per-tensor");
  const w1 = snapshot(m);
  restore();
  const diff = (k: string) => w1.get(k)!.map((v, i) => v - w0.get(k)![i]);
  const da = diff("a/kernel"), db = diff("b/kernel"), dc = diff("c/kernel");
  const sa = eta * popStd(w0.get("a/kernel")!), sb = eta * popStd(w0.get("b/kernel")!);
  const sc = eta * popStd(w0.get("c/kernel")!);
  assert.ok(Math.abs(popStd(da) / sa - 1) < 0.01, `a: ${popStd(da)} vs ${sa}`);
  assert.ok(
    Math.abs(popStd(db) / sb - 1) < 0.01,
    `b: ${popStd(db)} vs ${sb} (one global sigma would give ~${sa})`,
  );
  assert.ok(Math.abs(popStd(dc) / sc - 1) < 0.01, `c: ${popStd(dc)} vs ${sc} (RMS would give ~${eta * 5})`);
  // population std (n denominator), exactly, on a tiny tensor: std([1,2,3,4]) = √1.25, not √(5/3)
  assert.ok(
    Math.abs(noiseScale("additive-std", 1, new Float32Array([1, 2, 3, 4])) - Math.sqrt(1.25)) < 1e-12,
  );
  assert.ok(
    Math.abs(noiseScale("additive-std", 2, new Float32Array([5, 5, 5, 7])) - 2 * Math.sqrt(0.75)) < 1e-12,
  );
  // Gaussian: 68.27% within one sigma, 95.45% within two (a uniform of equal std gives 57.7% / 100%)
  const share = (d: Float32Array, s: number, k: number) =>
    d.filter((v) => Math.abs(v) < k * s).length / d.length;
  for (const [d, s] of [[da, sa], [dc, sc]] as const) {
    assert.ok(Math.abs(share(d, s, 1) - 0.6827) < 0.006, `within 1 sigma: ${share(d, s, 1)}`);
    assert.ok(Math.abs(share(d, s, 2) - 0.9545) < 0.004, `within 2 sigma: ${share(d, s, 2)}`);
  }
  m.dispose();
});

Deno.test("bias and BN-statistics targets perturb exactly those arrays, each with its own sigma", () => {
  const m = denseChain([16, 2000, 10], ["fc1", "fc"], { bias: true, bnAfter: 1 });
  setWeight(m, "fc1/bias", filled(2000, "b1", 0.3, 2));
  setWeight(m, "fc/bias", filled(10, "b2", 0, 1));
  setWeight(m, "bn1/gamma", filled(2000, "g", 1, 0.2));
  setWeight(m, "bn1/beta", filled(2000, "be", 0, 0.2));
  setWeight(m, "bn1/moving_mean", filled(2000, "mm", 1, 0.5));
  setWeight(m, "bn1/moving_variance", filled(2000, "mv", 2, 0.1));
  const before = snapshot(m);
  const eta = 0.2;
  for (
    const [target, changed, big] of [
      ["biases", ["fc1/bias", "fc/bias"], "fc1/bias"],
      ["bn-mean", ["bn1/moving_mean"], "bn1/moving_mean"],
      ["bn-var", ["bn1/moving_variance"], "bn1/moving_variance"],
      ["bn-affine", ["bn1/gamma", "bn1/beta"], "bn1/gamma"],
    ] as const
  ) {
    const restore = perturbWeights(m, { targets: [target] }, eta, `only-${target}`);
    const after = snapshot(m);
    restore();
    for (const [name, v] of before) {
      const a = after.get(name)!;
      const nChanged = v.filter((q, i) => q !== a[i]).length;
      if ((changed as readonly string[]).includes(name)) {
        assert.equal(nChanged, v.length, `${target}: all of ${name}`);
      } else assert.equal(nChanged, 0, `${target}: ${name} must stay bitwise`);
    }
    const d = after.get(big)!.map((q, i) => q - before.get(big)![i]);
    const expect = eta * popStd(before.get(big)!);
    assert.ok(Math.abs(popStd(d) / expect - 1) < 0.06, `${target}: ${big} sigma ${popStd(d)} vs ${expect}`);
  }
  for (const [k, v] of snapshot(m)) assert.deepEqual(v, before.get(k), k);
  m.dispose();
});

Deno.test("foldBN: sigma comes from the folded weights (noise added after folding)", async () => {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, seed: 8 });
  randomize(m, "fsig");
  for (const w of listWeights(m).filter((q) => q.kind === "gamma")) {
    setWeight(m, w.name, filled(w.variable.shape[0]!, w.name, 10, 1)); // folding scales kernels ~10x
  }
  const x = images(4, S8, "fx");
  const name = "conv7/kernel";
  let seen: Float32Array | undefined;
  await noiseSweep(m, { x, labels: [0, 1, 2, 3] }, {
    etas: [0.5],
    draws: 1,
    seed: 3,
    modelId: "m",
    spec: { targets: ["kernels"], foldBN: true },
    evaluate: (noisy) => {
      if (seen === undefined || noisy.getLayer("conv7")) {
        seen = (listWeights(noisy).find((q) => q.name === name)!.variable.read().dataSync() as Float32Array)
          .slice();
      }
      return Promise.resolve(1);
    },
  });
  const f = foldBatchNorm(m);
  const wf = (listWeights(f).find((q) => q.name === name)!.variable.read().dataSync() as Float32Array)
    .slice();
  f.dispose();
  const w = snapshot(m).get(name)!;
  assert.ok(popStd(wf) > 5 * popStd(w), `folded std ${popStd(wf)} vs original ${popStd(w)}`);
  // exactly the folded kernel plus noise of sigma 0.5·std(folded kernel), stream "3:0.5:0:conv7/kernel"
  assert.deepEqual(seen, noisyValues("additive-std", 0.5, wf, makeRng(`3:0.5:0:${name}`)));
  const d = seen!.map((v, i) => v - wf[i]);
  assert.ok(
    Math.abs(popStd(d) / (0.5 * popStd(wf)) - 1) < 0.1,
    `noise std ${popStd(d)} vs ${0.5 * popStd(wf)}`,
  );
  m.dispose();
});

Deno.test("sweepKey: every input that can change a number changes the key", () => {
  const x = images(2, S8, "k");
  const base = { modelId: "m", data: { x, labels: [0, 1] }, etas: [0, 0.1], draws: 3, seed: 1 };
  const k0 = JSON.stringify(sweepKey(base));
  assert.equal(
    JSON.stringify(sweepKey({ ...base, scoring: "argmax-numpy" })),
    k0,
    "default = explicit default",
  );
  const x2 = x.slice();
  x2[5] += 1e-3;
  const variants = [
    { ...base, scoring: "nonfinite-wrong" as const },
    { ...base, backend: "wasm" },
    { ...base, data: { x: x2, labels: [0, 1] } },
    { ...base, data: { x, labels: [1, 1] } },
    { ...base, dataId: "cifar10-jpeg-000000000000" },
    { ...base, spec: { targets: ["all" as const] } },
    { ...base, spec: { foldBN: true } },
    { ...base, batchSize: 100 },
    { ...base, seed: 2 },
    { ...base, recalibrateBN: { x, batches: 2 } },
  ];
  for (const v of variants) assert.notEqual(JSON.stringify(sweepKey(v)), k0, JSON.stringify(Object.keys(v)));
  const key = sweepKey(base) as Record<string, unknown>;
  assert.equal(key.backend, "cpu");
  assert.equal(key.scoring, "argmax-numpy");
  assert.equal(key.numerics, NUMERICS_VERSION);
});

Deno.test("stats: Student t quantiles, intervals, average normalized accuracy against hand values", () => {
  assert.ok(Math.abs(tQuantile(0.975, 4) - 2.776445) < 1e-5);
  assert.ok(Math.abs(tQuantile(0.975, 1) - 12.706205) < 1e-5);
  const ci = meanInterval([1, 2, 3, 4, 5]);
  const half = 2.776445 * Math.sqrt(2.5) / Math.sqrt(5);
  assert.ok(Math.abs(ci.lo - (3 - half)) < 1e-5 && Math.abs(ci.hi - (3 + half)) < 1e-5);
  assert.ok(Number.isNaN(meanInterval([0.5]).lo));
  const row = (eta: number, draw: number, acc: number): SweepRow => ({
    modelId: "a",
    eta,
    target: "kernels",
    form: "additive-std",
    draw,
    accuracy: acc,
    cleanAccuracy: 0.8,
    normalizedAccuracy: acc / 0.8,
    nonFiniteShare: 0,
    scoring: "argmax-numpy",
  });
  const rows = [row(0, 0, 0.8), row(0.1, 0, 0.4), row(0.1, 1, 0.6), row(0.2, 0, 0.2)];
  assert.equal(summarizeRows(rows).length, 3);
  // mean over the noisy levels only (η = 0 excluded): (mean(0.5, 0.75) + 0.25) / 2
  assert.ok(Math.abs(averageNormalizedAccuracy(rows) - (0.625 + 0.25) / 2) < 1e-12);
  // no noisy level: nothing to average, an error naming etas (was NaN)
  const noNoisy = (e: unknown) =>
    e instanceof NoiselabError && e.subject === "etas" && /^etas: no noise level > 0/.test(e.message);
  assert.throws(() => averageNormalizedAccuracy([row(0, 0, 0.8), row(0, 1, 0.8)]), noNoisy);
  assert.throws(() => averageNormalizedInterval([row(0, 0, 0.8), row(0, 1, 0.8)]), noNoisy);
  assert.throws(
    () => averageNormalizedAccuracy([...rows, { ...row(0, 0, 0.5), modelId: "b" }]),
    NoiselabError,
  );
});
