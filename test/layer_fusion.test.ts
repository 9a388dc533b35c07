// The engine's training-mode BN + ReLU fusion (lib/backend/engine/grads.ts `withLayerFusion`):
// which layer pairs it takes, that the fused kernels give bitwise what BN then ReLU give
// (values, gradients, moving statistics; NaN and infinities included), and that a
// training step really runs fused (fewer Relu / ReluGrad calls).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import {
  BN_INFER_RELU,
  BN_TRAIN,
  BN_TRAIN_GRAD,
  BN_TRAIN_RELU,
  ENGINE_NAME,
  engineSkipReason,
  engineStats,
  layerFusionEnabled,
  registerEngine,
  RELU_GRAD,
  reluFusions,
  setEngineProfiling,
  skipTagged,
  withLayerFusion,
} from "../lib/backend/engine/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import { DEFAULT_TRAIN_CONFIG, trainStep, trainStepState } from "../lib/train/mod.ts";
import { images, randomizeBN } from "./model_helpers.ts";

const nat = registerEngine();
const skip = nat == null ? engineSkipReason() : null;
/**
 * An engine test: run on the engine backend (the previous one restored after) with the fusion on
 * (NOISELAB_LAYER_FUSION=1) whatever the caller's environment.
 */
function engineTest(name: string, fn: () => Promise<void> | void) {
  Deno.test({
    name: skipTagged(`engine: ${name}`, skip),
    ignore: skip != null,
    fn: () =>
      withFusionEnv("1", async () => {
        const prev = tf.getBackend();
        await tf.setBackend(ENGINE_NAME);
        try {
          await fn();
        } finally {
          await tf.setBackend(prev);
        }
      }),
  });
}

/** Runs `fn` with NOISELAB_LAYER_FUSION set to `value` (the caller's value restored after). */
async function withFusionEnv<T>(value: string, fn: () => Promise<T> | T): Promise<T> {
  const prev = Deno.env.get("NOISELAB_LAYER_FUSION");
  Deno.env.set("NOISELAB_LAYER_FUSION", value);
  try {
    return await fn();
  } finally {
    if (prev === undefined) Deno.env.delete("NOISELAB_LAYER_FUSION");
    else Deno.env.set("NOISELAB_LAYER_FUSION", prev);
  }
}

/**
 * The 32-bit patterns of a tensor's values (signed zeros, infinities and NaN payloads). With
 * `anyNaN`, every NaN as one pattern: for comparisons with tfjs' JavaScript kernels (the
 * engine's fallback for arrays under 1024 values), which do not keep NaN payloads.
 */
function bits(t: tf.Tensor, anyNaN = false): Uint32Array {
  const b = new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer);
  if (anyNaN) { for (let i = 0; i < b.length; i++) if ((b[i] & 0x7fffffff) > 0x7f800000) b[i] = 0x7fc00000; }
  return b;
}
function assertSameBits(a: tf.Tensor, b: tf.Tensor, label: string, anyNaN = false) {
  assert.deepEqual(a.shape, b.shape, `${label}: shape`);
  const x = bits(a, anyNaN), y = bits(b, anyNaN);
  let diff = -1;
  for (let i = 0; i < x.length && diff < 0; i++) if (x[i] !== y[i]) diff = i;
  assert.equal(
    diff,
    -1,
    `${label}: element ${diff} differs (${a.dataSync()[diff]} vs ${b.dataSync()[diff]})`,
  );
}

