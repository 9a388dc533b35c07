/**
 * Training tfjs-layers models on the wasm backend (lib/backend/wasm/mod.ts):
 * - a tiny conv+BN+relu+maxpool/avgpool+add+dense model: variableGrads of a
 *   softmax cross-entropy loss on wasm equal those on the `cpu` backend;
 * - a CIFAR ResNet-20 (option-A shortcuts) trains on wasm with momentum SGD
 *   (loss falls on a fixed batch) and the step time is printed (img/s).
 * Never skipped: the wasm backend ships with the npm modules and Deno has
 * WebAssembly SIMD, so a backend that does not load fails every test here.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";
import { initWasmBackend, wasmBackendInfo, wasmInitError } from "../lib/backend/wasm/mod.ts";

const wasmOk = await initWasmBackend();
if (!wasmOk) console.error(`[wasm] backend failed to load: ${wasmInitError()}`);

/** Deno.test for this file: never skipped; fails first thing when the wasm backend did not load. */
function wasmTest(def: { name: string; fn: () => void | Promise<void> }) {
  Deno.test({
    name: def.name,
    fn: async () => {
      assert.ok(wasmOk, `the wasm backend failed to load: ${wasmInitError()}`);
      await def.fn();
    },
  });
}
await tf.setBackend("cpu"); // one global engine: keep cpu between tests

async function onBackend<T>(backend: string, fn: () => T | Promise<T>): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return await fn();
  } finally {
    await tf.setBackend(prev);
  }
}

function randn(seed: string, n: number, scale = 1): Float32Array {
  const a = gaussianFill(makeRng(seed), new Float32Array(n));
  for (let i = 0; i < a.length; i++) a[i] *= scale;
  return a;
}

/** Deterministic weights for every variable of a model (no dependence on tfjs's own RNG). */
function setWeights(model: tfl.LayersModel, seed: string): void {
  const ws = model.getWeights().map((w, i) => {
    const name = model.weights[i].name;
    const n = w.size;
    if (/moving_variance/.test(name)) return tf.ones(w.shape);
    if (/moving_mean|beta|bias/.test(name)) return tf.tensor(randn(`${seed}:${i}`, n, 0.1), w.shape);
    if (/gamma/.test(name)) return tf.add(1, tf.tensor(randn(`${seed}:${i}`, n, 0.1), w.shape));
    const fanIn = w.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    return tf.tensor(randn(`${seed}:${i}`, n, Math.sqrt(2 / fanIn)), w.shape);
  });
  model.setWeights(ws);
  tf.dispose(ws);
}

/**
 * Option-A shortcut: subsample by 2 and zero-pad channels. Subsampling uses a
 * 1x1 average pool with stride 2 (tfjs-core has no StridedSlice gradient).
 */
class ShortcutA extends tfl.layers.Layer {
  static className = "TestShortcutA";
  constructor(private outC: number) {
    super({});
  }
  override computeOutputShape(s: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const t = s as tfl.Shape;
    return [t[0], Math.ceil((t[1] as number) / 2), Math.ceil((t[2] as number) / 2), this.outC];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const c = x.shape[3];
      const s = tf.avgPool(x, 1, 2, "valid");
      const p = Math.floor((this.outC - c) / 2);
      return tf.pad(s, [[0, 0], [0, 0], [0, 0], [p, this.outC - c - p]]);
    });
  }
}

function resBlock(x: tfl.SymbolicTensor, c: number, stride: number, optionA: boolean): tfl.SymbolicTensor {
  let y = tfl.layers.conv2d({ filters: c, kernelSize: 3, strides: stride, padding: "same", useBias: false })
    .apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.activation({ activation: "relu" }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: c, kernelSize: 3, padding: "same", useBias: false }).apply(
    y,
  ) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
  let sc = x;
  if (stride !== 1 || x.shape[3] !== c) {
    sc = optionA ? new ShortcutA(c).apply(x) as tfl.SymbolicTensor : tfl.layers.batchNormalization().apply(
      tfl.layers.conv2d({ filters: c, kernelSize: 1, strides: stride, useBias: false }).apply(x),
    ) as tfl.SymbolicTensor;
  }
  const s = tfl.layers.add().apply([y, sc]) as tfl.SymbolicTensor;
  return tfl.layers.activation({ activation: "relu" }).apply(s) as tfl.SymbolicTensor;
}

/** Tiny model with every layer kind the project's ResNet/VGG models use. */
function tinyModel(): tfl.LayersModel {
  const inp = tfl.input({ shape: [16, 16, 3] }); // 16 → 8 → 4 → valid conv 2 → maxpool 1
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", useBias: true }).apply(inp);
  x = tfl.layers.batchNormalization().apply(x);
  x = tfl.layers.reLU().apply(x);
  x = resBlock(x as tfl.SymbolicTensor, 8, 1, true);
  x = resBlock(x, 16, 2, true); // option A: avgPool 1x1/2 + channel pad
  x = resBlock(x, 24, 2, false); // option B: 1x1 conv stride 2 + BN
  x = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: "valid" }).apply(x); // valid, bias
  x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 1 }).apply(x);
  x = tfl.layers.averagePooling2d({ poolSize: 1, strides: 1 }).apply(x);
  x = tfl.layers.globalAveragePooling2d({}).apply(x);
  x = tfl.layers.dense({ units: 10 }).apply(x);
  return tfl.model({ inputs: inp, outputs: x as tfl.SymbolicTensor });
}

