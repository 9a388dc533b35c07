// Native inference plans (lib/models/native_plan.ts over lib/backend/engine plan.ts): a fused
// plan's whole forward pass in one call into the engine's shim. fp32 plans must give the same bits
// as the layer-by-layer fused path (which test/fused_inference.test.ts checks against the unfused
// model); bf16 plans (bf16 activations between layers, residual add fused as a sum post-op) must
// stay within bf16 rounding of it; anything the native ops cannot do exactly falls back.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import { engineSkipReason, registerEngine, setConvPrecision, skipTagged } from "../lib/backend/engine/mod.ts";
import { BF16_SKIP_REASON } from "../lib/backend/engine/expect.ts";
import { bf16Available } from "../lib/backend/engine/precision.ts";
import { createNativePlan, PLAN_OP, PLAN_OP_INTS } from "../lib/backend/engine/plan.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import { compileFusedInference, fusedPredictLogits } from "../lib/models/fused.ts";
import { images, randomizeBN } from "./model_helpers.ts";

const nat = registerEngine();
const skip = nat == null ? engineSkipReason() : null;
const bf16Skip = skip ??
  (bf16Available() ? null : BF16_SKIP_REASON);

/**
 * A native-plan test: skipped (tagged) for `reason`, run on the onednn engine with fp32
 * convolutions to start with.
 */
function planTest(name: string, reason: string | null, fn: () => Promise<void> | void) {
  Deno.test({
    name: skipTagged(name, reason),
    ignore: reason != null,
    fn: async () => {
      await tf.setBackend("onednn");
      setConvPrecision("fp32");
      await fn();
    },
  });
}

/**
 * Asserts `got` within bf16 rounding of `ref`: bf16 keeps 8 significant bits, and a few roundings per
 * layer stay far below 2^-5 of the largest logit, while a misplaced pad, shortcut or bias changes logits
 * by O(scale). `exact`: also bitwise equal (fp32 plans). Returns how many logits are bitwise equal.
 */
function assertNear(got: Float32Array, ref: Float32Array, what: string, exact = false): number {
  let max = 0, diff = 0, same = 0;
  for (let i = 0; i < ref.length; i++) {
    max = Math.max(max, Math.abs(ref[i]));
    diff = Math.max(diff, Math.abs(got[i] - ref[i]));
    if (Object.is(got[i], ref[i])) same++;
    else if (exact) assert.fail(`${what}: logit ${i} native ${got[i]} vs ${ref[i]}`);
  }
  assert.ok(diff <= 2 ** -5 * max + 1e-6, `${what}: max |native - layer-by-layer| ${diff} at scale ${max}`);
  return same;
}

/** Logits of the layer-by-layer fused path (tfjs kernels) on n images. */
function layerByLayer(
  plan: ReturnType<typeof compileFusedInference>,
  x: Float32Array,
  n: number,
): Float32Array {
  const t = tf.tensor4d(x, [n, 32, 32, 3]);
  const y = plan.run(t);
  const out = y.dataSync() as Float32Array;
  t.dispose();
  y.dispose();
  return out;
}

const MODELS = [
  ["resnet20", { bn: "all" }],
  ["resnet20", { bn: "none" }],
  ["resnet20", { bn: "all", shortcut: "projection" }],
  ["vgg11", { bn: "all" }],
] as const;

for (const [name, opts] of MODELS) {
  const label = `${name} ${JSON.stringify(opts)}`;
  planTest(
    `native plan fp32: ${label} gives the layer-by-layer fused path's bits, at two batch sizes (one over a chunk)`,
    skip,
    async () => {
      const model = buildModel(name, { ...opts, seed: 3 });
      randomizeBN(model, 5);
      const plan = compileFusedInference(model);
      try {
        assert.ok(plan.native, `no native plan: ${plan.nativeSkipReason}`);
        assert.equal(plan.native.precision, "fp32");
        // 70 > the default chunk of 64 images (nl_plan_run runs a batch in chunks); 500, a sweep's
        // batch, for ResNet-20 + BN
        for (
          const n of name === "resnet20" && opts.bn === "all" && !("shortcut" in opts)
            ? [500, 70, 5]
            : [70, 5]
        ) {
          const x = images(n, 7 + n);
          const out = new Float32Array(n * 10);
          assert.equal(plan.runNative(x, n, out), true);
          const ref = layerByLayer(plan, x, n);
          for (let i = 0; i < ref.length; i++) {
            assert.ok(Object.is(out[i], ref[i]), `${label} n=${n}: logit ${i} native ${out[i]} vs ${ref[i]}`);
          }
        }
      } finally {
        plan.dispose();
        model.dispose();
      }
    },
  );

  planTest(
    `native plan bf16: ${label} within bf16 rounding of the layer-by-layer bf16 path, batch-independent`,
    bf16Skip,
    async () => {
      const model = buildModel(name, { ...opts, seed: 3 });
      randomizeBN(model, 5);
      const n = 16;
      const x = images(n, 11);
      setConvPrecision("bf16");
      const plan = compileFusedInference(model);
      try {
        assert.equal(plan.native?.precision, "bf16", `${plan.nativeSkipReason}`);
        const out = new Float32Array(n * 10);
        assert.equal(plan.runNative(x, n, out), true);
        const same = assertNear(out, layerByLayer(plan, x, n), label);
        assert.ok(
          same < out.length,
          `${label}: bitwise equal to the per-layer path — bf16 activations did not run`,
        );
        // an image's logits do not depend on the batch it is in (a run is split into chunks of 64)
        const m = 70, xm = images(m, 12), whole = new Float32Array(m * 10), parts = new Float32Array(m * 10);
        assert.equal(plan.runNative(xm, m, whole), true);
        for (let s = 0; s < m; s += 5) {
          assert.equal(
            plan.runNative(xm.subarray(s * 3072, (s + 5) * 3072), 5, parts.subarray(s * 10, (s + 5) * 10)),
            true,
          );
        }
        for (let i = 0; i < whole.length; i++) {
          assert.ok(Object.is(whole[i], parts[i]), `${label}: logit ${i} by batch`);
        }
      } finally {
        setConvPrecision("fp32");
        plan.dispose();
        model.dispose();
      }
    },
  );
}

