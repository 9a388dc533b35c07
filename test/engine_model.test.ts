// tfjs-layers models on the `noiselab` engine vs the reference `cpu` backend:
// gradients of a small conv/BN/relu/residual/dense model, BN moving statistics,
// eval-mode predictions, and a short training run whose losses must track.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import {
  engineSkipReason,
  engineStats,
  engineUnavailableReason,
  registerEngine,
  setEngineProfiling,
  skipTagged,
} from "../lib/backend/engine/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

const nat = registerEngine();
// Skipped only where the shim cannot be built (no oneDNN headers / no g++); where it
// can, a shim that does not load fails these tests.
const skip = nat == null ? engineSkipReason() : null;
if (nat == null) {
  console.error(`[engine] ${engineUnavailableReason()}${skip ? ` (tests skipped: ${skip})` : ""}`);
}
const ignore = skip != null;
/** The test name, tagged with the skip reason when skipped (tools/test.sh reports and checks it). */
const tname = (name: string) => skipTagged(name, skip);

/** A tiny ResNet-like model (optionally without BN, with bias convs and max pooling). */
function tinyModel(bn: boolean, seed: number): tfl.LayersModel {
  const init = (k: number) => tfl.initializers.heNormal({ seed: seed + k });
  const inp = tfl.input({ shape: [8, 8, 3] });
  const conv = (x: tfl.SymbolicTensor, f: number, s: number, k: number) =>
    tfl.layers.conv2d({
      filters: f,
      kernelSize: 3,
      strides: s,
      padding: "same",
      useBias: !bn,
      kernelInitializer: init(k),
    })
      .apply(x) as tfl.SymbolicTensor;
  const norm = (
    x: tfl.SymbolicTensor,
  ) => (bn ? tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor : x);
  const relu = (x: tfl.SymbolicTensor) =>
    tfl.layers.activation({ activation: "relu" }).apply(x) as tfl.SymbolicTensor;
  let x = relu(norm(conv(inp, 8, 1, 1)));
  const y = norm(conv(relu(norm(conv(x, 8, 1, 2))), 8, 1, 3));
  x = relu(tfl.layers.add().apply([x, y]) as tfl.SymbolicTensor);
  x = relu(norm(conv(x, 16, 2, 4)));
  if (!bn) x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 12, activation: "relu", kernelInitializer: init(5) }).apply(
    x,
  ) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, kernelInitializer: init(6) }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: out });
}

/** Learnable synthetic data: the class is which quadrant is brightest, plus noise. */
function synthData(n: number, seed: string): { x: Float32Array; y: Int32Array } {
  const rng = makeRng(seed);
  const x = new Float32Array(n * 8 * 8 * 3), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rng() * 4);
    y[i] = c;
    for (let h = 0; h < 8; h++) {
      for (let w = 0; w < 8; w++) {
        const q = (h < 4 ? 0 : 2) + (w < 4 ? 0 : 1);
        for (let ch = 0; ch < 3; ch++) {
          x[((i * 8 + h) * 8 + w) * 3 + ch] = (q === c ? 0.8 : 0) + (rng() - 0.5) * 1.2;
        }
      }
    }
  }
  return { x, y };
}

function lossFn(model: tfl.LayersModel, x: tf.Tensor, labels: tf.Tensor) {
  return () =>
    tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
}

function maxRelDiff(a: Float32Array | number[], b: Float32Array | number[]): number {
  let scale = 1e-6, d = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / scale;
}

/** One gradient evaluation + BN statistics, on the given backend, from the same initial weights. */
async function gradsOn(
  backend: string,
  bn: boolean,
  init: Float32Array[],
  data: { x: Float32Array; y: Int32Array },
) {
  await tf.setBackend(backend);
  const model = tinyModel(bn, 7);
  model.setWeights(init.map((w, i) => tf.tensor(w, model.getWeights()[i].shape)));
  const n = data.y.length;
  const x = tf.tensor4d(data.x, [n, 8, 8, 3]);
  const labels = tf.oneHot(tf.tensor1d(data.y, "int32"), 4);
  const { value, grads } = tf.variableGrads(lossFn(model, x, labels));
  // in the model's weight order (variable names differ between the two model instances)
  const names = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val.name);
  const result = {
    loss: value.dataSync()[0],
    grads: names.map((k) => grads[k].dataSync().slice() as Float32Array),
    names,
    weights: model.getWeights().map((w) => w.dataSync().slice() as Float32Array), // includes BN moving stats
    evalOut: (model.predict(x) as tf.Tensor).dataSync().slice() as Float32Array,
  };
  tf.dispose([x, labels, value, ...Object.values(grads)]);
  model.dispose();
  return result;
}

