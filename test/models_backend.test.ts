// Our models (option-A shortcut = AvgPool 1/stride 2 + channel ZeroPadding, BN, folding,
// recalibration) on the fastest available backend must agree with the cpu reference.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import { engineSkipReason, engineUnavailableReason } from "../lib/backend/engine/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import { foldBatchNorm, recalibrateBatchNorm } from "../lib/noise/mod.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";

const fast = await initBackend("auto");

// Never skipped: "auto" must find a fast backend here (the engine where oneDNN and g++
// are present, else wasm); landing on the pure-JS cpu backend is a failure.
Deno.test({
  name: `models on the ${fast} backend agree with cpu (ResNet/VGG, BN/no BN, folded, recalibrated)`,
  fn: async () => {
    if (engineSkipReason() == null) {
      assert.equal(fast, "onednn", `the engine should load here: ${engineUnavailableReason()}`);
    }
    assert.notEqual(
      fast,
      "cpu",
      "auto fell back to the pure-JS cpu backend: neither the engine nor wasm loaded",
    );
    const x = gaussianFill(makeRng("be"), new Float32Array(6 * 32 * 32 * 3));
    for (
      const [name, opts] of [["resnet20", {}], ["resnet8", { bn: "none" }], ["vgg11", { width: 16 }]] as const
    ) {
      const m = buildModel(name, { ...opts, seed: 1 } as any);
      const f = foldBatchNorm(m);
      const outs: Float32Array[] = [];
      for (const be of [fast, "cpu"] as const) {
        await initBackend(be);
        outs.push(await predictLogits(m, x, 4), await predictLogits(f, x, 4));
        const r = buildModel(name, { ...opts, seed: 1 } as any); // fresh copy: recalibration changes it
        await recalibrateBatchNorm(r, x, { batches: 2, batchSize: 3 });
        outs.push(await predictLogits(r, x, 4));
        r.dispose();
      }
      await initBackend(fast);
      const scale = outs[4].reduce((s, v) => Math.max(s, Math.abs(v)), 1e-6);
      for (let k = 0; k < 3; k++) {
        const d = outs[k].reduce((s, v, i) => Math.max(s, Math.abs(v - outs[k + 3][i])), 0);
        assert.ok(d <= 1e-4 * scale, `${name} output ${k}: ${fast} vs cpu differ by ${d} (scale ${scale})`);
      }
      m.dispose();
      f.dispose();
    }
    assert.equal(tf.getBackend() !== "cpu", true);
  },
});
