/**
 * Guard of `NUMERICS_VERSION` (lib/util/version.ts): the version is part of
 * every model id and sweep key instead of a hash of the lib/ sources, so a
 * change that alters numbers must come with a bump, and an edit that does not
 * (a comment, the CLI) must keep every id.
 *
 * A fixed tiny training run and a fixed noise sweep on the pure-JS tfjs `cpu`
 * backend (deterministic on any x86 machine) are hashed and compared with
 * `lib/util/numerics_fingerprint.json`. Re-record with
 * `NOISELAB_UPDATE_FINGERPRINT=1 deno test -A test/numerics_version.test.ts`.
 *
 * What it cannot see: kernels of the `noiselab` engine (oneDNN picks
 * ISA-specific implementations, so its bits are not portable). Engine changes
 * that alter numbers still need a bump by hand.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { loadDataset } from "../lib/data/mod.ts";
import { predictedClass, predictLogits, SCORING_RULES } from "../lib/models/predict.ts";
import { defaultEvaluate, type Evaluator, noiseSweep, sweepKey, type SweepRow } from "../lib/noise/mod.ts";
import { modelId, resolveTrainConfig, type TrainConfig, trainOrLoad } from "../lib/train/mod.ts";
import { readJsonIfExists, writeJsonAtomic } from "../lib/util/fs.ts";
import { hashObject } from "../lib/util/hash.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { libVersion, NUMERICS_VERSION } from "../lib/util/version.ts";

const FINGERPRINT = join(projectRoot, "lib", "util", "numerics_fingerprint.json");
const UPDATE = Deno.env.get("NOISELAB_UPDATE_FINGERPRINT") === "1";
const RECORD = "NOISELAB_UPDATE_FINGERPRINT=1 deno test -A test/numerics_version.test.ts";

interface Fingerprint {
  numericsVersion: string;
  train: string;
  sweep: string;
}

/**
 * The fixed run: the Keras-example recipe knobs (projection shortcut, BN
 * epsilon 1e-3), SGD Nesterov with a one-cycle schedule, label smoothing,
 * augmentation and weight decay, so every part of the training numerics runs.
 */
const CONFIG: Partial<TrainConfig> = {
  dataset: "cifar10",
  source: "jpeg", // the vendored copy: the same pixels on every machine
  trainSize: 32,
  testSize: 32,
  subsetSeed: 0,
  model: "resnet8",
  width: 2,
  bn: "all",
  shortcut: "projection",
  bnEpsilon: 1e-3,
  bnMomentum: 0.9,
  optimizer: "sgd",
  lr: 0.05,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 1e-4,
  weightDecayMode: "coupled",
  schedule: "onecycle",
  epochs: 2,
  batchSize: 16,
  augment: true,
  labelSmoothing: 0.1,
  seed: 0,
};

/** Noise on every stored tensor, large enough that some BN moving variances go negative (NaN logits). */
const SWEEP = { etas: [0, 0.5, 3], draws: 2, seed: 0, targets: ["all" as const] };

function float64Bytes(xs: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(xs).buffer);
}

/** The bytes of `v` with every NaN written as one canonical NaN (NaN payloads differ between CPUs). */
function canonicalBytes(v: Float32Array): Uint8Array {
  const c = Float32Array.from(v);
  const u = new Uint32Array(c.buffer);
  for (let i = 0; i < c.length; i++) if (Number.isNaN(c[i])) u[i] = 0x7fc00000;
  return new Uint8Array(c.buffer);
}

function rowNumbers(r: SweepRow): number[] {
  return [r.eta, r.draw, r.accuracy, r.cleanAccuracy, r.normalizedAccuracy, r.nonFiniteShare];
}