for (const bn of [true, false]) {
  Deno.test(
    { name: tname(`engine: tfjs-layers model gradients match the cpu backend (bn=${bn})`), ignore },
    async () => {
      await tf.setBackend("cpu");
      const m0 = tinyModel(bn, 7);
      const init = m0.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      m0.dispose();
      const data = synthData(16, `d${bn}`);
      const ref = await gradsOn("cpu", bn, init, data);
      setEngineProfiling(true);
      const eng = await gradsOn("onednn", bn, init, data);
      const st = engineStats();
      setEngineProfiling(false);
      // the hot kernels must actually have run natively (not via the cpu fallback)
      const hot = ["FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "NoiselabReluGrad", "Relu"];
      if (bn) hot.push("NoiselabBatchNormTrain", "NoiselabBatchNormTrainGrad");
      else hot.push("MaxPool", "MaxPoolGrad");
      for (const k of hot) {
        assert.ok((st[k]?.native ?? 0) > 0, `${k} did not run natively: ${JSON.stringify(st[k])}`);
      }
      assert.ok(
        Math.abs(ref.loss - eng.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)),
        `loss ${ref.loss} vs ${eng.loss}`,
      );
      assert.equal(eng.grads.length, ref.grads.length);
      assert.ok(ref.grads.length >= (bn ? 14 : 12), `expected every trainable weight to get a gradient`);
      ref.grads.forEach((g, i) => {
        const d = maxRelDiff(g, eng.grads[i]);
        assert.ok(d < 2e-4, `gradient of ${ref.names[i]} differs: rel ${d}`);
      });
      ref.weights.forEach((w, i) => {
        const d = maxRelDiff(w, eng.weights[i]);
        assert.ok(d < 1e-5, `weight/moving statistic ${i} differs after the training-mode call: rel ${d}`);
      });
      if (bn) {
        // the training-mode call must have moved the BN moving statistics away from their init
        const moved = ref.weights.some((w, i) =>
          init[i].length === w.length && maxRelDiff(init[i], w) > 1e-4
        );
        assert.ok(moved, "BN moving statistics did not change");
      }
      assert.ok(maxRelDiff(ref.evalOut, eng.evalOut) < 1e-4, "eval-mode predictions differ");
    },
  );
}

Deno.test(
  { name: tname("engine: a short training run tracks the cpu backend (losses and accuracy)"), ignore },
  async () => {
    const data = synthData(256, "train");
    const test = synthData(128, "test");
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = tinyModel(true, 11);
      const opt = tf.train.momentum(0.05, 0.9);
      const losses: number[] = [];
      const bs = 32;
      for (let epoch = 0; epoch < 3; epoch++) {
        for (let b = 0; b < data.y.length / bs; b++) {
          const x = tf.tensor4d(data.x.subarray(b * bs * 192, (b + 1) * bs * 192), [bs, 8, 8, 3]);
          const labels = tf.oneHot(tf.tensor1d(data.y.subarray(b * bs, (b + 1) * bs), "int32"), 4);
          const loss = opt.minimize(lossFn(model, x, labels), true)!;
          losses.push(loss.dataSync()[0]);
          tf.dispose([x, labels, loss]);
        }
      }
      const pred = tf.tidy(() =>
        tf.argMax(model.predict(tf.tensor4d(test.x, [128, 8, 8, 3])) as tf.Tensor, -1).dataSync()
      );
      let correct = 0;
      pred.forEach((p: number, i: number) => (correct += p === test.y[i] ? 1 : 0));
      opt.dispose();
      model.dispose();
      return { losses, acc: correct / 128 };
    };
    const ref = await run("cpu");
    const eng = await run("onednn");
    assert.ok(
      ref.losses[ref.losses.length - 1] < 0.6 * ref.losses[0],
      `reference did not learn: ${ref.losses}`,
    );
    for (let i = 0; i < ref.losses.length; i++) {
      const tol = 1e-3 * (1 + i); // float rounding differences grow slowly along the run
      assert.ok(
        Math.abs(ref.losses[i] - eng.losses[i]) <= tol * Math.max(1, ref.losses[i]),
        `step ${i}: loss ${eng.losses[i]} vs reference ${ref.losses[i]}`,
      );
    }
    assert.ok(Math.abs(ref.acc - eng.acc) <= 2 / 128, `test accuracy ${eng.acc} vs reference ${ref.acc}`);
  },
);