Deno.test("reluFusions: the BN -> ReLU pairs of the builders' models, and none where BN has other uses", () => {
  const names = (m: tfl.LayersModel) => [...reluFusions(m)].map(([bn, relu]) => `${bn.name}>${relu.name}`);
  const r = buildModel("resnet20", { bn: "all", seed: 0 });
  // stem + the first conv of each of the 9 blocks; the second conv's BN feeds the residual add
  assert.equal(names(r).length, 10);
  assert.ok(names(r).every((s) => /^bn\d+>act\d+$/.test(s)), names(r).join(", "));
  const v = buildModel("vgg11", { bn: "all", seed: 0, width: 8 });
  assert.equal(names(v).length, 8); // every conv of VGG-11
  assert.equal(names(buildModel("resnet20", { bn: "none", seed: 0 })).length, 0);

  // a BN whose output also feeds a second layer, and a BN that is a model output: not fused
  const inp = tfl.input({ shape: [4, 4, 3] });
  const bn1 = tfl.layers.batchNormalization({ name: "shared_bn" }).apply(inp) as tfl.SymbolicTensor;
  const a = tfl.layers.activation({ activation: "relu", name: "a" }).apply(bn1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add().apply([a, bn1]) as tfl.SymbolicTensor;
  const bn2 = tfl.layers.batchNormalization({ name: "out_bn" }).apply(sum) as tfl.SymbolicTensor;
  const b = tfl.layers.activation({ activation: "relu", name: "b" }).apply(bn2) as tfl.SymbolicTensor;
  const bn3 = tfl.layers.batchNormalization({ name: "tanh_bn" }).apply(b) as tfl.SymbolicTensor;
  const c = tfl.layers.activation({ activation: "tanh", name: "c" }).apply(bn3) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: inp, outputs: [c, bn2] });
  assert.deepEqual(names(m), []);
});

/** x with NaN, ±Inf and values so large that BN's fast path overflows, at seeded places. */
function hostile(n: number, seed: string): Float32Array {
  const r = makeRng(seed);
  const x = new Float32Array(n).map(() => (r() - 0.3) * 4);
  const specials = [NaN, Infinity, -Infinity, 3e38, -3e38, -0];
  for (let k = 0; k < 12; k++) x[Math.floor(r() * n)] = specials[k % specials.length];
  return x;
}

engineTest(
  "fused BN + ReLU kernels give bitwise what BN, Relu, ReluGrad and the BN gradient give",
  async () => {
    for (
      const [shape, seed] of [[[6, 5, 5, 16], "a"], [[4, 3, 3, 20], "b"], [[64, 40], "c"], [
        [8, 16, 16, 24],
        "d",
      ]] as const
    ) {
      for (const special of [false, true]) {
        const n = shape.reduce((p, q) => p * q, 1), C = shape[shape.length - 1];
        const r = makeRng(`${seed}${special}`);
        const X = special ? hostile(n, `${seed}x`) : new Float32Array(n).map(() => (r() - 0.3) * 4);
        const DY = special ? hostile(n, `${seed}dy`) : new Float32Array(n).map(() => r() - 0.5);
        tf.tidy(() => {
          const x = tf.tensor(X, [...shape]), dy = tf.tensor(DY, [...shape]);
          const gamma = tf.tensor1d(new Float32Array(C).map(() => 0.5 + r()));
          const beta = tf.tensor1d(new Float32Array(C).map(() => r() - 0.5));
          const attrs = { epsilon: 1e-5 };
          const [y, mean, variance] = tf.engine().runKernel(
            BN_TRAIN,
            { x, gamma, beta },
            attrs,
          ) as tf.Tensor[];
          const relu = tf.relu(y);
          const [yf, meanF, varF] = tf.engine().runKernel(
            BN_TRAIN_RELU,
            { x, gamma, beta },
            attrs,
          ) as tf.Tensor[];
          const label = `${shape} ${special ? "with NaN/Inf/overflow" : "finite"}`;
          assertSameBits(yf, relu, `${label} y`, n < 1024); // tf.relu under 1024 values: JavaScript
          assertSameBits(meanF, mean, `${label} mean`);
          assertSameBits(varF, variance, `${label} variance`);
          const dyRelu = tf.engine().runKernel(RELU_GRAD, { dy, x: y }) as tf.Tensor;
          const sep = tf.engine().runKernel(
            BN_TRAIN_GRAD,
            { dy: dyRelu, x, mean, variance, gamma },
            attrs,
          ) as tf.Tensor[];
          const fused = tf.engine().runKernel(
            BN_TRAIN_GRAD,
            { dy, x, mean, variance, gamma, y: yf },
            attrs,
          ) as tf.Tensor[];
          ["dx", "dgamma", "dbeta"].forEach((k, i) => assertSameBits(fused[i], sep[i], `${label} ${k}`));
          if (special) {
            assert.ok(Array.from(yf.dataSync()).some((v) => !Number.isFinite(v)), `${label}: no NaN/Inf`);
          }
        });
      }
    }
  },
);

