import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  accuracy,
  bnSlotCount,
  bnLayerNames,
  buildModel,
  countCorrect,
  loadModel,
  modelInfo,
  modelMeta,
  modelNames,
  parseBNSpec,
  predictLogits,
  resnetShortcutConvs,
  saveModel,
} from "../lib/models/mod.ts";
import { selectWeights } from "../lib/noise/inject.ts";
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

function trainableCount(m: tfl.LayersModel): number {
  return m.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

type Layer = ReturnType<tfl.LayersModel["getLayer"]>;

/** The layers after `from` up to and including `to`, following single-input links backwards. */
function chainBetween(m: tfl.LayersModel, from: string, to: string): Layer[] {
  const out: Layer[] = [];
  let l = m.getLayer(to);
  while (l.name !== from) {
    out.unshift(l);
    const inbound = l.inboundNodes[0].inboundLayers;
    assert.equal(inbound.length, 1, `${l.name}: expected one input`);
    l = inbound[0];
  }
  return out;
}

function applyChain(layers: Layer[], x: tf.Tensor): tf.Tensor {
  return layers.reduce((t, l) => l.apply(t) as tf.Tensor, x);
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

// Exact trainable counts with all BN (published-table convention), per shortcut.
// Option A: akamaster's exact counts (He et al. table 6: 0.27M/0.46M/0.66M/0.85M/1.7M).
// Projection: each of the 2 stage transitions adds one 1x1 conv, in·out kernel + out bias:
//   (16·32 + 32) + (32·64 + 64) = 544 + 2112 = 2656 at width 16, whatever the depth.
const PROJECTION_EXTRA = (16 * 32 + 32) + (32 * 64 + 64);
const EXACT: Record<string, { A: number; projection: number }> = {
  resnet20: { A: 269722, projection: 272378 },
  resnet32: { A: 464154, projection: 466810 },
  resnet44: { A: 658586, projection: 661242 },
  resnet56: { A: 853018, projection: 855674 },
  resnet110: { A: 1727962, projection: 1730618 },
};

Deno.test("modelInfo: exact ResNet counts for option A and projection shortcuts", () => {
  assert.equal(PROJECTION_EXTRA, 2656);
  for (const [name, want] of Object.entries(EXACT)) {
    const a = modelInfo(name);
    const def = modelInfo(name, { shortcut: "A" });
    const p = modelInfo(name, { shortcut: "projection" });
    assert.deepEqual(def, a, `${name}: "A" is the default`);
    assert.equal(a.params, want.A, `${name} A`);
    assert.equal(p.params, want.projection, `${name} projection`);
    assert.equal(p.params - a.params, PROJECTION_EXTRA, name);
    // the projection has no BN: same addition to the BN-free and total counts, same BN slots
    assert.equal(p.paramsNoBN - a.paramsNoBN, PROJECTION_EXTRA, name);
    assert.equal(p.totalParams - a.totalParams, PROJECTION_EXTRA, name);
    assert.equal(p.bnLayers, a.bnLayers, name);
    assert.equal(bnSlotCount(name), a.bnLayers, name);
  }
  // Keras CIFAR-10 ResNet v1 example, ResNet20 summary: 274,442 parameters in all. Keras keeps a bias
  // on every conv even before BN (688 = 16 + 6·16 + 6·32 + 6·64 output channels); ours has none there.
  assert.equal(modelInfo("resnet20", { shortcut: "projection" }).totalParams + 688, 274442);
  // the formula in general: a 1x1 conv + bias per stage transition, width-scaled
  assert.deepEqual(resnetShortcutConvs(8, 4, "projection"), [
    { inChannels: 4, outChannels: 8, kernel: 1 },
    { inChannels: 8, outChannels: 16, kernel: 1 },
  ]);
  assert.deepEqual(resnetShortcutConvs(8, 4, "A"), []);
  assert.equal(
    modelInfo("resnet8", { width: 4, shortcut: "projection" }).params -
      modelInfo("resnet8", { width: 4 }).params,
    (4 * 8 + 8) + (8 * 16 + 16),
  );
  // VGG has no shortcuts: the option changes nothing
  assert.deepEqual(modelInfo("vgg11", { shortcut: "projection" }), modelInfo("vgg11"));
});

Deno.test("buildModel: built models have exactly the analytic parameter counts", () => {
  const bnNames = (k: number) => Array.from({ length: k }, (_, i) => `bn${i + 1}`);
  // resnet8 width 4, first 3 convs with BN (4 channels each): the BN-free count (4946) plus, per BN
  // conv, gamma+beta (2C) instead of a bias (C): +12 trainable; moving mean/variance: +24 more
  const partial = { trainable: 4946 + 12, total: 4946 + 12 + 24 };
  const partialProj = { trainable: partial.trainable + 184, total: partial.total + 184 }; // 4·8+8 + 8·16+16
  const cases: [string, Parameters<typeof buildModel>[1], string[], "all" | "none" | typeof partial][] = [
    ["resnet20", {}, bnNames(19), "all"],
    ["resnet20", { bn: "none" }, [], "none"],
    ["resnet20", { shortcut: "projection" }, bnNames(19), "all"],
    ["resnet20", { bn: "none", shortcut: "projection" }, [], "none"],
    ["resnet8", { width: 4, bn: 3 }, ["bn1", "bn2", "bn3"], partial],
    ["resnet8", { width: 4, bn: 3, shortcut: "projection" }, ["bn1", "bn2", "bn3"], partialProj],
    ["vgg11", { width: 8 }, bnNames(8), "all"],
    ["vgg13", { width: 8, bn: "none" }, [], "none"],
  ];
  for (const [name, opts, wantBN, expect] of cases) {
    const label = `${name} ${JSON.stringify(opts)}`;
    const m = buildModel(name, opts);
    const info = modelInfo(name, opts);
    assert.deepEqual(bnLayerNames(m), wantBN, label);
    const trainable = trainableCount(m);
    if (expect === "all") {
      assert.equal(trainable, info.params, label);
      assert.equal(m.countParams(), info.totalParams, label);
    } else if (expect === "none") {
      assert.equal(trainable, info.paramsNoBN, label);
      assert.equal(m.countParams(), info.paramsNoBN, label);
    } else {
      assert.equal(trainable, expect.trainable, label);
      assert.equal(m.countParams(), expect.total, label);
    }
    m.dispose();
  }
  assert.equal(modelInfo("resnet8", { width: 4 }).paramsNoBN, 4946);
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
  assert.equal(bnSlotCount("resnet8"), 7);
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
  err(() => buildModel("resnet8", { shortcut: "B" as any }), /^shortcut:.*"B"/);
  err(() => modelInfo("resnet8", { shortcut: "a" as any }), /^shortcut:/);
  err(() => buildModel("resnet8", { bnEpsilon: 0 }), /^bnEpsilon:/);
  err(() => buildModel("resnet8", { bnEpsilon: "0.001" as any }), /^bnEpsilon:/);
  err(() => buildModel("resnet8", { bnEpsilon: Infinity }), /^bnEpsilon:/);
  err(() => buildModel("resnet8", { bnMomentum: 1 }), /^bnMomentum:/);
  err(() => buildModel("resnet8", { bnMomentum: -0.1 }), /^bnMomentum:/);
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

Deno.test("ResNet projection shortcut: 1x1 stride-2 conv with bias, no BN, selected as a kernel", () => {
  const p = buildModel("resnet20", { shortcut: "projection" });
  const a = buildModel("resnet20");
  // resnet20: blocks 4 and 7 open stages 2 and 3
  for (const [b, cin, cout] of [[4, 16, 32], [7, 32, 64]]) {
    const l = p.getLayer(`short${b}_conv`);
    const cfg = l.getConfig() as any;
    assert.equal(l.getClassName(), "Conv2D");
    assert.deepEqual(cfg.kernelSize, [1, 1]);
    assert.deepEqual(cfg.strides, [2, 2]);
    assert.equal(cfg.useBias, true);
    assert.equal(cfg.activation, "linear");
    assert.deepEqual(l.weights.map((w) => [w.originalName, w.shape]), [
      [`short${b}_conv/kernel`, [1, 1, cin, cout]],
      [`short${b}_conv/bias`, [cout]],
    ]);
    // its output goes straight into the residual add (no BN, no activation), beside the branch's last BN
    assert.deepEqual(
      p.getLayer(`add${b}`).inboundNodes[0].inboundLayers.map((x) => x.name),
      [`bn${2 * b + 1}`, `short${b}_conv`],
    );
    assert.throws(() => p.getLayer(`short${b}_pool`));
    assert.ok(a.getLayer(`short${b}_pool`) && a.getLayer(`short${b}_pad`));
    assert.throws(() => a.getLayer(`short${b}_conv`));
  }
  // not a BN slot: conv numbering, BN layers and the metadata's BN mask are those of option A
  assert.deepEqual(bnLayerNames(p), bnLayerNames(a));
  assert.deepEqual(modelMeta(p)?.bnMask, modelMeta(a)?.bnMask);
  assert.equal(modelMeta(p)?.shortcut, "projection");
  assert.equal(modelMeta(a)?.shortcut, "A");
  // the noise code sees the projection kernels as kernels and their biases as biases
  const kernels = selectWeights(p, ["kernels"]).map((w) => w.name);
  assert.ok(kernels.includes("short4_conv/kernel") && kernels.includes("short7_conv/kernel"), kernels.join());
  assert.equal(kernels.length, 19 + 2 + 1); // conv1..conv19, two projections, fc
  const biases = selectWeights(p, ["biases"]).map((w) => w.name);
  assert.deepEqual(biases, ["short4_conv/bias", "short7_conv/bias", "fc/bias"]);
  assert.deepEqual(selectWeights(a, ["kernels"]).filter((w) => w.name.startsWith("short")), []);
  // seeded like every other layer; He-normal, not zero (unlike the BN-free branch's last conv)
  const again = buildModel("resnet20", { shortcut: "projection", bn: "none" });
  const k1 = p.getLayer("short4_conv").getWeights()[0].dataSync();
  assert.deepEqual(again.getLayer("short4_conv").getWeights()[0].dataSync(), k1);
  assert.ok(k1.some((v) => v !== 0));
  [p, a, again].forEach((m) => m.dispose());
  // VGG: the option is accepted and ignored
  const v = buildModel("vgg11", { width: 4, shortcut: "projection" });
  assert.equal(modelMeta(v)?.shortcut, undefined);
  assert.ok(!v.layers.some((l) => l.name.startsWith("short")));
  v.dispose();
});

Deno.test("ResNet strided conv pads 1 on every side: the branch's window is centred on the shortcut's pixel", () => {
  // block 2 of resnet8 (width 4, 8x8 input) goes 4 ch 8x8 -> 8 ch 4x4. Impulse k sits at pixel
  // (r, c) = (k / 8, k % 8), channel 0, at block1_out. conv4 (the stride-2 branch conv) gets a kernel
  // of ones on channel 0 -> 0 and a centre tap on 0 -> 1. With PyTorch padding (1 on every side) the
  // window of output (i, j) covers rows 2i-1..2i+1 and columns 2j-1..2j+1, centred on the pixel
  // (2i, 2j) that the shortcut takes. tfjs "same" (pad bottom/right only) centres it on (2i+1, 2j+1).
  const impulses = tf.buffer([64, 8, 8, 4]);
  for (let k = 0; k < 64; k++) impulses.set(1, k, Math.floor(k / 8), k % 8, 0);
  const x = impulses.toTensor();
  for (const shortcut of ["A", "projection"] as const) {
    const m = buildModel("resnet8", { width: 4, bn: "none", inputShape: [8, 8, 3], shortcut });
    const conv = m.getLayer("conv4");
    const kernel = tf.buffer([3, 3, 4, 8]);
    for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) kernel.set(1, u, v, 0, 0);
    kernel.set(1, 1, 1, 0, 1);
    conv.setWeights([kernel.toTensor(), tf.zeros([8])]);
    const shortEnd = shortcut === "A" ? "short2_pad" : "short2_conv";
    if (shortcut === "projection") {
      const pk = tf.buffer([1, 1, 4, 8]);
      pk.set(1, 0, 0, 0, 2); // channel 0 -> 2, where option A's zero-padding puts it
      m.getLayer("short2_conv").setWeights([pk.toTensor(), tf.zeros([8])]);
    }
    const branch = applyChain(chainBetween(m, "block1_out", "conv4"), x).arraySync() as number[][][][];
    const short = applyChain(chainBetween(m, "block1_out", shortEnd), x).arraySync() as number[][][][];
    for (let k = 0; k < 64; k++) {
      const r = Math.floor(k / 8), c = k % 8;
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const at = `${shortcut} impulse (${r},${c}) output (${i},${j})`;
          const inWindow = Math.abs(2 * i - r) <= 1 && Math.abs(2 * j - c) <= 1;
          assert.equal(branch[k][i][j][0], inWindow ? 1 : 0, `window ${at}`);
          const sampled = r === 2 * i && c === 2 * j ? 1 : 0;
          assert.equal(short[k][i][j][2], sampled, `shortcut ${at}`);
          assert.equal(branch[k][i][j][1], sampled, `centre tap ${at}`);
        }
      }
    }
    m.dispose();
  }
  x.dispose();
});

Deno.test("BN epsilon and momentum: defaults, options reach every BN layer, epsilon sets the NaN threshold", () => {
  const bnCfgs = (m: tfl.LayersModel) =>
    bnLayerNames(m).map((n) => m.getLayer(n).getConfig() as { epsilon: number; momentum: number });
  const def = buildModel("resnet8", { width: 4, inputShape: [8, 8, 3] });
  assert.ok(bnCfgs(def).every((c) => c.epsilon === 1e-5 && c.momentum === 0.9));
  assert.deepEqual([modelMeta(def)?.bnEpsilon, modelMeta(def)?.bnMomentum], [1e-5, 0.9]);
  const keras = buildModel("resnet8", { width: 4, inputShape: [8, 8, 3], bnEpsilon: 1e-3, bnMomentum: 0.99 });
  const cfgs = bnCfgs(keras);
  assert.equal(cfgs.length, 7);
  assert.ok(cfgs.every((c) => c.epsilon === 1e-3 && c.momentum === 0.99));
  assert.deepEqual([modelMeta(keras)?.bnEpsilon, modelMeta(keras)?.bnMomentum], [1e-3, 0.99]);
  const vgg = buildModel("vgg11", { width: 4, bnEpsilon: 1e-3 });
  assert.ok(bnCfgs(vgg).every((c) => c.epsilon === 1e-3 && c.momentum === 0.9));
  // a moving variance of -5e-4 (as weight noise can make it): NaN with eps 1e-5, finite with eps 1e-3
  const x = tf.tensor4d(randomImages(2, [8, 8, 3], "eps"), [2, 8, 8, 3]);
  for (const [m, nan] of [[def, true], [keras, false]] as const) {
    const mv = m.getLayer("bn1").weights.find((w) => w.originalName.endsWith("moving_variance"))!;
    mv.write(tf.fill([4], -5e-4));
    const out = m.predict(x) as tf.Tensor;
    const v = out.dataSync();
    assert.equal(v.some((a) => Number.isNaN(a)), nan, `eps ${bnCfgs(m)[0].epsilon}`);
    out.dispose();
  }
  x.dispose();
  [def, keras, vgg].forEach((m) => m.dispose());
});

Deno.test("modelMeta: ResNets saved before the shortcut was recorded read as option A", () => {
  const m = buildModel("resnet8", { width: 4 });
  const { shortcut: _s, ...old } = modelMeta(m)!;
  m.setUserDefinedMetadata({ noiselab: old });
  assert.equal(modelMeta(m)?.shortcut, "A");
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
    // a projection-shortcut ResNet with Keras BN constants keeps all of it through save/load
    const pdir = `${dir}/projection`;
    const p = buildModel("resnet8", {
      width: 4,
      bn: 5,
      inputShape: [8, 8, 3],
      seed: 6,
      shortcut: "projection",
      bnEpsilon: 1e-3,
      bnMomentum: 0.99,
    });
    await saveModel(p, pdir);
    const pl = await loadModel(pdir);
    assert.deepEqual(modelMeta(pl), modelMeta(p));
    assert.equal(modelMeta(pl)?.shortcut, "projection");
    assert.deepEqual((pl.getLayer("short2_conv").getConfig() as any).strides, [2, 2]);
    assert.equal((pl.getLayer("bn1").getConfig() as any).epsilon, 1e-3);
    assert.equal((pl.getLayer("bn1").getConfig() as any).momentum, 0.99);
    const pw = weightsOf(p);
    const plw = weightsOf(pl);
    assert.deepEqual([...plw.keys()].sort(), [...pw.keys()].sort());
    for (const [k, v] of pw) assert.deepEqual(plw.get(k), v, k);
    const px = randomImages(3, [8, 8, 3], "rtp");
    assert.deepEqual(await predictLogits(pl, px), await predictLogits(p, px));
    p.dispose();
    pl.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predictLogits/accuracy: batched equals unbatched, no tensor leaks, NaN rows per scoring rule", async () => {
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
  // rows: [NaN, 0, 1] → NumPy argmax 0 (first NaN) = label; [2, 0, NaN] → 2 ≠ 0; [5, 1, 0] → 0
  assert.equal(countCorrect(logits, [0, 0, 0], 3), 2);
  assert.equal(countCorrect(logits, [0, 0, 0], 3, "argmax-numpy"), 2);
  assert.equal(countCorrect(logits, [0, 0, 0], 3, "nonfinite-wrong"), 1);
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
