/**
 * Resumable, interruptible noise sweeps (issue #9): a sweep interrupted the
 * way Kernel > Interrupt does it (lib/util/interrupt.ts: the kernel wrapper
 * records the time in `globalThis.__noiselab.interruptAt`) stops between
 * draws with InterruptedError, keeps its finished draws in a partial file, and
 * a re-run computes only the missing draws and returns rows bitwise equal to
 * an uninterrupted sweep — through `noiseSweep`'s `partial` option and through
 * the notebooks' sweep cache (lib/notebook/cache.ts `cachedSweep`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../lib/backend/mod.ts";
import { buildModel, predictLogits } from "../lib/models/mod.ts";
import {
  defaultEvaluate,
  type Evaluator,
  listWeights,
  noiseSweep,
  parseExact,
  stringifyExact,
  type SweepOptions,
  type SweepResult,
} from "../lib/noise/mod.ts";
import { cachedSweep, sweepCachePath, sweepPartialPath } from "../lib/notebook/cache.ts";
import { InterruptedError } from "../lib/util/interrupt.ts";
import { gaussianFill, makeRng } from "../lib/util/rng.ts";

await initBackend("cpu"); // reference backend: exact, deterministic

const S8: [number, number, number] = [8, 8, 3];
const g = globalThis as unknown as { __noiselab?: { interruptAt?: number } };

/** A small BN model with non-trivial weights (labels = its clean predictions). */
function model(): tfl.LayersModel {
  const m = buildModel("resnet8", { width: 4, inputShape: S8, bn: 3, seed: 2 });
  const rng = makeRng("resume-w");
  for (const w of listWeights(m)) {
    const n = w.variable.shape.reduce((a, b) => a! * b!, 1)!;
    const z = gaussianFill(rng, new Float32Array(n));
    const cur = w.variable.read().dataSync() as Float32Array;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      v[i] = w.kind === "moving_variance"
        ? 0.5 + rng()
        : w.kind === "kernel"
        ? cur[i] + 0.05 * z[i]
        : 0.1 * z[i];
    }
    const t = tf.tensor(v, w.variable.shape as number[]);
    w.variable.write(t);
    t.dispose();
  }
  return m;
}

const m = model();
const x = gaussianFill(makeRng("resume-x"), new Float32Array(24 * 8 * 8 * 3));
const logits = await predictLogits(m, x);
const labels = Array.from({ length: 24 }, (_, i) => {
  const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
  return row.indexOf(Math.max(...row));
});
const data = { x, labels, label: "synthetic" };

/** An evaluator that counts its calls. `bare`: returns the accuracy alone (rows' nonFiniteShare = NaN). */
function counting(bare = false): { evaluate: Evaluator; calls: () => number } {
  let n = 0;
  return {
    evaluate: async (...a) => {
      n++;
      const r = await defaultEvaluate(...a);
      return bare && typeof r !== "number" ? r.accuracy : r;
    },
    calls: () => n,
  };
}

const BASE: SweepOptions = {
  etas: [0, 0.3, 1.5],
  draws: 3,
  seed: 7,
  modelId: "resume-m",
  spec: { targets: ["all"] },
  batchSize: 8,
};
const TOTAL = 9;

/** Interrupt (as the kernel wrapper does) once `after` draws are done. */
function interruptAfter(after: number): SweepOptions["onProgress"] {
  return (p) => {
    if (p.done === after) g.__noiselab = { interruptAt: performance.now() };
  };
}

function weights(): Float32Array[] {
  return listWeights(m).map((w) => (w.variable.read().dataSync() as Float32Array).slice());
}