/** Loss, every gradient and the BN moving statistics after one training-mode pass of `model`. */
function trainingPass(model: tfl.LayersModel, x: Float32Array, n: number, fused: boolean) {
  return tf.tidy(() => {
    const xb = tf.tensor4d(x, [n, 32, 32, 3]);
    const labels = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), "int32"), 10);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const call = () => model.apply(xb, { training: true }) as tf.Tensor;
      const out = fused ? withLayerFusion(model, call) : call();
      return tf.losses.softmaxCrossEntropy(labels, out) as tf.Scalar;
    }, vars);
    const stats = model.weights.filter((w) => /moving/.test(w.name)).map((w) => w.read().clone());
    return { value, grads: vars.map((v) => grads[v.name]), stats };
  });
}

engineTest(
  "a training pass with the fusion gives bitwise the loss, gradients and moving stats without it",
  async () => {
    for (const [name, opts] of [["resnet8", { width: 8 }], ["vgg11", { width: 8 }]] as const) {
      const n = 6;
      const x = images(n, 3);
      x[5] = NaN; // one image with a NaN pixel: its NaNs must travel the same way
      // two identical models (same seed): the pass updates the moving statistics
      const mA = buildModel(name, { bn: "all", seed: 1, ...opts });
      const mB = buildModel(name, { bn: "all", seed: 1, ...opts });
      setEngineProfiling(true);
      const a = trainingPass(mA, x, n, false);
      const plain = { ...engineStats() };
      setEngineProfiling(false);
      setEngineProfiling(true);
      const b = trainingPass(mB, x, n, true);
      const fusedStats = { ...engineStats() };
      setEngineProfiling(false);
      const pairs = reluFusions(mB).size;
      assert.ok(pairs > 0);
      // the fusion ran: one fused BN per pair, that many fewer Relu and ReluGrad calls
      const calls = (s: typeof plain, k: string) => (s[k]?.native ?? 0) + (s[k]?.fallback ?? 0);
      assert.equal(calls(fusedStats, BN_TRAIN_RELU), pairs, `${name}: fused BN calls`);
      assert.equal(calls(plain, "Relu") - calls(fusedStats, "Relu"), pairs, `${name}: Relu calls saved`);
      assert.equal(
        calls(plain, RELU_GRAD) - calls(fusedStats, RELU_GRAD),
        pairs,
        `${name}: ReluGrad calls saved`,
      );
      assertSameBits(b.value, a.value, `${name} loss`);
      assert.ok(Number.isNaN(a.value.dataSync()[0]), `${name}: the NaN pixel reached the loss`);
      assert.equal(a.grads.length, mA.trainableWeights.length);
      a.grads.forEach((g, i) => assertSameBits(b.grads[i], g, `${name} grad ${mA.trainableWeights[i].name}`));
      a.stats.forEach((s, i) => assertSameBits(b.stats[i], s, `${name} moving stat ${i}`));
      // and a clean batch: finite, equal
      const xc = images(n, 4);
      const c = trainingPass(mA, xc, n, false), d = trainingPass(mB, xc, n, true);
      assert.ok(Number.isFinite(c.value.dataSync()[0]));
      c.grads.forEach((g, i) =>
        assertSameBits(d.grads[i], g, `${name} clean grad ${mA.trainableWeights[i].name}`)
      );
      tf.dispose([a, b, c, d].flatMap((p) => [p.value, ...p.grads, ...p.stats]));
      mA.dispose();
      mB.dispose();
    }
  },
);

engineTest("fused inference BN + ReLU kernel gives bitwise what FusedBatchNorm then Relu give", async () => {
  for (const [shape, seed] of [[[4, 3, 3, 20], "e"], [[8, 16, 16, 24], "f"]] as const) {
    for (const special of [false, true]) {
      const n = shape.reduce((p, q) => p * q, 1), C = shape[shape.length - 1];
      const r = makeRng(`${seed}${special}`);
      const X = special ? hostile(n, `${seed}x`) : new Float32Array(n).map(() => (r() - 0.3) * 4);
      tf.tidy(() => {
        const x = tf.tensor(X, [...shape]);
        const mean = tf.tensor1d(new Float32Array(C).map(() => r() - 0.5));
        const variance = tf.tensor1d(new Float32Array(C).map(() => 0.2 + r()));
        const scale = tf.tensor1d(new Float32Array(C).map(() => 0.5 + r()));
        const offset = tf.tensor1d(new Float32Array(C).map(() => r() - 0.5));
        const ref = tf.relu(tf.batchNorm(x, mean, variance, offset, scale, 1e-5));
        const fused = tf.engine().runKernel(
          BN_INFER_RELU,
          { x, mean, variance, offset, scale },
          { varianceEpsilon: 1e-5 },
        ) as tf.Tensor;
        // tf.relu under 1024 values runs in JavaScript, which does not keep NaN payloads
        assertSameBits(fused, ref, `${shape} ${special ? "with NaN/Inf/overflow" : "finite"}`, n < 1024);
      });
    }
  }
});

