/**
 * The sweep's one config object (issue #10 item 3): lib/noise `SweepConfig`
 * (defaults, one resolver and validation, hash), the `noise` command's flags
 * derived from it (`--form` kept as a deprecated alias of `--noise-type`), the
 * notebooks' knobs mapped onto it (`sweepConfigFor`), the cache key derived
 * from it (`sweepCacheKey`; entries under the old key still found), one rule
 * for BN calibration images — and the numbers: a sweep built through the
 * config gives rows bitwise equal to the old hand-built paths (notebook and CLI).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../lib/backend/mod.ts";
import { type Dataset, normalize, type Split, stratifiedSubset } from "../lib/data/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import {
  BF16_FAST_PATH_ARITHMETIC,
  calibrationImages,
  DEFAULT_SWEEP_CONFIG,
  listWeights,
  type NoiseSpec,
  noiseSweep,
  parseExact,
  resolveNoiseSpec,
  resolveSweepConfig,
  SWEEP_CONFIG_KEYS,
  type SweepConfig,
  sweepConfigHash,
  sweepData,
  sweepKey,
  sweepKeyView,
  sweepOptionsFor,
  type SweepResult,
} from "../lib/noise/mod.ts";
import { testData } from "../lib/train/data.ts";
import {
  cachedSweep,
  legacySweepKey,
  sweepCacheKey,
  sweepCachePath,
  sweepPartialPath,
} from "../lib/notebook/cache.ts";
import { type NotebookParams, resolveParams, sweepConfigFor } from "../lib/notebook/profiles.ts";
import {
  attributionConditions,
  defaultCondition,
  referenceConditions,
  sweepVariant,
  type TrainedVariant,
} from "../lib/notebook/study.ts";
import {
  DEPRECATED_SWEEP_FLAGS,
  resolveSweepFlags,
  sweepFlagName,
  sweepOptionTable,
} from "../lib/cli/noise_flags.ts";
import { cleanWarning, parseNoiseArgs } from "../lib/cli/noise.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { parseFlags } from "../lib/cli/args.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";
import { NUMERICS_VERSION } from "../lib/util/version.ts";

await initBackend("cpu"); // reference backend: exact, deterministic

const named = (field: string, re: RegExp) => (e: unknown) =>
  e instanceof NoiselabError && e.subject === field && re.test(e.message);

// ---------------------------------------------------------------------------------------------
// the config: defaults, one validation, hash

Deno.test("SweepConfig: defaults, every field validated with an error naming it, before any work", () => {
  assert.ok(Object.isFrozen(DEFAULT_SWEEP_CONFIG) && Object.isFrozen(DEFAULT_SWEEP_CONFIG.targets));
  const c = resolveSweepConfig({ etas: [0, 0.1] });
  assert.deepEqual(c, { ...DEFAULT_SWEEP_CONFIG, etas: [0, 0.1] });
  assert.deepEqual(SWEEP_CONFIG_KEYS, [
    "etas",
    "draws",
    "seed",
    "targets",
    "noiseType",
    "scoring",
    "foldBN",
    "recalibrateBatches",
    "recalibrateBatchSize",
    "testSize",
    "batchSize",
    "bnPlacement",
    "clipSigma",
    "inferenceTime",
    "driftCompensation",
    "pcmMapping",
    "fastPath",
  ]);
  assert.deepEqual(
    resolveSweepConfig({ etas: [0.1], targets: ["all", "kernels", "all"] }).targets,
    ["all", "kernels"],
    "duplicates dropped, order kept",
  );
  const bads: [Record<string, unknown>, string, RegExp][] = [
    [{}, "etas", /^etas: required/],
    [{ etas: [] }, "etas", /^etas: required/],
    [{ etas: [0.1, -1] }, "etas", /^etas: each noise level η must be a finite number >= 0, got -1/],
    [{ etas: [0.1, NaN] }, "etas", /^etas: .*>= 0/],
    [{ etas: [0, 0] }, "etas", /^etas: needs at least one noise level > 0/],
    [{ etas: [0.1], draws: 0 }, "draws", /^draws: expected an integer >= 1, got 0/],
    [{ etas: [0.1], draws: 1.5 }, "draws", /^draws: expected an integer >= 1/],
    [{ etas: [0.1], seed: -1 }, "seed", /^seed: expected an integer >= 0/],
    [{ etas: [0.1], targets: [] }, "targets", /^targets: expected a non-empty list/],
    [{ etas: [0.1], targets: ["weights"] }, "targets", /^targets: unknown target "weights"/],
    [{ etas: [0.1], noiseType: "pink" }, "noiseType", /^noiseType: unknown noise type "pink"/],
    [{ etas: [0.1], scoring: "numpy" }, "scoring", /^scoring: unknown scoring rule 'numpy'/],
    [{ etas: [0.1], foldBN: "yes" }, "foldBN", /^foldBN: expected true or false/],
    [
      { etas: [0.1], recalibrateBatches: -1 },
      "recalibrateBatches",
      /^recalibrateBatches: expected an integer >= 0/,
    ],
    [
      { etas: [0.1], recalibrateBatches: 2, foldBN: true },
      "recalibrateBatches",
      /^recalibrateBatches: BN re-estimation cannot be combined with BN folding/,
    ],
    [
      { etas: [0.1], recalibrateBatchSize: 0 },
      "recalibrateBatchSize",
      /^recalibrateBatchSize: expected an integer >= 1/,
    ],
    [{ etas: [0.1], testSize: 0 }, "testSize", /^testSize: expected an integer >= 1/],
    [{ etas: [0.1], batchSize: 0 }, "batchSize", /^batchSize: expected an integer >= 1/],
    [
      { etas: [0.1], form: "additive-std" },
      "form",
      /^form: unknown sweep parameter 'form'; known: etas, draws/,
    ],
  ];
  for (const [partial, field, re] of bads) {
    assert.throws(() => resolveSweepConfig(partial), named(field, re), JSON.stringify(partial));
  }
});

Deno.test("sweepConfigHash: defaults spelled out or left out hash the same; every field moves it", () => {
  const base = { etas: [0, 0.1] };
  const h = sweepConfigHash(base);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(sweepConfigHash({ ...DEFAULT_SWEEP_CONFIG, etas: [0, 0.1] }), h);
  const changes: Partial<SweepConfig>[] = [
    { etas: [0, 0.2] },
    { draws: 3 },
    { seed: 1 },
    { targets: ["all"] },
    { noiseType: "multiplicative" },
    { scoring: "nonfinite-wrong" },
    { foldBN: true },
    { recalibrateBatches: 1 },
    { recalibrateBatchSize: 64 },
    { testSize: 100 },
    { batchSize: 100 },
    { bnPlacement: "digital" },
    { clipSigma: 3 },
    { noiseType: "pcm", inferenceTime: 3600 },
    { noiseType: "pcm", driftCompensation: true },
    { noiseType: "pcm", pcmMapping: "per-channel" },
    { fastPath: "bf16" },
  ];
  assert.equal(changes.length, SWEEP_CONFIG_KEYS.length, "one change per field");
  for (const c of changes) assert.notEqual(sweepConfigHash({ ...base, ...c }), h, JSON.stringify(c));
});

// ---------------------------------------------------------------------------------------------
// CLI flags derived from the config

function flags(argv: string[]) {
  return parseFlags("noise", argv, sweepOptionTable()).values;
}

Deno.test("noise flags: one per config field (historical names kept), --form a deprecated alias of --noise-type", () => {
  const table = sweepOptionTable();
  for (const k of SWEEP_CONFIG_KEYS) assert.ok(table[sweepFlagName(k)], k);
  assert.deepEqual(Object.keys(table).sort(), [
    "batch-size",
    "bn-placement",
    "clip-sigma",
    "draws",
    "drift-compensation",
    "eta",
    "fast-path",
    "fold-bn",
    "form",
    "inference-time",
    "noise-type",
    "pcm-mapping",
    "recalibrate-batch-size",
    "recalibrate-bn",
    "scoring",
    "seed",
    "targets",
    "test-size",
  ]);
  assert.equal(table["fold-bn"].type, "boolean");
  const a = resolveSweepFlags(flags(["--eta", "0,0.3", "--form", "multiplicative"]));
  const b = resolveSweepFlags(flags(["--eta", "0,0.3", "--noise-type", "multiplicative"]));
  assert.deepEqual(a.configs, b.configs);
  assert.equal(a.configs[0].noiseType, "multiplicative");
  assert.deepEqual(a.deprecated, ["form"]);
  assert.deepEqual(b.deprecated, []);
  assert.match(DEPRECATED_SWEEP_FLAGS.form.note, /--form is deprecated: use --noise-type/);
  // errors name the flag the user typed
  assert.throws(
    () => resolveSweepFlags(flags(["--eta", "0.1", "--form", "pink"])),
    /--form: unknown noise type "pink"/,
  );
  assert.throws(
    () => resolveSweepFlags(flags(["--eta", "0.1", "--noise-type", "pink"])),
    /--noise-type: unknown noise type "pink"/,
  );
  assert.throws(
    () =>
      resolveSweepFlags(flags(["--eta", "0.1", "--form", "multiplicative", "--noise-type", "additive-std"])),
    /--form: give --noise-type or its deprecated alias --form, not both/,
  );
  assert.throws(() => resolveSweepFlags(flags([])), /--eta: required/);
  assert.throws(
    () => resolveSweepFlags(flags(["--eta", "0.1", "--recalibrate-bn", "2", "--fold-bn"])),
    /--recalibrate-bn: BN re-estimation cannot be combined with BN folding \(--fold-bn:/,
  );
});

Deno.test("noise flags: values become one resolved config per target group; defaults are DEFAULT_SWEEP_CONFIG's", () => {
  const { configs } = resolveSweepFlags(flags([
    "--eta",
    "0,0.1,0.2",
    "--draws",
    "3",
    "--seed",
    "7",
    "--targets",
    "kernels,bn-mean+bn-var",
    "--scoring",
    "nonfinite-wrong",
    "--recalibrate-bn",
    "2",
    "--recalibrate-batch-size",
    "64",
    "--test-size",
    "200",
    "--batch-size",
    "100",
  ]));
  const common = {
    etas: [0, 0.1, 0.2],
    draws: 3,
    seed: 7,
    noiseType: "additive-std" as const,
    scoring: "nonfinite-wrong" as const,
    foldBN: false,
    recalibrateBatches: 2,
    recalibrateBatchSize: 64,
    testSize: 200,
    batchSize: 100,
    bnPlacement: "analog" as const,
    clipSigma: 0,
    inferenceTime: 1,
    driftCompensation: false,
    pcmMapping: "per-layer" as const,
    fastPath: "off" as const,
  };
  assert.deepEqual(configs, [
    { ...common, targets: ["kernels"] },
    { ...common, targets: ["bn-mean", "bn-var"] },
  ]);
  const d = resolveSweepFlags(flags(["--eta", "0.1"])).configs;
  assert.deepEqual(d, [{ ...DEFAULT_SWEEP_CONFIG, etas: [0.1] }]);
  assert.equal(resolveSweepFlags(flags(["--eta", "0.1", "--test-size", "model"])).configs[0].testSize, null);
  // the command's parse step: everything validated, the model required, nothing loaded
  const req = parseNoiseArgs(["--model", "abc", "--eta", "0.1", "--fold-bn", "--json"]);
  assert.ok(req !== "help");
  assert.deepEqual(req.configs, [{
    ...DEFAULT_SWEEP_CONFIG,
    etas: [0.1],
    foldBN: true,
    bnPlacement: "folded",
  }]);
  // issue #13: PCM noise, BN placement, clipping and drift compensation are flags too (times with units)
  const pcm = parseNoiseArgs([
    "--model",
    "abc",
    "--eta",
    "1",
    "--noise-type",
    "pcm",
    "--inference-time",
    "1d",
    "--drift-compensation",
    "--bn-placement",
    "digital",
    "--clip-sigma",
    "2.5",
  ]);
  assert.ok(pcm !== "help");
  assert.deepEqual(
    [pcm.configs[0].noiseType, pcm.configs[0].inferenceTime, pcm.configs[0].driftCompensation],
    ["pcm", 86400, true],
  );
  assert.deepEqual([pcm.configs[0].bnPlacement, pcm.configs[0].clipSigma], ["digital", 2.5]);
  assert.throws(
    () => parseNoiseArgs(["--model", "a", "--eta", "1", "--inference-time", "1h"]),
    /--inference-time: applies to noiseType pcm only/,
  );
  assert.throws(
    () => parseNoiseArgs(["--model", "a", "--eta", "1", "--noise-type", "pcm", "--inference-time", "soon"]),
    /--inference-time: expected seconds or a number with a unit/,
  );
  // the PCM conductance mapping (per layer by default, or per output channel): a flag like the others
  const chan = parseNoiseArgs([
    "--model",
    "a",
    "--eta",
    "1",
    "--noise-type",
    "pcm",
    "--pcm-mapping",
    "per-channel",
  ]);
  assert.ok(chan !== "help");
  assert.equal(chan.configs[0].pcmMapping, "per-channel");
  assert.throws(
    () => parseNoiseArgs(["--model", "a", "--eta", "1", "--pcm-mapping", "per-channel"]),
    /--pcm-mapping: applies to noiseType pcm only/,
  );
  assert.throws(
    () => parseNoiseArgs(["--model", "a", "--eta", "1", "--noise-type", "pcm", "--pcm-mapping", "columns"]),
    /--pcm-mapping: unknown conductance mapping "columns"; use per-layer, per-channel/,
  );
  assert.equal(req.json, true);
  assert.throws(() => parseNoiseArgs(["--eta", "0.1"]), /--model: required/);
});

// ---------------------------------------------------------------------------------------------
// notebooks: their knobs map onto the config through sweepConfigFor

Deno.test("notebooks: sweepConfigFor maps the knobs (names kept); validation is the config's, naming the knob", () => {
  const p = resolveParams("03", "smoke");
  const c = sweepConfigFor(p);
  assert.deepEqual(c, {
    etas: p.etas,
    draws: p.draws,
    seed: p.noiseSeed,
    targets: p.noiseTargets,
    noiseType: p.noiseForm,
    scoring: p.scoring,
    foldBN: false,
    recalibrateBatches: 0,
    recalibrateBatchSize: 128,
    testSize: p.testSize,
    batchSize: 500,
    bnPlacement: "analog",
    clipSigma: 0,
    inferenceTime: 1,
    driftCompensation: false,
    pcmMapping: "per-layer",
    fastPath: p.fastPath,
  });
  assert.equal(p.fastPath, "bf16", "smoke evaluates sweeps through the bf16 fast path");
  const recal = attributionConditions(p).find((x) => x.recalibrate)!;
  assert.equal(sweepConfigFor(p, recal).recalibrateBatches, p.recalibrateBatches);
  const folded = attributionConditions(p).find((x) => x.key === "folded-all")!;
  assert.deepEqual(
    [sweepConfigFor(p, folded).foldBN, sweepConfigFor(p, folded).targets],
    [true, ["all"]],
  );
  const bads: [Record<string, unknown>, RegExp][] = [
    [{ noiseForm: "pink" }, /^parameter noiseForm: unknown noise type "pink"/],
    [{ noiseSeed: -1 }, /^parameter noiseSeed: expected an integer >= 0/],
    [{ noiseTargets: ["weights"] }, /^parameter noiseTargets: unknown target "weights"/],
    [{ etas: [0, 0] }, /^parameter etas: needs at least one noise level > 0/],
    [{ etas: [-1] }, /^parameter etas: each noise level η must be a finite number >= 0/],
    [{ draws: 0 }, /^parameter draws: expected an integer >= 1/],
    [{ recalibrateBatches: 1.5 }, /^parameter recalibrateBatches: expected an integer >= 0/],
    [{ scoring: "numpy" }, /^parameter scoring: unknown scoring rule 'numpy'/],
    [{ fastPath: "fp16" }, /^parameter fastPath: unknown evaluation path "fp16"/],
  ];
  for (const [o, re] of bads) {
    const knob = Object.keys(o)[0];
    assert.throws(
      () => resolveParams("01", "smoke", o),
      (e: unknown) => e instanceof NoiselabError && e.subject === knob && re.test(e.message),
      knob,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// a tiny model and data set (32x32 CIFAR-shaped random images) for the numbers

function split(n: number, seed: string): Split {
  const rng = makeRng(seed);
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(rng() * 256);
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return { images, labels, n };
}

const DATASET = {
  name: "cifar10",
  source: "cifar10-jpeg",
  sourceLabel: "fake CIFAR-10",
  dataId: "cifar10-jpeg-fake00000000",
  numClasses: 10,
  classNames: Array.from({ length: 10 }, (_, i) => `c${i}`),
  train: split(300, "train"),
  test: split(60, "test"),
  files: [],
} as unknown as Dataset;
const STATS = { mean: [0.5, 0.48, 0.45], std: [0.29, 0.28, 0.3] };
const MODEL_CFG = { testSize: 20, subsetSeed: 0 };

/** resnet8 (width 2) with BN and non-trivial weights; BN variances positive. */
function tinyModel(): tfl.LayersModel {
  const m = buildModel("resnet8", { width: 2, bn: "all", seed: 3 });
  const rng = makeRng("sweep-config-w");
  for (const w of listWeights(m)) {
    const n = w.variable.shape.reduce((a, b) => a! * b!, 1)!;
    const z = gaussianFill(rng, new Float32Array(n));
    const cur = w.variable.read().dataSync() as Float32Array;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (w.kind === "moving_variance") v[i] = 0.5 + rng();
      else if (w.kind === "gamma") v[i] = 1 + 0.3 * z[i];
      else if (w.kind === "kernel") v[i] = cur[i] + 0.05 * z[i];
      else v[i] = 0.1 * z[i];
    }
    const t = tf.tensor(v, w.variable.shape as number[]);
    w.variable.write(t);
    t.dispose();
  }
  return m;
}

