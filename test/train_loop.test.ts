/**
 * The training loop on real CIFAR-10 images (tiny model, a few dozen images):
 * bitwise determinism, resume after a simulated kill, store reuse.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { accuracy, buildModel } from "../lib/models/mod.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { loadDataset } from "../lib/data/mod.ts";
import {
  checkpointPath,
  listSnapshots,
  loadCheckpoint,
  loadSnapshotInto,
  snapshotSteps,
  TRAIN_EVAL_BATCH,
  type TrainConfig,
  type TrainedModel,
  trainOrLoad,
} from "../lib/train/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { InterruptedError } from "../lib/util/interrupt.ts";

await initBackend();
const dataset = await loadDataset({ dataset: "cifar10" });

const tiny: Partial<TrainConfig> = {
  model: "resnet8",
  width: 2,
  trainSize: 48,
  testSize: 20,
  epochs: 3,
  batchSize: 16,
  augment: true,
  optimizer: "adam",
  lr: 1e-2,
  schedule: "cosine",
};

function weightsOf(t: TrainedModel): Float32Array[] {
  return t.model.weights.map((w) => w.read().dataSync() as Float32Array);
}

function assertSameWeights(a: Float32Array[], b: Float32Array[]) {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    assert.equal(x.length, b[i].length);
    for (let j = 0; j < x.length; j++) {
      if (!Object.is(x[j], b[i][j])) assert.fail(`weight ${i}[${j}]: ${x[j]} != ${b[i][j]}`);
    }
  });
}

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "noiselab-train-" });
}

Deno.test("same config + seed => bitwise same weights; another seed => different", async () => {
  const [d1, d2, d3] = [await tmp(), await tmp(), await tmp()];
  const a = (await trainOrLoad(tiny, { resultsDir: d1, dataset }))!;
  const b = (await trainOrLoad(tiny, { resultsDir: d2, dataset }))!;
  assert.equal(a.loaded, false);
  assert.equal(a.id, b.id);
  assertSameWeights(weightsOf(a), weightsOf(b));
  assert.equal(a.cleanAccuracy, b.cleanAccuracy);
  const c = (await trainOrLoad({ ...tiny, seed: 1 }, { resultsDir: d3, dataset }))!;
  assert.notEqual(c.id, a.id);
  const wa = weightsOf(a), wc = weightsOf(c);
  assert.ok(wa.some((x, i) => x.some((v, j) => v !== wc[i][j])), "seed 1 trained the same weights as seed 0");
  // the history is complete and the BN moving statistics moved away from their init (0 / 1)
  assert.equal(a.history.length, 3);
  const mm = a.model.getLayer("bn1").getWeights()[2].dataSync();
  assert.ok(mm.some((v) => v !== 0), "BN moving mean never updated");
  for (const t of [a, b, c]) t.model.dispose();
  for (const d of [d1, d2, d3]) await Deno.remove(d, { recursive: true });
});

Deno.test("a run killed after epoch 1 resumes and ends with the uninterrupted run's weights", async () => {
  const [d1, d2] = [await tmp(), await tmp()];
  const cfg = { ...tiny, bn: 3 as const, optimizer: "sgd" as const, momentum: 0.9, nesterov: true, lr: 0.05 };
  const full = (await trainOrLoad(cfg, { resultsDir: d1, dataset }))!;
  const stopped = await trainOrLoad(cfg, { resultsDir: d2, dataset, stopAfterEpoch: 1 });
  assert.equal(stopped, undefined);
  const dir = join(d2, "models", full.id);
  assert.ok((await Deno.stat(checkpointPath(dir))).isFile, "checkpoint missing after the kill");
  await assert.rejects(Deno.stat(join(dir, "meta.json")), "meta.json must not exist for an unfinished run");
  const epochs: number[] = [];
  const resumed = (await trainOrLoad(cfg, {
    resultsDir: d2,
    dataset,
    onProgress: (p) => p.phase === "epoch-end" && epochs.push(p.epoch),
  }))!;
  assert.deepEqual(epochs, [2, 3], "resume must start at epoch 2");
  assert.equal(resumed.provenance.resumedFromEpoch, 1);
  assertSameWeights(weightsOf(resumed), weightsOf(full));
  assert.deepEqual(resumed.history.map((h) => h.loss), full.history.map((h) => h.loss));
  await assert.rejects(
    Deno.stat(join(dir, "checkpoint")),
    "checkpoint should be removed once the model is stored",
  );
  full.model.dispose();
  resumed.model.dispose();
  for (const d of [d1, d2]) await Deno.remove(d, { recursive: true });
});

Deno.test("trajectory snapshots: evenly spaced, identical after a resume, reload to their recorded accuracy", async () => {
  assert.deepEqual(snapshotSteps(9, 2), [3, 6]);
  assert.deepEqual(snapshotSteps(3, 7), [1, 2]); // deduplicated, never the final step
  assert.deepEqual(snapshotSteps(100, 0), []);
  const [d1, d2] = [await tmp(), await tmp()];
  const full = (await trainOrLoad(tiny, { resultsDir: d1, dataset, snapshots: 4 }))!;
  const snaps = await listSnapshots(full.path);
  // 3 epochs x 3 steps = 9 steps; 4 snapshots at round(9j/5) = 2, 4, 5, 7
  assert.deepEqual(snaps.map((s) => s.step), [2, 4, 5, 7]);
  assert.deepEqual(snaps.map((s) => s.imagesSeen), [32, 48 + 16, 48 + 32, 96 + 16]);
  await trainOrLoad(tiny, { resultsDir: d2, dataset, snapshots: 4, stopAfterEpoch: 2 });
  await trainOrLoad(tiny, { resultsDir: d2, dataset, snapshots: 4 });
  const again = await listSnapshots(join(d2, "models", full.id));
  for (let i = 0; i < snaps.length; i++) {
    assert.deepEqual(await Deno.readFile(again[i].path), await Deno.readFile(snaps[i].path));
  }
  // a snapshot differs from the final weights and reloads to the accuracy recorded for it
  const final = full.model.weights.map((w) => w.read().dataSync().slice());
  await loadSnapshotInto(full.model, snaps[1].path);
  const w = full.model.weights.map((x) => x.read().dataSync());
  assert.ok(w.some((x, i) => x.some((v, j) => v !== final[i][j])));
  assert.equal(
    await accuracy(full.model, full.test.x, full.test.labels, TRAIN_EVAL_BATCH),
    snaps[1].testAccuracy,
  );
  full.model.dispose();
  for (const d of [d1, d2]) await Deno.remove(d, { recursive: true });
});

Deno.test("an abort signal stops between steps and keeps the previous checkpoint", async () => {
  const d = await tmp();
  const ac = new AbortController();
  const cfg = { ...tiny, epochs: 2 };
  await assert.rejects(
    trainOrLoad(cfg, {
      resultsDir: d,
      dataset,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === "epoch-end" && p.epoch === 1) ac.abort();
      },
    }),
    /aborted during epoch 2/,
  );
  const resumed = (await trainOrLoad(cfg, { resultsDir: d, dataset }))!;
  assert.equal(resumed.provenance.resumedFromEpoch, 1);
  resumed.model.dispose();
  await Deno.remove(d, { recursive: true });
});

Deno.test("training leaks no tensors: after disposing the model the tensor count is back", async () => {
  const d = await tmp();
  const before = tf.memory().numTensors;
  const t = (await trainOrLoad({ ...tiny, epochs: 2, seed: 3 }, { resultsDir: d, dataset }))!;
  const withModel = tf.memory().numTensors;
  assert.equal(withModel - before, t.model.weights.length, "only the model's weights may stay alive");
  t.model.dispose();
  assert.equal(tf.memory().numTensors, before);
  await Deno.remove(d, { recursive: true });
});

Deno.test("trainOrLoad returns the stored model without training when the id exists", async () => {
  const d = await tmp();
  const cfg = { ...tiny, epochs: 1 };
  const first = (await trainOrLoad(cfg, { resultsDir: d, dataset }))!;
  let reports = 0;
  const second = (await trainOrLoad(cfg, { resultsDir: d, dataset, onProgress: () => reports++ }))!;
  assert.equal(second.loaded, true);
  assert.equal(reports, 0, "the stored model was retrained");
  assert.equal(second.id, first.id);
  assert.equal(second.path, first.path);
  assert.equal(second.cleanAccuracy, first.cleanAccuracy);
  assertSameWeights(weightsOf(second), weightsOf(first));
  assert.equal(second.provenance.seed, 0);
  assert.equal(second.provenance.dataId, dataset.dataId);
  assert.equal(second.test.n, 20);
  // loadOnly on an unknown config fails without training
  await assert.rejects(
    trainOrLoad({ ...cfg, seed: 9 }, { resultsDir: d, dataset, loadOnly: true }),
    NoiselabError,
  );
  first.model.dispose();
  second.model.dispose();
  await Deno.remove(d, { recursive: true });
});

Deno.test("a corrupt checkpoint is reported with its path", async () => {
  const d = await tmp();
  const cfg = { ...tiny, epochs: 2, seed: 5 };
  await trainOrLoad(cfg, { resultsDir: d, dataset, stopAfterEpoch: 1 });
  const [entry] = [...Deno.readDirSync(join(d, "models"))];
  const ck = checkpointPath(join(d, "models", entry.name));
  const bytes = await Deno.readFile(ck);
  await Deno.writeFile(ck, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(trainOrLoad(cfg, { resultsDir: d, dataset }), (e: unknown) => {
    assert.ok(e instanceof NoiselabError);
    assert.ok(e.message.includes(ck), e.message);
    return true;
  });
  await Deno.remove(d, { recursive: true });
});

Deno.test("a diverging run stops with an error naming lr and stores no model", async () => {
  const d = await tmp();
  const cfg = {
    ...tiny,
    optimizer: "sgd" as const,
    lr: 1e12,
    momentum: 0.9,
    schedule: "constant" as const,
    epochs: 2,
  };
  await assert.rejects(
    // without BN the loss itself turns non-finite (with BN the moving variance overflows first: the
    // weight check, tested below); no snapshots, whose weight check could come first
    trainOrLoad({ ...cfg, bn: "none" }, { resultsDir: d, dataset, snapshots: 0 }),
    (e: unknown) =>
      e instanceof NoiselabError && e.subject === "lr" && /diverged \(loss (NaN|Infinity)/.test(e.message),
  );
  let models: Deno.DirEntry[] = [];
  try {
    models = [...Deno.readDirSync(join(d, "models"))];
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e; // nothing written at all: fine
  }
  for (const m of models) {
    assert.throws(() => Deno.statSync(join(d, "models", m.name, "meta.json")), "no finished model stored");
  }
  await Deno.remove(d, { recursive: true });
});

Deno.test("a run whose BN moving variance overflows while the loss stays finite stops and stores no model", async () => {
  const d = await tmp();
  // VGG with BN at a huge lr: the batch-statistics loss stays finite, the moving variance does not
  const cfg: Partial<TrainConfig> = {
    model: "vgg11",
    width: 4,
    trainSize: 128,
    testSize: 20,
    epochs: 1,
    batchSize: 16,
    augment: false,
    optimizer: "sgd",
    momentum: 0.9,
    lr: 1000,
    schedule: "constant",
  };
  await assert.rejects(
    trainOrLoad(cfg, { resultsDir: d, dataset }),
    (e: unknown) =>
      e instanceof NoiselabError && e.subject === "lr" &&
      /diverged \(\d+ non-finite weight values .*bn\d+\/moving_variance/.test(e.message),
  );
  for (const m of Deno.readDirSync(join(d, "models"))) {
    assert.throws(() => Deno.statSync(join(d, "models", m.name, "meta.json")), "no finished model stored");
    assert.ok(!(await loadCheckpoint(join(d, "models", m.name))), "no checkpoint of the diverged epoch");
    // the snapshots written before the divergence hold finite weights only
    const probe = buildModel("vgg11", { width: 4, bn: "all" });
    for (const snap of await listSnapshots(join(d, "models", m.name))) {
      await loadSnapshotInto(probe, snap.path);
      for (const w of probe.weights) {
        assert.ok((w.read().dataSync() as Float32Array).every(Number.isFinite), `${snap.path}: ${w.name}`);
      }
    }
    probe.dispose();
  }
  await Deno.remove(d, { recursive: true });
});

Deno.test("Kernel > Interrupt mid-epoch stops between steps, keeps the last epoch's checkpoint; the re-run ends bitwise equal", async () => {
  const g = globalThis as unknown as { __noiselab?: { interruptAt?: number } };
  const [d1, d2] = [await tmp(), await tmp()];
  const cfg = { ...tiny, epochs: 2, batchSize: 8 }; // 6 steps per epoch
  try {
    const full = (await trainOrLoad(cfg, { resultsDir: d1, dataset }))!;
    const steps: string[] = [];
    await assert.rejects(
      trainOrLoad(cfg, {
        resultsDir: d2,
        dataset,
        onProgress: (p) => {
          if (p.phase !== "train") return;
          steps.push(`${p.epoch}.${p.step}`);
          // what the kernel wrapper does on Kernel > Interrupt: record the time
          if (p.epoch === 2 && p.step === 1) g.__noiselab = { interruptAt: performance.now() };
        },
      }),
      (e: unknown) => e instanceof InterruptedError && /^training [0-9a-f]{12} interrupted/.test(e.message),
    );
    assert.equal(steps.at(-1), "2.1", "stopped in epoch 2 after its first step");
    const dir = join(d2, "models", full.id);
    const ck = await loadCheckpoint(dir);
    assert.equal(ck?.epoch, 1, "the checkpoint is the one of epoch 1, not a half epoch");
    assert.equal(ck?.globalStep, 6);
    await assert.rejects(Deno.stat(join(dir, "meta.json")), "an interrupted run stores no finished model");
    // the interrupt above is older than the re-run: it does not stop it
    const epochs: number[] = [];
    const resumed = (await trainOrLoad(cfg, {
      resultsDir: d2,
      dataset,
      onProgress: (p) => p.phase === "epoch-end" && epochs.push(p.epoch),
    }))!;
    assert.deepEqual(epochs, [2]);
    assert.equal(resumed.provenance.resumedFromEpoch, 1);
    assertSameWeights(weightsOf(resumed), weightsOf(full));
    assert.equal(resumed.cleanAccuracy, full.cleanAccuracy);
    assert.deepEqual(resumed.history.map((h) => h.loss), full.history.map((h) => h.loss));
    full.model.dispose();
    resumed.model.dispose();
  } finally {
    delete g.__noiselab;
    for (const d of [d1, d2]) await Deno.remove(d, { recursive: true });
  }
});