Deno.test({ name: tname("engine: training is bitwise reproducible across processes"), ignore }, async () => {
  const fixture = new URL("./engine_repro_fixture.ts", import.meta.url).pathname;
  const run = async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fixture],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout).trim();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.match(text, /^[0-9a-f]{64}$/);
    return text;
  };
  const a = await run();
  const b = await run();
  assert.equal(a, b, "two identical runs gave different weights");
});

Deno.test({
  name: tname("engine: training weights do not depend on the thread count (1, 2, 3 threads: bitwise equal)"),
  ignore,
}, async () => {
  // model ids hold no thread count, so the weights must not depend on it: oneDNN's backward-weights
  // convolutions split their minibatch reduction among their threads (1 vs 2 threads differed before
  // they ran in the fixed reduction layout of native reduction_parts())
  const fixture = new URL("./engine_repro_fixture.ts", import.meta.url).pathname;
  const run = async (threads: number) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fixture],
      env: { NO_COLOR: "1", NOISELAB_THREADS: String(threads) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return new TextDecoder().decode(r.stdout).trim();
  };
  const [one, two, three] = [await run(1), await run(2), await run(3)];
  assert.match(two, /^[0-9a-f]{64}$/);
  assert.equal(one, two, "1 thread vs 2 threads: different weights");
  assert.equal(three, two, "3 threads vs 2 threads: different weights");
});

/** Logits of `model` on `x` with the cpu backend and with the engine (profiled: returns its kernel counters). */
async function logitsBoth(model: tfl.LayersModel, x: Float32Array) {
  await tf.setBackend("cpu");
  const ref = await predictLogits(model, x, 4);
  await tf.setBackend("onednn");
  setEngineProfiling(true);
  try {
    const eng = await predictLogits(model, x, 4);
    return { ref, eng, stats: engineStats() };
  } finally {
    setEngineProfiling(false);
  }
}

/** NaN exactly where the reference is NaN, equal infinities, finite logits within tolerance. */
function assertSameLogits(ref: Float32Array, eng: Float32Array, label: string) {
  assert.equal(eng.length, ref.length);
  let scale = 1e-6;
  for (const v of ref) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < ref.length; i++) {
    if (
      Number.isNaN(ref[i]) || Number.isNaN(eng[i]) || !Number.isFinite(ref[i]) || !Number.isFinite(eng[i])
    ) {
      assert.ok(
        Object.is(ref[i], eng[i]) || (Number.isNaN(ref[i]) && Number.isNaN(eng[i])),
        `${label}: logit ${i}: cpu ${ref[i]}, engine ${eng[i]}`,
      );
    } else {
      assert.ok(
        Math.abs(ref[i] - eng[i]) <= 1e-4 * scale,
        `${label}: logit ${i}: cpu ${ref[i]}, engine ${eng[i]}`,
      );
    }
  }
}

function setNamedWeight(
  model: tfl.LayersModel,
  suffix: string,
  index: number,
  edit: (v: Float32Array) => void,
) {
  const ws = model.weights.filter((w) => w.originalName.endsWith(suffix));
  const w = ws[index < 0 ? ws.length + index : index];
  const v = w.read().dataSync().slice() as Float32Array;
  edit(v);
  w.write(tf.tensor(v, w.shape as number[]));
}