engineTest("predictLogits runs BN + ReLU fused and gives bitwise model.predict's logits", async () => {
  for (const [name, opts] of [["resnet8", { width: 8 }], ["vgg11", { width: 8 }]] as const) {
    const model = buildModel(name, { bn: "all", seed: 2, ...opts });
    randomizeBN(model, 5);
    const n = 7;
    const x = images(n, 6);
    x[3 * 32 * 32 * 3 + 17] = NaN; // image 3 carries a NaN
    x[5 * 32 * 32 * 3 + 4] = 3e38; // image 5 a huge pixel
    const ref = tf.tidy(() => model.predict(tf.tensor4d(x, [n, 32, 32, 3])) as tf.Tensor);
    const refBits = bits(ref);
    setEngineProfiling(true);
    const got = await predictLogits(model, x, 4); // two batches
    const stats = { ...engineStats() };
    setEngineProfiling(false);
    const calls = (s: typeof stats, k: string) => (s[k]?.native ?? 0) + (s[k]?.fallback ?? 0);
    const pairs = reluFusions(model).size;
    assert.equal(calls(stats, BN_INFER_RELU), 2 * pairs, `${name}: fused BN calls (2 batches)`);
    const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization").length;
    assert.equal(calls(stats, "FusedBatchNorm"), 2 * (bns - pairs), `${name}: unfused BN calls`);
    const gotBits = bits(tf.tensor(got, ref.shape));
    assert.deepEqual(gotBits, refBits, `${name}: logits`);
    const row = (i: number) => Array.from(got.subarray(i * 10, (i + 1) * 10));
    assert.ok(row(3).some((v) => Number.isNaN(v)), `${name}: the NaN image's logits carry NaN`);
    assert.ok(row(0).every(Number.isFinite), `${name}: a clean image's logits are finite`);
    ref.dispose();
    model.dispose();
  }
});

engineTest(
  "trainStep (lib/train) runs the BN + ReLU pairs fused; NOISELAB_LAYER_FUSION=0 or off turns it off",
  async () => {
    const model = buildModel("resnet8", { bn: "all", seed: 3, width: 8 });
    const st = trainStepState(model, {
      ...DEFAULT_TRAIN_CONFIG,
      optimizer: "sgd",
      momentum: 0.9,
      nesterov: false,
    });
    const n = 8, x = images(n, 7), y = new Int32Array(n).map((_, i) => i % 10);
    const fusedCalls = async (env: string) =>
      await withFusionEnv(env, () => {
        setEngineProfiling(true);
        trainStep(st, x, y, 0.01);
        const s = engineStats()[BN_TRAIN_RELU];
        setEngineProfiling(false);
        return (s?.native ?? 0) + (s?.fallback ?? 0);
      });
    assert.equal(await fusedCalls("1"), reluFusions(model).size);
    assert.equal(await fusedCalls("0"), 0);
    assert.equal(await fusedCalls("off"), 0);
    st.optimizer.dispose();
    model.dispose();
  },
);

Deno.test("layerFusionEnabled: the values of NOISELAB_LAYER_FUSION", async () => {
  for (const v of ["0", "false", "OFF", " no "]) {
    assert.equal(await withFusionEnv(v, layerFusionEnabled), false, v);
  }
  for (const v of ["", "1", "true", "on", "Yes"]) {
    assert.equal(await withFusionEnv(v, layerFusionEnabled), true, v);
  }
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(" "));
  try {
    assert.equal(await withFusionEnv("maybe", layerFusionEnabled), true);
    assert.equal(await withFusionEnv("maybe", layerFusionEnabled), true);
  } finally {
    console.error = orig;
  }
  assert.equal(errors.length, 1, "named once");
  assert.match(errors[0], /NOISELAB_LAYER_FUSION="maybe"/);
});
