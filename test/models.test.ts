import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  accuracy,
  bnCount,
  bnLayerNames,
  buildModel,
  countCorrect,
  loadModel,
  modelInfo,
  modelMeta,
  modelNames,
  parseBNSpec,
  predictLogits,
  saveModel,
} from "../lib/models/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";

await initBackend("cpu"); // reference backend: exact, deterministic

function randomImages(n: number, shape: [number, number, number], seed: string): Float32Array {
  return gaussianFill(makeRng(seed), new Float32Array(n * shape[0] * shape[1] * shape[2]));
}

function weightsOf(m: tfl.LayersModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const l of m.layers) {
    for (const w of l.weights) out.set(w.originalName, w.read().dataSync() as Float32Array);
  }
  return out;
}

// Published parameter counts (He et al. 2016 table 6 / akamaster README; VGG16-CIFAR with one 512→10 dense).
const PUBLISHED: Record<string, number> = {
  resnet20: 0.27e6,
  resnet32: 0.46e6,
  resnet44: 0.66e6,
  resnet56: 0.85e6,
  resnet110: 1.7e6,
  vgg16: 14.7e6,
};

Deno.test("modelInfo: parameter counts match the published tables within 3%", () => {
  for (const [name, p] of Object.entries(PUBLISHED)) {
    const info = modelInfo(name);
    assert.ok(Math.abs(info.params - p) / p < 0.03, `${name}: ${info.params} vs ${p}`);
  }
  assert.equal(modelInfo("resnet20").params, 269722); // exact akamaster count
  assert.equal(modelInfo("resnet20").bnLayers, 19);
  assert.equal(modelInfo("resnet110").bnLayers, 109);
  assert.equal(modelInfo("vgg16").bnLayers, 13);
  assert.equal(modelInfo("vgg11").bnLayers, 8);
  assert.equal(modelInfo("vgg19").bnLayers, 16);
  assert.deepEqual(modelNames().slice(0, 5), ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]);
});

Deno.test("buildModel: built models have exactly the analytic parameter counts", () => {
  for (
    const [name, opts] of [
      ["resnet20", {}],
      ["resnet20", { bn: "none" as const }],
      ["resnet8", { width: 4, bn: 3 }],
      ["vgg11", { width: 8 }],
      ["vgg13", { width: 8, bn: "none" as const }],
    ] as const
  ) {
    const m = buildModel(name, opts);
    const info = modelInfo(name, opts);
    const trainable = m.trainableWeights.reduce(
      (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
      0,
    );
    const nBN = bnLayerNames(m).length;
    if (nBN === info.bnLayers) {
      assert.equal(trainable, info.params, name);
      assert.equal(m.countParams(), info.totalParams, name);
    } else if (nBN === 0) assert.equal(trainable, info.paramsNoBN, name);
    m.dispose();
  }
});

Deno.test("buildModel: VGG16 full size has 14.7M trainable params", () => {
  const m = buildModel("vgg16");
  const trainable = m.trainableWeights.reduce(
    (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
    0,
  );
  assert.equal(trainable, modelInfo("vgg16").params);
  assert.ok(Math.abs(trainable - 14.7e6) / 14.7e6 < 0.03);
  m.dispose();
});

Deno.test("buildModel: BN spec (count, indices, none) and layer naming", () => {
  const full = buildModel("resnet8", { width: 4 });
  assert.equal(bnCount("resnet8"), 7);
  assert.deepEqual(bnLayerNames(full), ["bn1", "bn2", "bn3", "bn4", "bn5", "bn6", "bn7"]);
  assert.ok(full.getLayer("fc"));
  for (let i = 1; i <= 7; i++) assert.equal((full.getLayer(`conv${i}`).getConfig() as any).useBias, false);
  const k3 = buildModel("resnet8", { width: 4, bn: 3 });
  assert.deepEqual(bnLayerNames(k3), ["bn1", "bn2", "bn3"]);
  assert.equal((k3.getLayer("conv3").getConfig() as any).useBias, false);
  assert.equal((k3.getLayer("conv4").getConfig() as any).useBias, true);
  const idx = buildModel("vgg11", { width: 4, bn: [0, 7] });
  assert.deepEqual(bnLayerNames(idx), ["bn1", "bn8"]);
  assert.deepEqual(modelMeta(idx)?.bnLabel, "idx0.7");
  const none = buildModel("resnet8", { width: 4, bn: "none" });
  assert.deepEqual(bnLayerNames(none), []);
  assert.equal((none.getLayer("conv1").getConfig() as any).useBias, true);
  [full, k3, idx, none].forEach((m) => m.dispose());
});

Deno.test("buildModel: bad input raises NoiselabError naming the parameter", () => {
  const err = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof NoiselabError && re.test(e.message));
  err(() => buildModel("resnet8", { bn: 8 }), /^bn:.*7 BN layers/);
  err(() => buildModel("resnet8", { bn: -1 }), /^bn:.*7 BN layers/);
  err(() => buildModel("resnet8", { bn: 1.5 }), /^bn:/);
  err(() => buildModel("resnet8", { bn: [0, 7] }), /^bn:.*index 7.*7 BN layers/);
  err(() => buildModel("resnet8", { bn: [2, 2] }), /^bn:.*duplicate/);
  err(() => buildModel("resnet8", { bn: "some" as any }), /^bn:/);
  err(() => buildModel("resnet21"), /^model:/);
  err(() => buildModel("vgg12"), /^model:/);
  err(() => buildModel("alexnet"), /^model:.*resnet20/);
  err(() => modelInfo("nope"), /^model:/);
  err(() => buildModel("resnet8", { width: 0 }), /^width:/);
  err(() => buildModel("vgg11", { inputShape: [8, 8, 3] }), /^inputShape:/);
  err(() => modelInfo("vgg11", { inputShape: [8, 8, 3] }), /^inputShape:/);
  err(() => parseBNSpec("half"), /^bn:/);
  err(() => parseBNSpec("1,x"), /^bn:/);
  assert.deepEqual([
    parseBNSpec("all"),
    parseBNSpec(" None "),
    parseBNSpec("3"),
    parseBNSpec("0, 5,7"),
    parseBNSpec("[2]"),
  ], [
    "all",
    "none",
    3,
    [0, 5, 7],
    [2],
  ]);
});

Deno.test("buildModel: same seed gives the same weights, another seed different ones", () => {
  const a = weightsOf(buildModel("resnet8", { width: 4, seed: 7 }));
  const b = weightsOf(buildModel("resnet8", { width: 4, seed: 7 }));
  const c = weightsOf(buildModel("resnet8", { width: 4, seed: 8 }));
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) assert.deepEqual(v, b.get(k), k);
  assert.notDeepEqual(a.get("conv1/kernel"), c.get("conv1/kernel"));
});