/** Labels = the clean model's predictions, so noise visibly lowers accuracy. */
async function testSplit(m: tfl.LayersModel) {
  const t = testData(MODEL_CFG, DATASET, STATS);
  const logits = await predictLogits(m, t.x);
  const labels = Uint8Array.from({ length: t.n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
    return best;
  });
  return { ...t, labels };
}

/** The rows compared bitwise: every number by Object.is (NaN equal to NaN, 0 ≠ -0). */
function assertSameRows(a: SweepResult, b: SweepResult, what: string): void {
  assert.equal(a.rows.length, b.rows.length, what);
  a.rows.forEach((r, i) => assert.deepStrictEqual(r, b.rows[i], `${what}, row ${i}`));
  assert.ok(Object.is(a.cleanAccuracy, b.cleanAccuracy), what);
  assert.deepStrictEqual(a.summary, b.summary, what);
}

/** The notebooks' conditions as the code before the config object spelled them (`spec` with `form`). */
function oldConditions(
  p: NotebookParams,
): { key: string; spec: Partial<NoiseSpec>; recalibrate?: boolean }[] {
  const form = p.noiseForm;
  return [
    { key: "default", spec: { form, targets: p.noiseTargets, foldBN: false } },
    { key: "kernels", spec: { form, targets: ["kernels"] } },
    { key: "affine", spec: { form, targets: ["kernels", "bn-affine"] } },
    { key: "stats", spec: { form, targets: ["kernels", "bn-affine", "bn-mean", "bn-var"] } },
    { key: "all", spec: { form, targets: ["all"] } },
    { key: "folded-kernels", spec: { form, targets: ["kernels"], foldBN: true } },
    { key: "folded-all", spec: { form, targets: ["all"], foldBN: true } },
    { key: "recal", spec: { form, targets: ["all"] }, recalibrate: true },
  ];
}