async function computeFingerprint(): Promise<Fingerprint & { rows: SweepRow[] }> {
  const dataset = await loadDataset({ dataset: "cifar10", source: "jpeg" });
  const results = await Deno.makeTempDir({ prefix: "noiselab-numerics-" });
  try {
    const t = (await trainOrLoad(CONFIG, { resultsDir: results, dataset, snapshots: 0 }))!;
    assert.equal(t.loaded, false);
    const train = createHash("sha256");
    // by position and shape: tfjs-layers makes variable names unique per process (`_1` suffixes)
    for (const [i, w] of t.model.weights.entries()) {
      const v = w.read().dataSync() as Float32Array;
      train.update(`${i}:${w.shape.join("x")}\n`);
      train.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
    // the stored clean accuracy and the per-epoch losses/accuracies (not the timings)
    train.update(float64Bytes([
      t.cleanAccuracy,
      ...t.history.flatMap((h) => [h.epoch, h.loss, h.trainAccuracy, h.testAccuracy, h.lr]),
    ]));

    // the rows alone are coarse (accuracy on 32 images moves in steps of 1/32, and a changed scoring
    // rule can keep the count): the evaluator also hashes every noisy (and clean) weight, the logits
    // and each image's predicted class under the rule, then scores through the sweep's own default
    // evaluator. The second rule's sweep sees the same draws in the same order: its logits are reused.
    const sweep = createHash("sha256");
    const logitsOfCall: Float32Array[] = [];
    let call = 0;
    const evaluate: Evaluator = async (model, x, labels, batchSize, scoring) => {
      const k = call++ % (1 + SWEEP.etas.length * SWEEP.draws);
      if (scoring === SCORING_RULES[0]) {
        for (const [i, w] of model.weights.entries()) {
          sweep.update(`${i}:${w.shape.join("x")}\n`);
          sweep.update(canonicalBytes(w.read().dataSync() as Float32Array));
        }
        logitsOfCall[k] = await predictLogits(model, x, batchSize);
        sweep.update(canonicalBytes(logitsOfCall[k]));
      }
      const logits = logitsOfCall[k];
      const classes = logits.length / labels.length;
      const predicted = Int32Array.from(labels, (_, i) => predictedClass(logits, i, classes, scoring));
      sweep.update(new Uint8Array(predicted.buffer));
      return await defaultEvaluate(model, x, labels, batchSize, scoring);
    };
    const rows: SweepRow[] = [];
    for (const scoring of SCORING_RULES) {
      const res = await noiseSweep(t.model, { x: t.test.x, labels: t.test.labels }, {
        etas: SWEEP.etas,
        draws: SWEEP.draws,
        seed: SWEEP.seed,
        spec: { targets: SWEEP.targets },
        modelId: "fingerprint",
        scoring,
        evaluate,
      });
      sweep.update(`${scoring}\n`);
      sweep.update(
        float64Bytes([res.cleanAccuracy, res.cleanNonFiniteShare, ...res.rows.flatMap(rowNumbers)]),
      );
      rows.push(...res.rows);
    }
    t.model.dispose();
    return {
      numericsVersion: NUMERICS_VERSION,
      train: train.digest("hex"),
      sweep: sweep.digest("hex"),
      rows,
    };
  } finally {
    await Deno.remove(results, { recursive: true });
  }
}

Deno.test("numerics fingerprint: a fixed training run and noise sweep match NUMERICS_VERSION's record", async () => {
  assert.equal(await initBackend("cpu"), "cpu");
  const now = await computeFingerprint();

  // the sweep must reach the non-finite paths, else the scoring rule is not covered
  const noisy = now.rows.filter((r) => r.eta === Math.max(...SWEEP.etas));
  assert.ok(
    noisy.some((r) => r.nonFiniteShare > 0),
    `eta ${Math.max(...SWEEP.etas)} gave no NaN logits; raise it so that BN variances go negative`,
  );
  const byRule = (rule: string) => noisy.filter((r) => r.scoring === rule).map((r) => r.accuracy);
  assert.notDeepEqual(byRule("argmax-numpy"), byRule("nonfinite-wrong"), "the two scoring rules must differ");

  const record: Fingerprint = { numericsVersion: now.numericsVersion, train: now.train, sweep: now.sweep };
  if (UPDATE) {
    await writeJsonAtomic(FINGERPRINT, record);
    console.log(`recorded ${FINGERPRINT}: ${JSON.stringify(record)}`);
    return;
  }
  const stored = await readJsonIfExists<Fingerprint>(FINGERPRINT);
  if (!stored) assert.fail(`${FINGERPRINT} is missing; record it with ${RECORD}`);
  if (stored.numericsVersion !== NUMERICS_VERSION) {
    assert.fail(
      `NUMERICS_VERSION is "${NUMERICS_VERSION}" but lib/util/numerics_fingerprint.json was recorded for ` +
        `"${stored.numericsVersion}": re-record it with ${RECORD}`,
    );
  }
  const changed = (["train", "sweep"] as const).filter((k) => stored[k] !== record[k]);
  if (changed.length) {
    assert.fail(
      `the ${changed.join(" and ")} numbers changed but NUMERICS_VERSION is still "${NUMERICS_VERSION}" ` +
        `(${
          changed.map((k) => `${k}: recorded ${stored[k].slice(0, 12)}, now ${record[k].slice(0, 12)}`).join(
            "; ",
          )
        }). ` +
        `If the change is intended, bump NUMERICS_VERSION in lib/util/version.ts (and add a line to its ` +
        `history comment), then re-record with ${RECORD}; stored models and sweeps are then recomputed. ` +
        `If it is not intended, the change broke reproducibility.`,
    );
  }
});

Deno.test("model id and sweep key: config, data, backend and NUMERICS_VERSION only, no source hash", () => {
  const cfg = resolveTrainConfig(CONFIG);
  const id = modelId(cfg, "cifar10-jpeg-0123456789ab", "cpu");
  // trainNoise (issue #13) and precision (issue #11) are left out of the id at 0 / "fp32", so ids from
  // before them exist are unchanged
  const { trainNoise: _off, precision: _fp32, ...config } = cfg;
  assert.equal(cfg.trainNoise, 0);
  assert.equal(cfg.precision, "fp32");
  assert.equal(
    id,
    hashObject({
      config,
      dataId: "cifar10-jpeg-0123456789ab",
      backend: "cpu",
      numerics: NUMERICS_VERSION,
    }),
  );
  assert.match(id, /^[0-9a-f]{12}$/);
  const keyInput = {
    modelId: id,
    data: { dataHash: "00112233445566778899" },
    dataId: "cifar10-jpeg-0123456789ab",
    etas: [0, 0.1],
    draws: 3,
    seed: 0,
    spec: { targets: ["all" as const] },
    backend: "cpu",
  };
  const key = sweepKey(keyInput);
  assert.equal(key.numerics, NUMERICS_VERSION);

  // an edit of any lib/ source (a comment) changes libVersion(); ids and keys must not move
  const saved = Deno.env.get("NOISELAB_LIB_VERSION");
  try {
    for (const v of ["comment-edit-a", "comment-edit-b"]) {
      Deno.env.set("NOISELAB_LIB_VERSION", v);
      assert.equal(libVersion(), v);
      assert.equal(modelId(cfg, "cifar10-jpeg-0123456789ab", "cpu"), id);
      const k = sweepKey(keyInput);
      assert.deepEqual(k, key);
      assert.ok(!JSON.stringify(k).includes(v), "the sweep key holds the source hash");
    }
  } finally {
    if (saved === undefined) Deno.env.delete("NOISELAB_LIB_VERSION");
    else Deno.env.set("NOISELAB_LIB_VERSION", saved);
  }
  // the real source hash appears nowhere in the key either
  const real = libVersion();
  assert.ok(!JSON.stringify(key).includes(real), `sweep key holds libVersion() ${real}`);
  assert.deepEqual(
    Object.keys(key).sort(),
    [
      "backend",
      "batchSize",
      "data",
      "dataId",
      "draws",
      "etas",
      "kind",
      "modelId",
      "numerics",
      "recalibrateBN",
      "scoring",
      "seed",
      "spec",
    ],
  );
  // the version is what moves them
  assert.notEqual(
    hashObject({
      config: cfg,
      dataId: "cifar10-jpeg-0123456789ab",
      backend: "cpu",
      numerics: NUMERICS_VERSION + "x",
    }),
    id,
  );
});
