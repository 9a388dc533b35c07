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
import { images, randomizeBN } from "./model_helpers.ts";

const nat = registerEngine();
const skip = nat == null ? engineSkipReason() : null;
const backends = nat == null ? ["cpu"] : ["cpu", "onednn"];

/** Relative tolerance of fused vs unfused logits: |a - b| <= TOL * (1 + max |logit| of the batch). */
const TOL = 1e-4;

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
    // the results say how the draws were evaluated
    assert.equal(slow.provenance.evaluation?.fastPath, "off");
    assert.equal(slow.provenance.evaluation?.label, "unfused");
    assert.equal(fast.provenance.evaluation?.fastPath, "fp32");
    assert.match(fast.provenance.evaluation?.label ?? "", /^fused fp32 .*native plans/);
    assert.equal(fast.provenance.evaluation?.arithmetic, undefined);
    const base = { modelId: "m", data: { dataHash: "0" }, etas: [0.1], draws: 1, seed: 0, backend: "cpu" };
    assert.deepEqual(sweepKey(base), sweepKey({ ...base, fastPath: false }));
    assert.notDeepEqual(sweepKey(base), sweepKey({ ...base, fastPath: true }));
    model.dispose();
  },
});

Deno.test({
  name: skipTagged(
    "bf16 forward convolution vs fp32: within 2^-7 of sum |x||w| per output; NaN/Inf as fp32",
    skip,
  ),
  ignore: skip != null,
  fn: async () => {
    await tf.setBackend("onednn");
    const { setConvPrecision } = await import("../lib/backend/engine/precision.ts");
    if (setConvPrecision("bf16") !== "bf16") {
      setConvPrecision("fp32");
      console.error("[test] no bf16 on this CPU: the fallback to fp32 is what runs");
      return;
    }
    setConvPrecision("fp32");
    const r = makeRng(11);
    for (
      const [c, oc, hw, stride, relu] of [[3, 16, 8, 1, false], [16, 32, 8, 2, true], [
        32,
        32,
        4,
        1,
        true,
      ]] as const
    ) {
      const xv = new Float32Array(2 * hw * hw * c).map(() => (r() - 0.5) * 4);
      const wv = new Float32Array(9 * c * oc).map(() => (r() - 0.5) * 0.5);
      const bv = new Float32Array(oc).map(() => r() - 0.5);
      xv[5] = NaN;
      xv[hw * hw * c + 17] = Infinity;
      const run = (
        prec: "fp32" | "bf16",
        x: Float32Array,
        w: Float32Array,
        b: Float32Array | null,
        act: boolean,
      ) => {
        setConvPrecision(prec);
        try {
          return tf.tidy(() =>
            tf.fused.conv2d({
              x: tf.tensor4d(x, [2, hw, hw, c]),
              filter: tf.tensor4d(w, [3, 3, c, oc]),
              strides: stride,
              pad: "same",
              bias: b ? tf.tensor1d(b) : undefined,
              activation: act ? "relu" : "linear",
            }).dataSync() as Float32Array
          );
        } finally {
          setConvPrecision("fp32");
        }
      };
      const ref = run("fp32", xv, wv, bv, relu);
      const got = run("bf16", xv, wv, bv, relu);
      const bound = run("fp32", xv.map(Math.abs), wv.map(Math.abs), null, false); // sum |x||w| per output
      for (let i = 0; i < ref.length; i++) {
        if (!Number.isFinite(ref[i]) || !Number.isFinite(got[i])) {
          assert.ok(Object.is(ref[i], got[i]), `c=${c}: at ${i} fp32 ${ref[i]}, bf16 ${got[i]}`);
        } else {
          assert.ok(
            Math.abs(ref[i] - got[i]) <= 2 ** -7 * bound[i] + 1e-6,
            `c=${c}: at ${i} fp32 ${ref[i]}, bf16 ${got[i]}`,
          );
        }
      }
      assert.ok(
        ref.some((v) => Number.isNaN(v)) && got.some((v, i) => v !== ref[i]),
        "NaN reached, bf16 differs",
      );
    }
  },
});