/** The new conditions under the same keys. */
function newConditions(p: NotebookParams) {
  return [{ ...defaultCondition(p), key: "default" }, ...attributionConditions(p)];
}

/** The old notebook path (lib/notebook/study.ts sweepVariantImpl before SweepConfig), by hand. */
function oldNotebookRecal(p: NotebookParams, recalibrate: boolean) {
  if (!(recalibrate && p.recalibrateBatches > 0)) return undefined;
  const sub = stratifiedSubset(DATASET.train, p.recalibrateBatches * 128, `recal:${p.noiseSeed}`);
  return {
    x: normalize(sub, STATS),
    batches: p.recalibrateBatches,
    batchSize: 128,
    label: `${sub.n} training images (${DATASET.sourceLabel})`,
  };
}

Deno.test("numbers: notebook sweeps through SweepConfig equal the old hand-built path's rows bitwise (every condition of notebook 03, two parameter sets)", async () => {
  const m = tinyModel();
  const test = await testSplit(m);
  const trained = { config: MODEL_CFG, normalization: STATS, test };
  const params = [
    // fastPath "off": the old path evaluated the model as it is (smoke's bf16 fast path is not bitwise)
    resolveParams("03", "smoke", {
      etas: [0, 0.3, 1.2],
      draws: 2,
      recalibrateBatches: 1,
      testSize: 20,
      fastPath: "off",
    }),
    resolveParams("03", "smoke", {
      fastPath: "off",
      etas: [0.2, 2],
      draws: 2,
      noiseSeed: 5,
      noiseForm: "multiplicative",
      scoring: "nonfinite-wrong",
      recalibrateBatches: 2,
      testSize: 20,
    }),
  ];
  try {
    for (const p of params) {
      const olds = oldConditions(p);
      const news = newConditions(p);
      assert.deepEqual(news.map((c) => c.key), olds.map((c) => c.key));
      for (const [i, old] of olds.entries()) {
        const what = `${p.noiseForm}/${old.key}`;
        const oldRecal = oldNotebookRecal(p, Boolean(old.recalibrate));
        const before = await noiseSweep(m, { x: test.x, labels: test.labels, label: "test" }, {
          etas: p.etas,
          draws: p.draws,
          seed: p.noiseSeed,
          modelId: "tiny",
          spec: old.spec,
          scoring: p.scoring,
          recalibrateBN: oldRecal,
          partial: false,
        });
        const config = sweepConfigFor(p, news[i]);
        const inputs = sweepData(config, DATASET, trained);
        assert.equal(inputs.test.x, test.x, "the model's own test subset is reused");
        if (oldRecal) assert.deepEqual(inputs.calibration!.x, oldRecal.x, `${what}: calibration images`);
        else assert.equal(inputs.calibration, undefined);
        const after = await noiseSweep(
          m,
          inputs.test,
          {
            ...sweepOptionsFor(config, { modelId: "tiny", calibration: inputs.calibration }),
            partial: false,
          },
        );
        assertSameRows(before, after, what);
        // the cache key used before the config object is rebuilt exactly (old entries are found)
        const oldKey = {
          ...sweepKey({
            modelId: "tiny",
            data: { x: test.x, labels: test.labels },
            dataId: DATASET.dataId,
            etas: p.etas,
            draws: p.draws,
            seed: p.noiseSeed,
            spec: old.spec,
            scoring: p.scoring,
            recalibrateBN: oldRecal ?? null,
          }),
          snapshotStep: 40,
        };
        const rebuilt = legacySweepKey({
          config,
          modelId: "tiny",
          snapshotStep: 40,
          dataId: DATASET.dataId,
          test,
          calibration: inputs.calibration,
        });
        assert.equal(sweepCachePath(rebuilt), sweepCachePath(oldKey), `${what}: legacy key`);
      }
      // the no-BN twins' references are conditions like the others
      for (const c of referenceConditions(p)) assert.equal(sweepConfigFor(p, c).foldBN, false);
    }
    // some draw changed the accuracy, some gave NaN logits: the comparison covers those paths
    const rows = (await noiseSweep(m, test, {
      ...sweepOptionsFor(sweepConfigFor(params[0], { sweep: { targets: ["all"] } }), { modelId: "tiny" }),
      partial: false,
    })).rows;
    assert.ok(rows.some((r) => r.accuracy < 1), "noise changed no prediction");
  } finally {
    m.dispose();
  }
});