function resnet20(): tfl.LayersModel {
  const inp = tfl.input({ shape: [32, 32, 3] });
  let x = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: "same", useBias: false })
    .apply(inp) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.activation({ activation: "relu" }).apply(x) as tfl.SymbolicTensor;
  for (const [c, s0] of [[16, 1], [32, 2], [64, 2]]) {
    for (let i = 0; i < 3; i++) x = resBlock(x, c, i === 0 ? s0 : 1, true);
  }
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 10 }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: x });
}

function batch(seed: string, n: number, hw: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = tf.tensor4d(randn(`${seed}:x`, n * hw * hw * 3), [n, hw, hw, 3]);
  const rng = makeRng(`${seed}:y`);
  const labels = Array.from({ length: n }, () => Math.floor(rng() * 10));
  const y = tf.oneHot(tf.tensor1d(labels, "int32"), 10) as tf.Tensor2D;
  return { x, y };
}

function lossOf(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
}

wasmTest({
  name: "wasm: tiny conv/BN/relu/pool/add/dense model — variableGrads equal cpu's",
  async fn() {
    await tf.setBackend("cpu");
    const model = tinyModel();
    setWeights(model, "tiny");
    const { x, y } = batch("tiny", 6, 16);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grads = (b: string) =>
      onBackend(b, () => {
        const { value, grads } = tf.variableGrads(() => lossOf(model, x, y), vars);
        const out = {
          loss: value.dataSync()[0],
          g: vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice()),
        };
        value.dispose();
        tf.dispose(Object.values(grads));
        return out;
      });
    const c = await grads("cpu");
    const w = await grads("wasm");
    assert.ok(Math.abs(c.loss - w.loss) <= 1e-5 * Math.abs(c.loss), `loss cpu ${c.loss} wasm ${w.loss}`);
    assert.equal(vars.length, 29); // 6 convs w/o bias, 2 with, 8 BN (gamma, beta), dense
    const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const globalMax = Math.max(...c.g.map(maxAbs));
    vars.forEach((v, i) => {
      let d = 0;
      for (let j = 0; j < c.g[i].length; j++) d = Math.max(d, Math.abs(c.g[i][j] - w.g[i][j]));
      const m = maxAbs(c.g[i]);
      if (i === 1) {
        // The first conv's bias feeds a BatchNorm, so its true gradient is 0:
        // both backends must give rounding noise only.
        assert.ok(m < 1e-5 * globalMax && maxAbs(w.g[i]) < 1e-5 * globalMax, `${v.name}: should be ~0`);
        return;
      }
      assert.ok(m > 1e-3 * globalMax, `${v.name}: (near) zero gradient on cpu`);
      assert.ok(d <= 1e-4 * m, `${v.name}: gradient relative error ${d / m}`);
    });
    tf.dispose([x, y]);
    model.dispose();
  },
});

wasmTest({
  name: "wasm: ResNet-20 trains with momentum SGD at batch 32 (loss falls on a fixed batch; img/s printed)",
  async fn() {
    await onBackend("wasm", async () => {
      const model = resnet20();
      setWeights(model, "r20");
      const { x, y } = batch("r20", 32, 32);
      const opt = tf.train.momentum(0.05, 0.9);
      const losses: number[] = [];
      const ms: number[] = [];
      const tensors0 = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        const loss = opt.minimize(() => lossOf(model, x, y), true)!;
        losses.push((await loss.data())[0]);
        ms.push(performance.now() - t0);
        loss.dispose();
        if (i === 0) assert.ok(tf.memory().numTensors > tensors0); // optimizer slots created
      }
      const steady = tf.memory().numTensors;
      const l = opt.minimize(() => lossOf(model, x, y), true)!;
      losses.push((await l.data())[0]);
      l.dispose();
      assert.equal(tf.memory().numTensors, steady, "tensors leak per training step");
      assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
      assert.ok(losses[4] < 0.7 * losses[0], `loss did not fall: ${losses}`);
      const best = Math.min(...ms.slice(1));
      console.log(
        `ResNet-20 train step, batch 32, ${wasmBackendInfo()?.detail}: ` +
          `${ms.map((v) => v.toFixed(0)).join("/")} ms → ${
            (32000 / best).toFixed(1)
          } img/s (best of 3 warm steps)`,
      );
      opt.dispose();
      tf.dispose([x, y]);
      model.dispose();
    });
  },
});