planTest(
  "native plan: a non-finite input falls back to the layer-by-layer path for that batch",
  skip,
  async () => {
    const model = buildModel("resnet20", { bn: "all", seed: 3 });
    randomizeBN(model, 6);
    const x = images(8, 9);
    x[2 * 3072 + 50] = NaN; // batch 0 (images 0-3) has a NaN pixel, batch 1 (4-7) an Inf
    x[6 * 3072 + 9] = Infinity;
    const plan = compileFusedInference(model);
    try {
      assert.ok(plan.native);
      assert.equal(plan.runNative(x.subarray(0, 4 * 3072), 4, new Float32Array(40)), false);
      assert.equal(plan.runNative(x.subarray(4 * 3072), 4, new Float32Array(40)), false);
      const ref = layerByLayer(plan, x, 8);
      assert.ok(ref.some(Number.isNaN), "the layer-by-layer path keeps NaN");
      const got = await fusedPredictLogits(model, x, 4);
      for (let i = 0; i < ref.length; i++) {
        assert.ok(Object.is(got[i], ref[i]), `logit ${i}: ${got[i]} vs ${ref[i]}`);
      }
    } finally {
      plan.dispose();
      model.dispose();
    }
  },
);

planTest(
  "native plan: finite inputs whose partial sums could overflow run layer by layer, per image, with the unfused model's NaN",
  skip,
  async () => {
    const model = buildModel("resnet20", { bn: "none", seed: 3 });
    // conv1's first output channel: +1e38 on input channel 0 and -1e38 on input channel 2 of one tap;
    // a pixel of (10, ·, 10) gives products of +1e39 and -1e39: +-Inf or NaN before the ReLU, depending
    // on how the kernel accumulates (FMAs keep the first infinity; bf16 dot products that round each
    // product give NaN). Either way the unfused model ends in NaN logits, and so must the fused path:
    // the native plan's bound refuses such a batch, and only the images that need it run layer by
    // layer. Pixels of 0.01 stay far below the bound.
    const k = model.getLayer("conv1").weights[0];
    const v = (k.read().dataSync() as Float32Array).slice();
    const oc = k.shape[3]!;
    v[0 * oc] = 1e38; // (kh 0, kw 0, ic 0)
    v[2 * oc] = -1e38; // (kh 0, kw 0, ic 2)
    k.write(tf.tensor(v, k.shape as number[]));
    const n = 6;
    const x = new Float32Array(n * 3072).fill(0.01);
    for (let i = 0; i < n; i += 2) x[(i * 1024 + 500) * 3] = x[(i * 1024 + 500) * 3 + 2] = 10; // even images
    for (const prec of ["fp32", "bf16"] as const) {
      if (prec === "bf16" && bf16Skip) continue;
      setConvPrecision(prec);
      try {
        const ref = await predictLogits(model, x, n);
        for (let i = 0; i < n; i++) {
          const row = ref.subarray(i * 10, (i + 1) * 10);
          assert.equal(
            row.some(Number.isNaN),
            i % 2 === 0,
            `${prec} image ${i}: the unfused model's NaN pattern`,
          );
        }
        const plan = compileFusedInference(model);
        try {
          assert.equal(plan.native?.precision, prec);
          assert.equal(
            plan.runNative(x, n, new Float32Array(n * 10)),
            false,
            `${prec}: the bound refuses the batch`,
          );
          assert.equal(
            plan.runNative(x.subarray(3072, 2 * 3072), 1, new Float32Array(10)),
            true,
            "image 1 alone",
          );
        } finally {
          plan.dispose();
        }
        const got = await fusedPredictLogits(model, x, n);
        for (let i = 0; i < n; i++) {
          const row = got.subarray(i * 10, (i + 1) * 10);
          assert.equal(
            row.some(Number.isNaN),
            i % 2 === 0,
            `${prec} image ${i}: NaN where the unfused model has it`,
          );
          if (i % 2) {
            for (let c = 0; c < 10; c++) {
              assert.ok(
                Math.abs(row[c] - ref[i * 10 + c]) <= 1e-3 * (1 + Math.abs(ref[i * 10 + c])),
                `${prec} ${i}`,
              );
            }
          }
        }
      } finally {
        setConvPrecision("fp32");
      }
    }
    model.dispose();
  },
);