Deno.test("ResNet without BN: residual branches start at zero, convs have biases, He-normal scale", () => {
  const m = buildModel("resnet20", { bn: "none", seed: 3 });
  const w = weightsOf(m);
  // block convs: conv2,conv3 (block 1) ... the second conv of each block is conv(2b+1)
  for (let b = 1; b <= 9; b++) {
    assert.ok(w.get(`conv${2 * b + 1}/kernel`)!.every((v) => v === 0), `conv${2 * b + 1} zero`);
    assert.ok(w.get(`conv${2 * b}/kernel`)!.some((v) => v !== 0), `conv${2 * b} nonzero`);
    assert.ok(w.has(`conv${2 * b}/bias`));
  }
  // He-normal (tfjs draws it truncated at 2 sd): std ≈ 0.88·sqrt(2/fan_in); conv10 is 3x3, 32 → 32
  const k = w.get("conv10/kernel")!;
  const sd = Math.sqrt(k.reduce((s, v) => s + v * v, 0) / k.length);
  const he = Math.sqrt(2 / (9 * 32));
  assert.ok(sd > 0.8 * he && sd < 0.95 * he, `std ${sd} vs ${he}`);
  m.dispose();
});

Deno.test("ResNet option-A shortcut: stride-2 subsample, channels zero-padded in the middle", () => {
  const m = buildModel("resnet8", { width: 4, bn: "none", inputShape: [8, 8, 3] });
  // block 2 is the first of stage 2: its shortcut takes block1_out (4 ch, 8x8) to 8 ch, 4x4
  const sub = tfl.model({
    inputs: m.inputs,
    outputs: [m.getLayer("block1_out").output, m.getLayer("short2_pad").output] as tfl.SymbolicTensor[],
  });
  const x = tf.tensor4d(randomImages(2, [8, 8, 3], "sc"), [2, 8, 8, 3]);
  const [a, s] = sub.predict(x) as tf.Tensor[];
  assert.deepEqual(s.shape, [2, 4, 4, 8]);
  const av = a.arraySync() as number[][][][];
  const sv = s.arraySync() as number[][][][];
  for (let n = 0; n < 2; n++) {
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        for (let c = 0; c < 8; c++) {
          const expect = c >= 2 && c < 6 ? av[n][2 * i][2 * j][c - 2] : 0;
          assert.equal(sv[n][i][j][c], expect);
        }
      }
    }
  }
  tf.dispose([x, a, s]);
  m.dispose();
});