Deno.test({
  name: skipTagged(
    "bf16 fast-path sweep: rows within 2 images per draw of the unfused sweep; key records bf16",
    skip,
  ),
  ignore: skip != null,
  fn: async () => {
    await tf.setBackend("onednn");
    const { setConvPrecision } = await import("../lib/backend/engine/precision.ts");
    const has = setConvPrecision("bf16") === "bf16";
    setConvPrecision("fp32");
    const model = buildModel("resnet20", { bn: "all", seed: 1 });
    randomizeBN(model, 9);
    const x = images(200, 4);
    const labels = new Uint8Array(200).map((_, i) => i % 10);
    const opts = { etas: [0.05], draws: 2, seed: 1, modelId: "m", partial: false as const, batchSize: 100 };
    const slow = await noiseSweep(model, { x, labels }, opts);
    const fast = await noiseSweep(model, { x, labels }, { ...opts, fastPath: "bf16" });
    for (let i = 0; i < slow.rows.length; i++) {
      assert.ok(Math.abs(slow.rows[i].accuracy - fast.rows[i].accuracy) <= 2 / 200, `row ${i}`);
    }
    const base = { modelId: "m", data: { dataHash: "0" }, etas: [0.1], draws: 1, seed: 0, backend: "cpu" };
    assert.equal(sweepKey({ ...base, fastPath: "bf16" }).fastPath, "bf16");
    if (!has) console.error("[test] no bf16 on this CPU: the sweep ran the fp32 fallback");
    model.dispose();
  },
});

Deno.test({
  name: skipTagged(
    "bf16 training convolutions: dx and dw within 2^-7 of their |.| bounds of fp32; inference scope keeps fp32 gradients",
    skip,
  ),
  ignore: skip != null,
  fn: async () => {
    await tf.setBackend("onednn");
    const { setConvPrecision } = await import("../lib/backend/engine/precision.ts");
    if (setConvPrecision("bf16", "training") !== "bf16") {
      setConvPrecision("fp32");
      console.error("[test] no bf16 on this CPU: the fallback to fp32 is what runs");
      return;
    }
    setConvPrecision("fp32");
    const r = makeRng(12);
    for (const [c, oc, hw, stride] of [[3, 16, 8, 1], [16, 32, 8, 2], [32, 32, 4, 1]] as const) {
      const n = 2;
      const ohw = Math.ceil(hw / stride);
      const xv = new Float32Array(n * hw * hw * c).map(() => (r() - 0.5) * 4);
      const wv = new Float32Array(9 * c * oc).map(() => (r() - 0.5) * 0.5);
      const dyv = new Float32Array(n * ohw * ohw * oc).map(() => r() - 0.5);
      /** [y, dx, dw] of conv2d(x, w) with upstream gradient dy, under a precision and scope. */
      const run = (
        prec: "fp32" | "bf16",
        scope: "inference" | "training",
        x: Float32Array,
        w: Float32Array,
        dy: Float32Array,
      ) => {
        setConvPrecision(prec, scope);
        try {
          return tf.tidy(() => {
            const xt = tf.tensor4d(x, [n, hw, hw, c]), wt = tf.tensor4d(w, [3, 3, c, oc]);
            const dyt = tf.tensor4d(dy, [n, ohw, ohw, oc]);
            const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(a, b, stride, "same");
            const [dx, dw] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([xt, wt], dyt);
            return [f(xt, wt), dx, dw].map((t) => t.dataSync() as Float32Array);
          });
        } finally {
          setConvPrecision("fp32");
        }
      };
      const ref = run("fp32", "training", xv, wv, dyv);
      const got = run("bf16", "training", xv, wv, dyv);
      const bound = run("fp32", "training", xv.map(Math.abs), wv.map(Math.abs), dyv.map(Math.abs));
      ["y", "dx", "dw"].forEach((what, k) => {
        let differs = false;
        for (let i = 0; i < ref[k].length; i++) {
          if (got[k][i] !== ref[k][i]) differs = true;
          assert.ok(
            Math.abs(ref[k][i] - got[k][i]) <= 2 ** -7 * bound[k][i] + 1e-6,
            `c=${c} ${what}: at ${i} fp32 ${ref[k][i]}, bf16 ${got[k][i]} (bound ${bound[k][i]})`,
          );
        }
        assert.ok(differs, `c=${c} ${what}: bf16 training gave fp32's numbers bitwise (not in bf16?)`);
      });
      // "inference" scope: bf16 forward, gradients exactly fp32's
      const inf = run("bf16", "inference", xv, wv, dyv);
      assert.ok(inf[0].some((v, i) => v !== ref[0][i]), `c=${c}: inference scope forward not in bf16`);
      for (const k of [1, 2]) {
        assert.ok(
          inf[k].every((v, i) => Object.is(v, ref[k][i])),
          `c=${c}: inference scope changed a gradient`,
        );
      }
    }
  },
});
