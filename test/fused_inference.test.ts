// The sweep fast path (lib/models/fused.ts, lib/noise SweepOptions.fastPath):
// BN folded into the convs after noise, conv + bias + ReLU fused, checked
// against the unfused model (predictLogits) on the onednn engine and on the
// cpu backend: logits within a stated tolerance, NaN/Inf exactly where the
// unfused model has them, sweep rows compared, keys unchanged when off.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import { engineSkipReason, registerEngine, skipTagged } from "../lib/backend/engine/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import { compileFusedInference, foldConvBN, fusedPredictLogits } from "../lib/models/fused.ts";
import { noiseSweep, sweepKey } from "../lib/noise/sweep.ts";
import { makeRng } from "../lib/util/rng.ts";

const nat = registerEngine();
const skip = nat == null ? engineSkipReason() : null;
const backends = nat == null ? ["cpu"] : ["cpu", "onednn"];

/** Relative tolerance of fused vs unfused logits: |a - b| <= TOL * (1 + max |logit| of the batch). */
const TOL = 1e-4;

function images(n: number, seed: number): Float32Array {
  const r = makeRng(seed);
  const x = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 3;
  return x;
}

/** Give every BN layer non-trivial statistics and affine parameters (a trained model's are not 0/1). */
function randomizeBN(model: tfl.LayersModel, seed: number) {
  const r = makeRng(seed);
  for (const l of model.layers) {
    if (l.getClassName() !== "BatchNormalization") continue;
    for (const w of l.weights) {
      const kind = w.originalName.split("/").at(-1)!;
      const v = new Float32Array(w.shape[0]!).map(() =>
        kind === "moving_variance" ? 0.2 + r() * 2 : kind === "gamma" ? 0.5 + r() : (r() - 0.5) * 0.6
      );
      w.write(tf.tensor1d(v));
    }
  }
}

function setBN(model: tfl.LayersModel, layer: string, kind: string, channel: number, value: number) {
  const w = model.getLayer(layer).weights.find((v) => v.originalName.endsWith(kind))!;
  const v = (w.read().dataSync() as Float32Array).slice();
  v[channel] = value;
  w.write(tf.tensor1d(v));
}

function compare(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length);
  let max = 0;
  for (const v of b) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(b[i]) || !Number.isFinite(a[i])) {
      assert.ok(Object.is(a[i], b[i]), `${what}: element ${i} fused ${a[i]} vs unfused ${b[i]}`);
    } else {
      assert.ok(Math.abs(a[i] - b[i]) <= TOL * (1 + max), `${what}: element ${i} fused ${a[i]} vs ${b[i]}`);
    }
  }
}

Deno.test("foldConvBN: a clean fold, and unclean folds (NaN scale, overflow, underflow) refused", () => {
  const w = Float32Array.of(1, -2, 3, 4); // HWIO with oc = 2: channels alternate
  const bn = {
    gamma: Float32Array.of(2, 1),
    beta: Float32Array.of(0.5, 0),
    mean: Float32Array.of(1, 0),
    variance: Float32Array.of(4 - 1e-3, 1 - 1e-3),
    epsilon: 1e-3,
  };
  const f = foldConvBN(w, undefined, 2, bn)!;
  assert.deepEqual([...f.filter], [1, -2, 3, 4]);
  assert.deepEqual([...f.bias], [-0.5, 0]);
  assert.equal(foldConvBN(w, undefined, 2, { ...bn, variance: Float32Array.of(-1, 1) }), undefined); // NaN
  assert.equal(foldConvBN(w, undefined, 2, { ...bn, variance: Float32Array.of(-1e-3, 1) }), undefined); // Inf
  assert.equal(
    foldConvBN(Float32Array.of(1e30, 1, 1, 1), undefined, 2, { ...bn, gamma: Float32Array.of(1e10, 1) }),
    undefined,
  );
  assert.equal(
    foldConvBN(Float32Array.of(1e-30, 1, 1, 1), undefined, 2, { ...bn, gamma: Float32Array.of(1e-20, 1) }),
    undefined,
  );
});