Deno.test(
  {
    name: tname(
      "engine: a ResNet whose BN moving variance went negative predicts NaN logits exactly where cpu does",
    ),
    ignore,
  },
  async () => {
    await tf.setBackend("cpu");
    const model = buildModel("resnet8", { seed: 3, width: 8, bnEpsilon: 1e-3 });
    const n = 6;
    const x = new Float32Array(n * 32 * 32 * 3);
    const rng = makeRng("nanres");
    for (let i = 0; i < x.length; i++) x[i] = rng() * 2 - 1;
    const clean = await logitsBoth(model, x);
    assertSameLogits(clean.ref, clean.eng, "clean model");
    assert.ok(clean.ref.every(Number.isFinite), "the clean model's logits should be finite");
    for (const k of ["FusedBatchNorm", "Relu"]) {
      assert.ok(
        (clean.stats[k]?.native ?? 0) > 0,
        `${k} did not run natively: ${JSON.stringify(clean.stats)}`,
      );
    }
    assert.ok(
      (clean.stats.FusedConv2D?.native ?? 0) + (clean.stats.Conv2D?.native ?? 0) > 0,
      `no native convolution ran: ${JSON.stringify(clean.stats)}`,
    );

    // images holding NaN / +Inf / -Inf pixels: only their own logits may turn non-finite
    const xs = x.slice();
    xs[1 * 3072 + 500] = NaN;
    xs[3 * 3072 + 1234] = Infinity;
    xs[4 * 3072 + 77] = -Infinity;
    const px = await logitsBoth(model, xs);
    assertSameLogits(px.ref, px.eng, "NaN/Inf pixels");
    assert.ok(px.ref.some(Number.isNaN), "NaN pixels should give NaN logits on cpu");
    assert.ok(px.ref.slice(0, 10).every(Number.isFinite), "image 0 is clean and stays finite");

    // the paper's failure: noise pushes a moving variance below -eps, BN outputs NaN in that
    // channel, ReLU keeps it (tfjs, Keras, PyTorch) and every logit turns NaN
    for (const [which, index] of [["first BN", 0], ["last BN", -1]] as const) {
      const saved = model.getWeights().map((w) => w.clone());
      setNamedWeight(model, "moving_variance", index, (v) => {
        v[1] = -0.05;
      });
      const neg = await logitsBoth(model, x);
      assertSameLogits(neg.ref, neg.eng, `negative variance in the ${which}`);
      assert.ok(
        neg.ref.every(Number.isNaN),
        `cpu should predict NaN everywhere (negative variance in the ${which})`,
      );
      model.setWeights(saved);
      tf.dispose(saved);
    }
    model.dispose();
  },
);

Deno.test(
  {
    name: tname(
      "engine: a VGG (max pooling) on images with NaN/+Inf/-Inf pixels gives the cpu backend's logits",
    ),
    ignore,
  },
  async () => {
    await tf.setBackend("cpu");
    const model = buildModel("vgg11", { seed: 4, width: 8, bnEpsilon: 1e-3 });
    const n = 4;
    const x = new Float32Array(n * 32 * 32 * 3);
    const rng = makeRng("nanvgg");
    for (let i = 0; i < x.length; i++) x[i] = rng() * 2 - 1;
    x[1 * 3072 + 40] = NaN; // tfjs' max pooling never picks NaN: it may vanish at a pool
    for (let i = 0; i < 3072; i += 3) x[2 * 3072 + i] = -Infinity; // a whole channel of -Inf
    x[3 * 3072 + 2000] = Infinity;
    const r = await logitsBoth(model, x);
    assertSameLogits(r.ref, r.eng, "VGG with NaN/Inf pixels");
    assert.ok(
      (r.stats.MaxPool?.native ?? 0) > 0,
      `MaxPool did not run natively: ${JSON.stringify(r.stats.MaxPool)}`,
    );
    assert.ok(r.ref.some((v) => !Number.isFinite(v)), "some cpu logits should be non-finite");
    model.dispose();
  },
);