Deno.test("numbers: CLI sweeps through SweepConfig flags equal the old CLI path's rows bitwise (without BN re-estimation)", async () => {
  const m = tinyModel();
  const test = await testSplit(m);
  try {
    const cases: string[][] = [
      ["--eta", "0,0.3,1.5", "--draws", "2", "--targets", "kernels,all,bn-mean+bn-var"],
      [
        "--eta",
        "0.5",
        "--draws",
        "2",
        "--form",
        "multiplicative",
        "--seed",
        "4",
        "--scoring",
        "nonfinite-wrong",
      ],
      ["--eta", "0.1,0.4", "--draws", "1", "--fold-bn", "--targets", "all", "--form", "additive-max"],
      ["--eta", "0.3", "--draws", "2", "--batch-size", "7"],
    ];
    for (const argv of cases) {
      const values = flags(argv);
      const { configs } = resolveSweepFlags(values);
      const groups = String(values.targets ?? "kernels").split(",");
      assert.equal(configs.length, groups.length);
      for (const [gi, g] of groups.entries()) {
        // the old lib/cli/noise.ts, by hand
        const spec = resolveNoiseSpec({
          form: (values.form as string | undefined ?? "additive-std") as never,
          targets: g.split("+") as never,
          foldBN: Boolean(values["fold-bn"]),
          recalibrateBN: 0,
        });
        const before = await noiseSweep(m, { x: test.x, labels: test.labels, label: "t" }, {
          etas: (values.eta as string).split(",").map(Number),
          draws: Number(values.draws),
          spec,
          seed: Number(values.seed ?? 0),
          modelId: "tiny",
          batchSize: Number(values["batch-size"] ?? 500),
          scoring: (values.scoring ?? "argmax-numpy") as never,
          recalibrateBN: undefined,
          partial: false,
        });
        const after = await noiseSweep(m, test, {
          ...sweepOptionsFor(configs[gi], { modelId: "tiny" }),
          partial: false,
        });
        assertSameRows(before, after, `${argv.join(" ")} [${g}]`);
      }
    }
  } finally {
    m.dispose();
  }
});