for (const backend of backends) {
  for (const [name, bn] of [["resnet20", "all"], ["resnet20", "none"], ["vgg11", "all"]] as const) {
    Deno.test({
      name: skipTagged(
        `fused inference (${backend}): ${name} bn=${bn} matches the unfused model`,
        backend === "onednn" ? skip : null,
      ),
      ignore: backend === "onednn" && skip != null,
      fn: async () => {
        await tf.setBackend(backend);
        const model = buildModel(name, { bn, seed: 3 });
        randomizeBN(model, 5);
        const x = images(backend === "cpu" ? 4 : 40, 7);
        const plan = compileFusedInference(model);
        if (bn === "all") assert.ok(plan.stats.foldedBN > 0 && plan.stats.unfoldedBN.length === 0);
        assert.ok(plan.stats.fusedRelu > 0);
        plan.dispose();
        compare(await fusedPredictLogits(model, x, 16), await predictLogits(model, x, 16), `${name}/${bn}`);
        model.dispose();
      },
    });
  }

  Deno.test({
    name: skipTagged(
      `fused inference (${backend}): NaN from a negative noisy BN variance and Inf inputs as unfused`,
      backend === "onednn" ? skip : null,
    ),
    ignore: backend === "onednn" && skip != null,
    fn: async () => {
      await tf.setBackend(backend);
      const model = buildModel("resnet20", { bn: "all", seed: 3 });
      randomizeBN(model, 6);
      const x = images(6, 8);
      x[5 * 3072 + 100] = Infinity; // one image with an Inf pixel, one with NaN
      x[4 * 3072 + 7] = NaN;
      // a late BN channel with a negative variance: NaN must reach the logits as in the unfused model
      setBN(model, "bn19", "moving_variance", 3, -0.5);
      const plan = compileFusedInference(model);
      assert.deepEqual(plan.stats.unfoldedBN, ["bn19"]);
      plan.dispose();
      const fused = await fusedPredictLogits(model, x, 4);
      const ref = await predictLogits(model, x, 4);
      assert.ok(ref.some((v) => Number.isNaN(v)), "the reference has NaN rows");
      compare(fused, ref, "negative variance");
      // a variance of exactly -eps: 1/sqrt(0) = Inf scale, not folded either
      setBN(model, "bn19", "moving_variance", 3, 1);
      setBN(model, "bn2", "moving_variance", 0, -1e-5);
      compare(await fusedPredictLogits(model, x, 4), await predictLogits(model, x, 4), "variance = -eps");
      model.dispose();
    },
  });
}

Deno.test({
  name: skipTagged(
    "fast-path sweep: same rows as the unfused sweep on a small model; key unchanged when off",
    skip,
  ),
  ignore: skip != null,
  fn: async () => {
    await tf.setBackend("onednn");
    const model = buildModel("resnet20", { bn: "all", seed: 1 });
    randomizeBN(model, 9);
    const x = images(200, 4);
    const labels = new Uint8Array(200).map((_, i) => i % 10);
    const opts = {
      etas: [0.05, 0.3],
      draws: 2,
      seed: 1,
      modelId: "m",
      spec: { targets: ["all" as const] },
      partial: false as const,
      batchSize: 100,
    };
    const slow = await noiseSweep(model, { x, labels }, opts);
    const fast = await noiseSweep(model, { x, labels }, { ...opts, fastPath: true });
    // float rounding may move an image whose two largest logits are within ~1e-5: at most one per draw here
    for (let i = 0; i < slow.rows.length; i++) {
      assert.ok(Math.abs(slow.rows[i].accuracy - fast.rows[i].accuracy) <= 1 / 200, `row ${i}`);
      assert.equal(slow.rows[i].nonFiniteShare, fast.rows[i].nonFiniteShare, `row ${i} non-finite share`);
    }
    const base = { modelId: "m", data: { dataHash: "0" }, etas: [0.1], draws: 1, seed: 0, backend: "cpu" };
    assert.deepEqual(sweepKey(base), sweepKey({ ...base, fastPath: false }));
    assert.notDeepEqual(sweepKey(base), sweepKey({ ...base, fastPath: true }));
    model.dispose();
  },
});