planTest(
  "native plan: ReLU and Add on [N, K] values (after a Dense) in fp32 and bf16 plans",
  skip,
  async () => {
    const input = tfl.input({ shape: [32, 32, 3] });
    const h = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", activation: "relu" }).apply(
      input,
    );
    const f = tfl.layers.flatten().apply(tfl.layers.maxPooling2d({ poolSize: 4 }).apply(h));
    const d1 = tfl.layers.dense({ units: 12 }).apply(f) as tfl.SymbolicTensor;
    const d2 = tfl.layers.dense({ units: 12 }).apply(f) as tfl.SymbolicTensor;
    const r = tfl.layers.activation({ activation: "relu" }).apply(tfl.layers.add().apply([d1, d2]));
    const out = tfl.layers.dense({ units: 10 }).apply(r) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const n = 9, x = images(n, 4);
    for (const prec of ["fp32", "bf16"] as const) {
      if (prec === "bf16" && bf16Skip) continue;
      setConvPrecision(prec);
      const plan = compileFusedInference(model);
      try {
        assert.equal(plan.native?.precision, prec, `${plan.nativeSkipReason}`);
        const got = new Float32Array(n * 10);
        assert.equal(plan.runNative(x, n, got), true);
        assertNear(got, layerByLayer(plan, x, n), prec, prec === "fp32");
      } finally {
        setConvPrecision("fp32");
        plan.dispose();
      }
    }
    model.dispose();
  },
);

planTest(
  "native plan: refused (layer by layer instead) for an infinite weight, an unknown layer, cpu",
  skip,
  async () => {
    const model = buildModel("resnet20", { bn: "none", seed: 3 });
    const k = model.getLayer("conv5").weights[0];
    const v = (k.read().dataSync() as Float32Array).slice();
    v[3] = Infinity;
    k.write(tf.tensor(v, k.shape as number[]));
    let plan = compileFusedInference(model);
    assert.equal(plan.native, null);
    assert.match(plan.nativeSkipReason ?? "", /not finite/);
    assert.equal(plan.runNative(images(1, 1), 1, new Float32Array(10)), false);
    plan.dispose();

    const input = tfl.input({ shape: [32, 32, 3] });
    const h = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "tanh" }).apply(
      input,
    );
    const out = tfl.layers.dense({ units: 10 }).apply(tfl.layers.flatten().apply(h)) as tfl.SymbolicTensor;
    const odd = tfl.model({ inputs: input, outputs: out });
    plan = compileFusedInference(odd);
    assert.equal(plan.native, null);
    assert.match(plan.nativeSkipReason ?? "", /tanh/);
    plan.dispose();

    await tf.setBackend("cpu");
    plan = compileFusedInference(model);
    assert.equal(plan.native, null);
    assert.match(plan.nativeSkipReason ?? "", /backend cpu/);
    plan.dispose();
    model.dispose();
    odd.dispose();
  },
);

planTest(
  "native plan (shim): malformed programs are refused with an error; a disposed plan throws",
  skip,
  async () => {
    const rec = new Int32Array(PLAN_OP_INTS);
    rec.set([PLAN_OP.relu, 0, -1, 0, 4]); // writes the input slot
    assert.throws(
      () => createNativePlan(rec, Int32Array.of(1, 4, 0, 4), new Float32Array(0), "fp32"),
      /input slot/,
    );
    rec.set([PLAN_OP.relu, 0, -1, 7, 4]); // no slot 7
    assert.throws(
      () => createNativePlan(rec, Int32Array.of(1, 4, 0, 4), new Float32Array(0), "fp32"),
      /slot/,
    );
    rec.set([PLAN_OP.relu, 0, -1, 1, 4]);
    const plan = createNativePlan(rec, Int32Array.of(1, 4, 0, 4), new Float32Array(0), "fp32")!;
    const out = new Float32Array(8);
    assert.equal(plan.run(Float32Array.of(-1, 2, NaN, -0, 3, -4, 5, Infinity), 2, out), true);
    assert.deepEqual([...out], [0, 2, NaN, 0, 3, 0, 5, Infinity]); // tfjs' relu: NaN kept, -0 -> +0
    assert.ok(Object.is(out[3], 0));
    plan.dispose();
    assert.throws(() => plan.run(new Float32Array(4), 1, new Float32Array(4)), /after dispose/);
  },
);