Deno.test("saveModel/loadModel: round trip keeps weights bitwise, predictions, metadata", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = buildModel("resnet8", { width: 4, bn: 2, inputShape: [8, 8, 3], seed: 5 });
    // make BN stats non-trivial so they are checked too
    const mm = m.getLayer("bn1").weights.find((w) => w.originalName.endsWith("moving_mean"))!;
    mm.write(tf.tensor1d([0.1, -0.2, 0.3, 0.05]));
    await saveModel(m, dir);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["model.json", "weights.bin"]);
    const l = await loadModel(dir);
    const wa = weightsOf(m);
    const wb = weightsOf(l);
    assert.deepEqual([...wa.keys()].sort(), [...wb.keys()].sort());
    for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, k);
    assert.equal(modelMeta(l)?.bnLabel, "first2");
    const x = randomImages(5, [8, 8, 3], "rt");
    assert.deepEqual(await predictLogits(l, x, 2), await predictLogits(m, x, 3));
    // truncated weights file → clear error naming the file
    const bin = await Deno.readFile(`${dir}/weights.bin`);
    await Deno.writeFile(`${dir}/weights.bin`, bin.subarray(0, 100));
    await assert.rejects(
      () => loadModel(dir),
      (e: unknown) => e instanceof NoiselabError && /weights\.bin/.test(e.message),
    );
    await assert.rejects(
      () => loadModel(`${dir}/missing`),
      (e: unknown) => e instanceof NoiselabError && /model\.json/.test(e.message),
    );
    m.dispose();
    l.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predictLogits/accuracy: batched equals unbatched, no tensor leaks, NaN rows count as wrong", async () => {
  const m = buildModel("vgg11", { width: 4, seed: 1 });
  const x = randomImages(7, [32, 32, 3], "p");
  const before = tf.memory().numTensors;
  const l1 = await predictLogits(m, x, 7);
  const l3 = await predictLogits(m, x, 3);
  assert.equal(tf.memory().numTensors, before);
  for (let i = 0; i < l1.length; i++) assert.ok(Math.abs(l1[i] - l3[i]) < 1e-5);
  const pred = Array.from({ length: 7 }, (_, i) => {
    const row = Array.from(l1.subarray(i * 10, i * 10 + 10));
    return row.indexOf(Math.max(...row));
  });
  assert.equal(await accuracy(m, x, pred, 4), 1);
  assert.equal(await accuracy(m, x, pred.map((p) => (p + 1) % 10)), 0);
  assert.equal(tf.memory().numTensors, before);
  // NaN handling
  const logits = new Float32Array([NaN, 0, 1, 2, 0, NaN, 5, 1, 0]);
  assert.equal(countCorrect(logits, [0, 0, 0], 3), 1);
  await assert.rejects(
    () => accuracy(m, x, pred.slice(1)),
    (e: unknown) => e instanceof NoiselabError && /^labels/.test(e.message),
  );
  await assert.rejects(
    () => accuracy(m, x.subarray(1), pred),
    (e: unknown) => e instanceof NoiselabError && /^x:/.test(e.message),
  );
  m.dispose();
});

Deno.test("BN-free ResNet trains: loss falls on a small separable problem", async () => {
  // 128 images, 2 classes told apart by the sign of the mean of channel 0 (plus noise)
  const n = 128;
  const shape: [number, number, number] = [8, 8, 3];
  const rng = makeRng("train");
  const x = randomImages(n, shape, "train-x");
  const y = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const cls = rng() < 0.5 ? 0 : 1;
    y[i * 2 + cls] = 1;
    for (let p = 0; p < 64; p++) x[i * 192 + p * 3] += cls ? 0.7 : -0.7;
  }
  const m = buildModel("resnet8", { width: 4, bn: "none", numClasses: 2, inputShape: shape, seed: 2 });
  // models output logits (no softmax layer): train with a from-logits loss
  m.compile({
    optimizer: tf.train.adam(0.002),
    loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const xt = tf.tensor4d(x, [n, ...shape]);
  const yt = tf.tensor2d(y, [n, 2]);
  const h = await m.fit(xt, yt, { epochs: 8, batchSize: 32, shuffle: false, verbose: 0 });
  const loss = h.history.loss as number[];
  assert.ok(loss.at(-1)! < 0.6 * loss[0], `loss ${loss.map((v) => v.toFixed(3))}`);
  const labels = Array.from({ length: n }, (_, i) => (y[i * 2 + 1] === 1 ? 1 : 0));
  const acc = await accuracy(m, x, labels);
  assert.ok(acc > 0.85, `accuracy ${acc} loss ${loss.map((v) => v.toFixed(3))}`);
  tf.dispose([xt, yt]);
  m.dispose();
});
