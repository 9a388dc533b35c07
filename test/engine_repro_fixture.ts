// Helper process for test/engine_model.test.ts: a few training steps of a small
// conv/BN/relu model on the noiselab engine; prints a hash of the final weights.
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../lib/backend/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

await initBackend("onednn");
const init = (k: number) => tfl.initializers.heNormal({ seed: 100 + k });
const inp = tfl.input({ shape: [16, 16, 8] });
let x = tfl.layers.conv2d({
  filters: 32,
  kernelSize: 3,
  padding: "same",
  useBias: false,
  kernelInitializer: init(1),
})
  .apply(inp) as tfl.SymbolicTensor;
x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
x = tfl.layers.activation({ activation: "relu" }).apply(x) as tfl.SymbolicTensor;
x = tfl.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: "same", kernelInitializer: init(2) })
  .apply(x) as tfl.SymbolicTensor;
x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
const out = tfl.layers.dense({ units: 10, kernelInitializer: init(3) }).apply(x) as tfl.SymbolicTensor;
const model = tfl.model({ inputs: inp, outputs: out });
const rng = makeRng("repro");
const n = 64;
const xs = new Float32Array(n * 16 * 16 * 8).map(() => rng() * 2 - 1);
const ys = new Int32Array(n).map(() => Math.floor(rng() * 10));
const opt = tf.train.momentum(0.05, 0.9);
for (let s = 0; s < 3; s++) {
  tf.tidy(() => {
    const xb = tf.tensor4d(xs, [n, 16, 16, 8]);
    const yb = tf.oneHot(tf.tensor1d(ys, "int32"), 10);
    opt.minimize(() =>
      tf.losses.softmaxCrossEntropy(yb, model.apply(xb, { training: true }) as tf.Tensor) as tf.Scalar
    );
  });
}
const all = model.getWeights().map((w) => new Uint8Array(w.dataSync().slice().buffer));
const bytes = new Uint8Array(all.reduce((a, b) => a + b.length, 0));
let off = 0;
for (const b of all) {
  bytes.set(b, off);
  off += b.length;
}
const digest = await crypto.subtle.digest("SHA-256", bytes);
console.log(Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(""));