Deno.test("calibration images: one rule for the CLI and the notebooks (stratified subset of the full training split, seed recal:<noise seed>)", () => {
  const c = resolveSweepConfig({ etas: [0.1], seed: 3, recalibrateBatches: 2, recalibrateBatchSize: 16 });
  const cal = calibrationImages(c, DATASET, STATS)!;
  const sub = stratifiedSubset(DATASET.train, 32, "recal:3");
  assert.equal(cal.n, 32);
  assert.deepEqual(cal.x, normalize(sub, STATS));
  assert.equal(cal.label, "32 training images (fake CIFAR-10)");
  // independent of the model's own training subset and test size: the CLI's request and a notebook's agree
  const cli = resolveSweepFlags(
    flags(["--eta", "0.1", "--seed", "3", "--recalibrate-bn", "2", "--recalibrate-batch-size", "16"]),
  )
    .configs[0];
  const fromCli = sweepData(cli, DATASET, { config: { testSize: 30, subsetSeed: 1 }, normalization: STATS });
  assert.deepEqual(fromCli.calibration!.x, cal.x);
  assert.equal(calibrationImages({ ...c, recalibrateBatches: 0 }, DATASET, STATS), undefined);
  // another noise seed picks other images
  assert.notDeepEqual(calibrationImages({ ...c, seed: 4 }, DATASET, STATS)!.x, cal.x);
  // the test subset: the model's (null) or a stratified subset with the model's subset seed; too large is an error
  assert.deepEqual(fromCli.testSubset, { size: 30, subsetSeed: 1 });
  assert.deepEqual(fromCli.test.x, testData({ testSize: 30, subsetSeed: 1 }, DATASET, STATS).x);
  const ten = sweepData({ ...cli, testSize: 10 }, DATASET, {
    config: { testSize: 30, subsetSeed: 1 },
    normalization: STATS,
  });
  assert.deepEqual(ten.testSubset, { size: 10, subsetSeed: 1 });
  assert.throws(
    () => sweepData({ ...cli, testSize: 61 }, DATASET, { config: MODEL_CFG, normalization: STATS }),
    named("testSize", /^testSize: 61 is larger than the cifar10 test split \(60\)/),
  );
});

