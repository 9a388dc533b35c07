// The benchmark's "% of peak" inputs (tools/bench.ts): FLOPs per image counted from a
// tfjs-layers model's layers (lib/models `modelFlops`) against hand computations, and
// the engine shim's measured peak (`nl_peak_gflops`, lib/backend/engine `measurePeakGflops`).
import assert from "node:assert/strict";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import { buildModel, modelFlops } from "../lib/models/mod.ts";
import { engineSkipReason, loadNative, measurePeakGflops, skipTagged } from "../lib/backend/engine/mod.ts";
import { nativeLoadError } from "../lib/backend/engine/ffi.ts";

Deno.test("modelFlops: one 3x3 conv 3->16 on 32x32 and a dense layer, by hand", () => {
  const inp = tfl.input({ shape: [32, 32, 3] });
  const c = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: "same" }).apply(
    inp,
  ) as tfl.SymbolicTensor;
  const s = tfl.layers.conv2d({ filters: 8, kernelSize: [1, 3], strides: 2, padding: "valid" })
    .apply(c) as tfl.SymbolicTensor; // 16x15x8
  const bn = tfl.layers.batchNormalization().apply(s) as tfl.SymbolicTensor;
  const g = tfl.layers.globalAveragePooling2d({}).apply(bn) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 10 }).apply(g) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: inp, outputs: out });
  const f = modelFlops(model);
  const conv1 = 2 * 32 * 32 * 9 * 3 * 16; // 884736
  const conv2 = 2 * 16 * 15 * 1 * 3 * 16 * 8;
  const dense = 2 * 8 * 10;
  assert.deepEqual(f.layers.map((l) => [l.className, l.flops]), [
    ["Conv2D", conv1],
    ["Conv2D", conv2],
    ["Dense", dense],
  ]);
  assert.equal(f.forward, conv1 + conv2 + dense);
  // without the taps on conv1's zero padding: per axis 32 outputs x 3 taps less the 2 that fall outside
  const conv1NoPad = 2 * 94 * 94 * 3 * 16;
  assert.deepEqual(f.layers.map((l) => l.flopsNoPad), [conv1NoPad, conv2, dense]);
  assert.equal(f.forwardNoPad, conv1NoPad + conv2 + dense);
  assert.equal(f.train, 3 * f.forward);
  model.dispose();
});

Deno.test("modelFlops: ResNet-20 = 2 x (40.55 M multiply-adds of its convs + 64x10 dense), BN or not", () => {
  // stem 32*32*27*16; stage 1: 6 convs 32*32*144*16; stage 2: one 16->32 stride-2 conv and 5 32->32 at
  // 16x16; stage 3 likewise at 8x8 with 64 channels
  const macs = 32 * 32 * 27 * 16 + 6 * 32 * 32 * 144 * 16 + 16 * 16 * 144 * 32 + 5 * 16 * 16 * 288 * 32 +
    8 * 8 * 288 * 64 + 5 * 8 * 8 * 576 * 64 + 64 * 10;
  for (const bn of ["all", "none"] as const) {
    const m = buildModel("resnet20", { bn, seed: 0 });
    assert.equal(modelFlops(m).forward, 2 * macs, `bn ${bn}`);
    m.dispose();
  }
});

const skip = loadNative() == null ? engineSkipReason() : null;
if (loadNative() == null) {
  console.error(`[engine] ${nativeLoadError()}${skip ? ` (peak test skipped: ${skip})` : ""}`);
}

Deno.test({
  name: skipTagged(
    "engine: nl_peak_gflops measures a positive fp32 peak (bf16 where the build has it)",
    skip,
  ),
  ignore: skip != null,
  fn() {
    const nat = loadNative();
    assert.ok(nat, `the engine shim must load where it can be built: ${nativeLoadError()}`);
    const peak = nat.sym.nl_peak_gflops;
    assert.ok(peak, "the shim has nl_peak_gflops (rebuild it: lib/backend/engine/native/build.sh)");
    assert.equal(peak(7, 1), -1, "unknown kind");
    assert.equal(peak(0, 0), -1, "no threads");
    const p = measurePeakGflops(1);
    assert.ok(p && p.fp32 > 0 && Number.isFinite(p.fp32), `fp32 peak ${p?.fp32}`);
    assert.equal(p.threads, 1);
    if (p.bf16 != null) assert.ok(p.bf16 > 0 && Number.isFinite(p.bf16), `bf16 peak ${p.bf16}`);
    console.error(
      `[peak] 1 thread: fp32 ${p.fp32.toFixed(1)} GFLOP/s, bf16 ${p.bf16?.toFixed(1) ?? "-"} GFLOP/s`,
    );
  },
});