function assertSameResult(a: SweepResult, b: SweepResult) {
  assert.deepStrictEqual(b.rows, a.rows); // strict: numbers compared with Object.is (NaN == NaN, bitwise)
  assert.deepStrictEqual(b.summary, a.summary);
  assert.ok(Object.is(b.averageNormalizedAccuracy, a.averageNormalizedAccuracy));
  assert.ok(Object.is(b.cleanAccuracy, a.cleanAccuracy));
  assert.ok(Object.is(b.cleanNonFiniteShare, a.cleanNonFiniteShare));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const straightCount = counting();
const straight = await noiseSweep(m, data, { ...BASE, evaluate: straightCount.evaluate, partial: false });

Deno.test("noiseSweep interrupted after 4 of 9 draws resumes from its partial file: same rows bitwise, finished draws not recomputed", async () => {
  assert.equal(straightCount.calls(), 1 + TOTAL, "clean + one evaluation per draw");
  assert.ok(straight.rows.some((r) => r.accuracy < 1), "the noise changes predictions");
  const dir = await Deno.makeTempDir({ prefix: "noiselab-resume-" });
  const partial = join(dir, "sweep.partial.json");
  const before = weights();
  try {
    const first = counting();
    await assert.rejects(
      noiseSweep(m, data, { ...BASE, evaluate: first.evaluate, partial, onProgress: interruptAfter(4) }),
      (e: unknown) =>
        e instanceof InterruptedError && /^noise sweep of resume-m \(all\) interrupted/.test(e.message),
    );
    assert.equal(first.calls(), 1 + 4);
    assert.deepStrictEqual(weights(), before, "weights restored after the interrupt");
    const saved = parseExact<{ done: { i: number; k: number }[] }>(await Deno.readTextFile(partial));
    assert.deepEqual(saved.done.map((d) => [d.i, d.k]), [[0, 0], [0, 1], [0, 2], [1, 0]]);

    // re-run (the interrupt above is older than it: it does not stop it)
    const second = counting();
    const resumedFlags: boolean[] = [];
    const again = await noiseSweep(m, data, {
      ...BASE,
      evaluate: second.evaluate,
      partial,
      onProgress: (p) => resumedFlags.push(p.resumed),
    });
    assert.equal(
      second.calls(),
      TOTAL - 4,
      "only the 5 missing draws are evaluated (not the clean model either)",
    );
    assert.deepEqual(resumedFlags, [true, true, true, true, false, false, false, false, false]);
    assert.equal(again.resumedDraws, 4);
    assertSameResult(straight, again);
    assert.equal(await exists(partial), false, "the partial file is deleted once the sweep completes");
    assert.deepStrictEqual(weights(), before);
  } finally {
    delete g.__noiselab;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("noiseSweep ignores (and replaces) a partial file of another sweep", async () => {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-resume-" });
  const partial = join(dir, "sweep.partial.json");
  try {
    await assert.rejects(
      noiseSweep(m, data, { ...BASE, seed: 8, partial, onProgress: interruptAfter(2) }),
      InterruptedError,
    );
    assert.ok(await exists(partial));
    const c = counting();
    const r = await noiseSweep(m, data, { ...BASE, evaluate: c.evaluate, partial });
    assert.equal(c.calls(), 1 + TOTAL, "seed 8's draws are not seed 7's");
    assert.equal(r.resumedDraws, 0);
    assertSameResult(straight, r);
    assert.equal(await exists(partial), false);
  } finally {
    delete g.__noiselab;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cachedSweep: an interrupted sweep leaves <entry>.partial.json, the re-run resumes it, then the entry serves it (NaN kept)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-resume-cache-" });
  const key = { kind: "noiseSweep", test: "resume", seed: 7 };
  const opts = { resultsDir: dir };
  // bare accuracies: every row's nonFiniteShare is NaN, which the partial file and the entry must keep
  const ref = await noiseSweep(m, data, { ...BASE, evaluate: counting(true).evaluate, partial: false });
  assert.ok(ref.rows.every((r) => Number.isNaN(r.nonFiniteShare)));
  // as lib/notebook/study.ts does it: no partial option, awaits before the sweep starts
  const compute = (evaluate: Evaluator, onProgress?: SweepOptions["onProgress"]) => async () => {
    await new Promise((r) => setTimeout(r, 1));
    return await noiseSweep(m, data, { ...BASE, evaluate, onProgress });
  };
  try {
    const first = counting(true);
    await assert.rejects(
      cachedSweep(key, compute(first.evaluate, interruptAfter(5)), opts),
      InterruptedError,
    );
    assert.equal(first.calls(), 1 + 5);
    const partial = sweepPartialPath(key, opts);
    assert.equal(partial, sweepCachePath(key, opts).replace(/\.json$/, ".partial.json"));
    assert.ok(await exists(partial), "finished draws saved beside the cache entry");
    assert.equal(await exists(sweepCachePath(key, opts)), false, "no cache entry for an unfinished sweep");

    const second = counting(true);
    const r = await cachedSweep(key, compute(second.evaluate), opts);
    assert.equal(r.fromCache, false);
    assert.equal(second.calls(), TOTAL - 5);
    assert.equal(r.result.resumedDraws, 5);
    assertSameResult(ref, r.result);
    assert.equal(await exists(partial), false);

    const third = counting(true);
    const hit = await cachedSweep(key, compute(third.evaluate), opts);
    assert.equal(hit.fromCache, true);
    assert.equal(third.calls(), 0);
    assertSameResult(ref, hit.result);
  } finally {
    delete g.__noiselab;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stringifyExact/parseExact keep NaN and ±Infinity; other values as JSON", () => {
  const v = { a: NaN, b: [Infinity, -Infinity, 0.1 + 0.2, 1e-300], c: { $nonFinite: 1, d: "NaN" }, e: null };
  const back = parseExact<typeof v>(stringifyExact(v));
  assert.deepStrictEqual(back, v);
  assert.equal(JSON.parse(stringifyExact({ a: NaN })).a.$nonFinite, "NaN");
});