// ---------------------------------------------------------------------------------------------
// the cache key

Deno.test("sweepCacheKey: config hash + model + snapshot + data copy/test subset + backend + numerics; testSize bound", () => {
  const base = {
    config: { etas: [0, 0.1] },
    modelId: "m",
    dataId: "cifar10-jpeg-0123456789ab",
    testSubset: { size: 100, subsetSeed: 0 },
    backend: "cpu",
  };
  const k = sweepCacheKey(base);
  assert.equal(k.numerics, NUMERICS_VERSION);
  assert.equal(k.configHash, sweepConfigHash({ etas: [0, 0.1], testSize: 100 }));
  assert.deepEqual(
    Object.keys(k).sort(),
    [
      "backend",
      "config",
      "configHash",
      "dataId",
      "kind",
      "modelId",
      "numerics",
      "snapshotStep",
      "testSubset",
    ],
  );
  const same = [
    { ...base, config: { etas: [0, 0.1], testSize: 100 } }, // the model's size spelled out
    { ...base, config: { ...DEFAULT_SWEEP_CONFIG, etas: [0, 0.1] } },
    { ...base, snapshotStep: null },
  ];
  for (const s of same) assert.equal(sweepCachePath(sweepCacheKey(s)), sweepCachePath(k), JSON.stringify(s));
  const other = [
    { ...base, config: { etas: [0, 0.1], draws: 3 } },
    { ...base, config: { etas: [0, 0.1], recalibrateBatches: 1 } },
    { ...base, modelId: "n" },
    { ...base, snapshotStep: 40 },
    { ...base, dataId: "cifar10-binary-0123456789ab" },
    { ...base, testSubset: { size: 200, subsetSeed: 0 } },
    { ...base, testSubset: { size: 100, subsetSeed: 1 } },
    { ...base, backend: "onednn" },
  ];
  for (const o of other) {
    assert.notEqual(sweepCachePath(sweepCacheKey(o)), sweepCachePath(k), JSON.stringify(o));
  }
  assert.throws(() => sweepCacheKey({ ...base, config: { etas: [0] } }), named("etas", /^etas:/));
});

