/**
 * Hardware-aware (noise-injection) training, issue #13: `TrainConfig.trainNoise` (Gaussian kernel
 * noise σ = trainNoise·max|W|, resampled every step) is deterministic and resumable like any
 * training, changes the weights, restores the clean kernels after each step's gradient, and is left
 * out of the model id while 0 (older ids unchanged).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { loadDataset } from "../lib/data/mod.ts";
import { buildModel } from "../lib/models/mod.ts";
import {
  checkpointPath,
  modelId,
  perturbKernels,
  resolveTrainConfig,
  type TrainConfig,
  type TrainedModel,
  trainOrLoad,
  trainStepState,
} from "../lib/train/mod.ts";
import { hashObject } from "../lib/util/hash.ts";
import { NUMERICS_VERSION } from "../lib/util/version.ts";
import { NoiselabError } from "../lib/util/errors.ts";

await initBackend();
const dataset = await loadDataset({ dataset: "cifar10" });

const tiny: Partial<TrainConfig> = {
  model: "resnet8",
  width: 2,
  trainSize: 48,
  testSize: 20,
  epochs: 3,
  batchSize: 16,
  optimizer: "sgd",
  momentum: 0.9,
  lr: 0.05,
  trainNoise: 0.05,
};

const weightsOf = (t: TrainedModel) => t.model.weights.map((w) => Array.from(w.read().dataSync()));
const tmp = () => Deno.makeTempDir({ prefix: "noiselab-trainnoise-" });

Deno.test("trainNoise: 0 keeps older model ids; validated; > 0 is a different model", () => {
  const c = resolveTrainConfig({ model: "resnet8" });
  assert.equal(c.trainNoise, 0);
  const { trainNoise: _, precision: _p, ...old } = c;
  assert.equal(
    modelId(c, "d", "cpu"),
    hashObject({ config: old, dataId: "d", backend: "cpu", numerics: NUMERICS_VERSION }),
  );
  assert.notEqual(modelId({ ...c, trainNoise: 0.05 }, "d", "cpu"), modelId(c, "d", "cpu"));
  assert.throws(
    () => resolveTrainConfig({ trainNoise: -0.1 }),
    (e) => e instanceof NoiselabError && e.subject === "trainNoise",
  );
});

Deno.test("perturbKernels: σ = trainNoise·max|W| on kernels only, restored bitwise", () => {
  const model = buildModel("resnet8", { bn: "all", width: 4 });
  try {
    const st = trainStepState(model, resolveTrainConfig({ model: "resnet8" }));
    const before = st.vars.map((v) => (v.dataSync() as Float32Array).slice());
    const restore = perturbKernels(st, { sigma: 0.1, key: "k" });
    st.vars.forEach((v, i) => {
      const now = v.dataSync() as Float32Array;
      if (!st.kernels[i]) return assert.deepEqual(now, before[i], "non-kernels untouched");
      if (now.length < 1000) return;
      const m = Math.max(...Array.from(before[i], Math.abs));
      let ss = 0;
      for (let j = 0; j < now.length; j++) ss += (now[j] - before[i][j]) ** 2;
      const sd = Math.sqrt(ss / now.length);
      assert.ok(Math.abs(sd / (0.1 * m) - 1) < 0.1, `σ of ${v.name}: ${sd} vs ${0.1 * m}`);
    });
    restore();
    st.vars.forEach((v, i) => assert.deepEqual(v.dataSync(), before[i], "restored"));
    st.optimizer.dispose();
  } finally {
    model.dispose();
  }
});

Deno.test("noise-trained: deterministic, different from clean training, resumable bitwise after a stop", async () => {
  const [d1, d2, d3] = [await tmp(), await tmp(), await tmp()];
  const before = tf.memory().numTensors;
  const a = (await trainOrLoad(tiny, { resultsDir: d1, dataset }))!;
  const b = (await trainOrLoad(tiny, { resultsDir: d2, dataset }))!;
  assert.deepEqual(weightsOf(a), weightsOf(b), "same config + seed: same weights");
  const clean = (await trainOrLoad({ ...tiny, trainNoise: 0 }, { resultsDir: d3, dataset }))!;
  assert.notDeepEqual(weightsOf(a), weightsOf(clean), "the noise changed the training");
  const stopped = await trainOrLoad(tiny, { resultsDir: d3, dataset, stopAfterEpoch: 1 });
  assert.equal(stopped, undefined);
  assert.ok((await Deno.stat(checkpointPath(join(d3, "models", a.id)))).isFile);
  const resumed = (await trainOrLoad(tiny, { resultsDir: d3, dataset }))!;
  assert.equal(resumed.provenance.resumedFromEpoch, 1);
  assert.deepEqual(weightsOf(resumed), weightsOf(a), "resumed = uninterrupted, bitwise");
  for (const t of [a, b, clean, resumed]) t.model.dispose();
  assert.ok(tf.memory().numTensors <= before + 2, "no leaked tensors");
  for (const d of [d1, d2, d3]) await Deno.remove(d, { recursive: true });
});