Deno.test("cachedSweep legacyKeys: an entry (or partial file) stored under the old key is found, copied to the new key, not recomputed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-legacy-cache-" });
  const opts = { resultsDir: dir };
  const oldKey = { kind: "noiseSweep", modelId: "m", snapshotStep: null, seed: "1" };
  const newKey = { kind: "noiseSweep/config", modelId: "m", configHash: "abc" };
  try {
    const stored = await cachedSweep(oldKey, () => Promise.resolve({ rows: [1, NaN] }), opts);
    assert.equal(stored.fromCache, false);
    let calls = 0;
    const compute = () => (calls++, Promise.resolve({ rows: [9] }));
    const hit = await cachedSweep(newKey, compute, { ...opts, legacyKeys: () => [oldKey] });
    assert.equal(hit.fromCache, true);
    assert.equal(calls, 0);
    assert.deepStrictEqual(hit.result, { rows: [1, NaN] });
    assert.equal(hit.path, sweepCachePath(newKey, opts));
    const copied = parseExact<Record<string, unknown>>(await Deno.readTextFile(hit.path));
    assert.deepEqual(copied.key, newKey);
    assert.equal(copied.migratedFrom, sweepCachePath(oldKey, opts).split("/").pop()!.replace(".json", ""));
    // from now on the new entry serves it directly (legacy keys not even computed)
    const again = await cachedSweep(newKey, compute, {
      ...opts,
      legacyKeys: () => assert.fail("legacy keys computed on a hit"),
    });
    assert.equal(again.fromCache, true);

    // an unfinished sweep's partial file under the old key is moved to the new key's and resumed
    const oldKey2 = { ...oldKey, seed: "2" };
    const newKey2 = { ...newKey, configHash: "def" };
    await Deno.writeTextFile(sweepPartialPath(oldKey2, opts), '{"kind":"noiseSweepPartial"}');
    let sawPartial = "";
    const r = await cachedSweep(newKey2, async (ctx) => {
      sawPartial = await Deno.readTextFile(ctx.partialPath);
      return { rows: [2] };
    }, { ...opts, legacyKeys: () => [oldKey2] });
    assert.equal(r.fromCache, false);
    assert.equal(sawPartial, '{"kind":"noiseSweepPartial"}');
    await assert.rejects(Deno.stat(sweepPartialPath(oldKey2, opts)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepVariant (notebooks) end to end: rows equal the old path's, stored under sweepCacheKey, served from it; an entry under the old key is reused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-sweep-variant-" });
  const saved = Deno.env.get("NOISELAB_RESULTS_DIR");
  Deno.env.set("NOISELAB_RESULTS_DIR", dir);
  const m = tinyModel();
  try {
    const test = await testSplit(m);
    const p = resolveParams("03", "smoke", {
      etas: [0, 0.3, 1.2],
      draws: 2,
      recalibrateBatches: 1,
      testSize: 20,
      fastPath: "off",
    });
    const tv = {
      key: "tiny-bn",
      label: "tiny + BN",
      model: "resnet8",
      bn: "all",
      seed: 0,
      bnLayers: 7,
      bnSlots: 7,
      trained: { id: "tinyid", model: m, test, config: MODEL_CFG, normalization: STATS, path: dir },
    } as unknown as TrainedVariant;
    const olds = oldConditions(p);
    const news = newConditions(p);
    const oldPath = async (i: number) => {
      const old = olds[i];
      return await noiseSweep(m, { x: test.x, labels: test.labels, label: "test" }, {
        etas: p.etas,
        draws: p.draws,
        seed: p.noiseSeed,
        modelId: "tinyid",
        spec: old.spec,
        scoring: p.scoring,
        recalibrateBN: oldNotebookRecal(p, Boolean(old.recalibrate)),
        partial: false,
      });
    };
    // computed through the config and stored under the new key
    const ri = olds.findIndex((c) => c.key === "recal");
    const first = await sweepVariant(p, tv, news[ri], DATASET);
    assert.equal(first.fromCache, false);
    assertSameRows(await oldPath(ri), first.result, "recal via sweepVariant");
    const key = sweepCacheKey({
      config: sweepConfigFor(p, news[ri]),
      modelId: "tinyid",
      snapshotStep: null,
      dataId: DATASET.dataId,
      testSubset: { size: 20, subsetSeed: 0 },
      backend: "cpu",
    });
    assert.ok((await Deno.stat(sweepCachePath(key))).isFile, "entry under sweepCacheKey");
    const again = await sweepVariant(p, tv, news[ri], DATASET);
    assert.equal(again.fromCache, true);
    assertSameRows(first.result, again.result, "served from the cache");

    // an entry stored under the pre-config key (as the old sweepVariant wrote it) is found: nothing recomputed
    const ki = olds.findIndex((c) => c.key === "stats");
    const oldResult = await oldPath(ki);
    const oldKey = {
      ...sweepKey({
        modelId: "tinyid",
        data: { x: test.x, labels: test.labels },
        dataId: DATASET.dataId,
        etas: p.etas,
        draws: p.draws,
        seed: p.noiseSeed,
        spec: olds[ki].spec,
        scoring: p.scoring,
        recalibrateBN: null,
      }),
      snapshotStep: null,
    };
    const marked = { ...oldResult, resumedDraws: 12345 }; // tells the stored entry from a recomputation
    await cachedSweep(oldKey, () => Promise.resolve(marked));
    const reused = await sweepVariant(p, tv, news[ki], DATASET);
    assert.equal(reused.fromCache, true);
    assert.equal(reused.result.resumedDraws, 12345, "the old entry was served");
    assertSameRows(oldResult, reused.result, "old entry");
  } finally {
    m.dispose();
    if (saved === undefined) Deno.env.delete("NOISELAB_RESULTS_DIR");
    else Deno.env.set("NOISELAB_RESULTS_DIR", saved);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fastPath: off by default and left out of the hash there; --fast-path sets it; sweepOptionsFor passes it", () => {
  const base = resolveSweepConfig({ etas: [0.1] });
  assert.equal(base.fastPath, "off");
  assert.equal(sweepConfigHash({ etas: [0.1], fastPath: "off" }), sweepConfigHash({ etas: [0.1] }));
  assert.notEqual(sweepConfigHash({ etas: [0.1], fastPath: "fp32" }), sweepConfigHash({ etas: [0.1] }));
  assert.throws(
    () => resolveSweepConfig({ etas: [0.1], fastPath: "fp16" as never }),
    /^NoiselabError: fastPath: /,
  );
  assert.equal(resolveSweepFlags(flags(["--eta", "0.1", "--fast-path", "bf16"])).configs[0].fastPath, "bf16");
  const o = (fastPath: "off" | "fp32" | "bf16") =>
    sweepOptionsFor(resolveSweepConfig({ etas: [0.1], fastPath }), { modelId: "m" }).fastPath;
  assert.deepEqual([o("off"), o("fp32"), o("bf16")], [undefined, true, "bf16"]);
});

Deno.test("bf16 sweep keys name the fast path's arithmetic (native plans, per-image fallback); others unchanged", () => {
  const base = resolveSweepConfig({ etas: [0, 0.1] });
  const view = (c: Partial<typeof base>) => sweepKeyView(resolveSweepConfig({ ...base, ...c }));
  assert.equal(view({ fastPath: "bf16" }).fastPathArithmetic, BF16_FAST_PATH_ARITHMETIC);
  assert.equal(BF16_FAST_PATH_ARITHMETIC, "bf16-activations/per-image");
  assert.equal("fastPathArithmetic" in view({ fastPath: "fp32" }), false);
  assert.equal("fastPathArithmetic" in view({}), false);
  const input = {
    modelId: "m",
    data: { dataHash: "h" },
    etas: [0, 0.1],
    draws: 1,
    seed: 0,
    backend: "onednn",
  };
  assert.equal(sweepKey({ ...input, fastPath: "bf16" }).fastPathArithmetic, BF16_FAST_PATH_ARITHMETIC);
  assert.equal("fastPathArithmetic" in sweepKey({ ...input, fastPath: true }), false);
});

Deno.test("noise: a clean model with non-finite logits gets a warning line; a finite one none", () => {
  assert.equal(cleanWarning(0), null);
  assert.equal(cleanWarning(NaN), null);
  const w = cleanWarning(1);
  assert.ok(w && /already not all finite on 100\.00%/.test(w) && /lower --lr/.test(w), w ?? "");
});
