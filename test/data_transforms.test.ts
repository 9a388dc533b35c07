import assert from "node:assert/strict";
import { NoiselabError } from "../lib/util/errors.ts";
import { makeRng } from "../lib/util/rng.ts";
import {
  augmentBatch,
  batchIndices,
  channelStats,
  gatherBatch,
  normalize,
  type Split,
  stratifiedIndices,
  stratifiedSubset,
} from "../lib/data/mod.ts";

/** A random split: image i's first byte is i % 256 (to track identity), labels from `labelOf`. */
function randomSplit(n: number, labelOf: (i: number) => number, seed = 1): Split {
  const rng = makeRng(seed);
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(rng() * 256);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = labelOf(i);
    images[i * 3072] = i % 256;
  }
  return { images, labels, n };
}

function counts(labels: Uint8Array, k: number): number[] {
  const c = new Array(k).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

/** A fixed sequence of "random" numbers (cycled). */
const seq = (vals: number[]) => {
  let i = 0;
  return () => vals[i++ % vals.length];
};

Deno.test("stratifiedSubset: equal per class, deterministic per seed, a true subset", () => {
  const split = randomSplit(1000, (i) => (i * 7) % 10);
  const a = stratifiedSubset(split, 200, 42);
  assert.equal(a.n, 200);
  assert.deepEqual(counts(a.labels, 10), new Array(10).fill(20));
  const b = stratifiedSubset(split, 200, 42);
  assert.deepEqual(a.images, b.images);
  const c = stratifiedSubset(split, 200, 43);
  assert.notDeepEqual(stratifiedIndices(split.labels, 200, 42), stratifiedIndices(split.labels, 200, 43));
  assert.equal(c.n, 200);
  // every picked image is a whole image of the source with its own label, no repeats, ascending
  const idx = stratifiedIndices(split.labels, 200, 42);
  assert.equal(new Set(idx).size, 200);
  for (let j = 1; j < idx.length; j++) assert.ok(idx[j] > idx[j - 1]);
  for (let j = 0; j < 200; j++) {
    const i = idx[j];
    assert.equal(a.labels[j], split.labels[i]);
    assert.deepEqual(
      a.images.subarray(j * 3072, (j + 1) * 3072),
      split.images.subarray(i * 3072, (i + 1) * 3072),
    );
  }
  // uneven size: counts differ by at most one
  const u = counts(stratifiedSubset(split, 205, 1).labels, 10);
  assert.equal(u.reduce((s, x) => s + x, 0), 205);
  assert.ok(Math.max(...u) - Math.min(...u) <= 1, String(u));
  // size >= n returns everything
  assert.equal(stratifiedSubset(split, 1000, 1), split);
  assert.equal(stratifiedSubset(split, 5000, 1).n, 1000);
  assert.throws(
    () => stratifiedSubset(split, 0, 1),
    (e: Error) => e instanceof NoiselabError && /^size:/.test(e.message),
  );
  assert.throws(() => stratifiedSubset(split, 2.5, 1), NoiselabError);
});

Deno.test("stratifiedSubset: a small class gives its share to the others; coarse labels follow", () => {
  // class 0 has only 3 items, classes 1..3 have ~99 each
  const split = randomSplit(300, (i) => (i < 3 ? 0 : 1 + (i % 3)));
  split.coarseLabels = split.labels.map((l) => l * 2);
  const s = stratifiedSubset(split, 40, 7);
  const c = counts(s.labels, 4);
  assert.equal(c[0], 3);
  assert.equal(c.reduce((a, b) => a + b, 0), 40);
  assert.ok(Math.max(c[1], c[2], c[3]) - Math.min(c[1], c[2], c[3]) <= 1, String(c));
  assert.deepEqual([...s.coarseLabels!], [...s.labels].map((l) => l * 2));
});

Deno.test("channelStats and normalize agree with a direct computation", () => {
  const split = randomSplit(20, (i) => i % 10, 3);
  // skew the channels so means differ
  for (let i = 0; i < split.images.length; i += 3) split.images[i] = split.images[i] >> 1;
  const st = channelStats(split);
  for (let c = 0; c < 3; c++) {
    let s = 0, q = 0, n = 0;
    for (let i = c; i < split.images.length; i += 3) s += split.images[i] / 255;
    for (let i = c; i < split.images.length; i += 3) n++;
    const m = s / n;
    for (let i = c; i < split.images.length; i += 3) q += (split.images[i] / 255 - m) ** 2;
    assert.ok(Math.abs(st.mean[c] - m) < 1e-12, `mean ${c}`);
    assert.ok(Math.abs(st.std[c] - Math.sqrt(q / n)) < 1e-12, `std ${c}`);
  }
  assert.ok(st.mean[0] < 0.3 && st.mean[1] > 0.4, JSON.stringify(st));
  const x = normalize(split, st);
  assert.equal(x.length, 20 * 3072);
  for (const i of [0, 1, 2, 3071, 30000, 61439]) {
    const c = i % 3;
    assert.ok(Math.abs(x[i] - (split.images[i] / 255 - st.mean[c]) / st.std[c]) < 1e-5, `pixel ${i}`);
  }
  // normalised train data: mean 0, std 1 per channel
  for (let c = 0; c < 3; c++) {
    let s = 0, q = 0, n = 0;
    for (let i = c; i < x.length; i += 3, n++) {
      s += x[i];
      q += x[i] * x[i];
    }
    assert.ok(Math.abs(s / n) < 1e-4, `mean ${c}: ${s / n}`);
    assert.ok(Math.abs(q / n - 1) < 1e-4, `var ${c}: ${q / n}`);
  }
  // constant image: std 0 → normalize refuses
  const flat: Split = { images: new Uint8Array(3072).fill(51), labels: new Uint8Array(1), n: 1 };
  const fs = channelStats(flat);
  assert.deepEqual(fs.mean, [0.2, 0.2, 0.2]);
  assert.deepEqual(fs.std, [0, 0, 0]);
  assert.throws(
    () => normalize(flat, fs),
    (e: Error) => e instanceof NoiselabError && /stats\.std/.test(e.message),
  );
  // reusing an out buffer
  const out = new Float32Array(20 * 3072);
  assert.equal(normalize(split, st, out), out);
  assert.deepEqual(out, x);
});

/** value at (image k, y, x, c) in an NHWC batch. */
const at = (a: Float32Array, k: number, y: number, x: number, c: number) =>
  a[k * 3072 + (y * 32 + x) * 3 + c];

Deno.test("augmentBatch: offset 0 is identity or exact mirror; shifts pad with zeros; fill option", () => {
  const n = 2;
  const x = new Float32Array(n * 3072);
  for (let i = 0; i < x.length; i++) x[i] = 1 + (i % 9973) / 10; // all non-zero
  // rng draws per image: dy, dx, flip. floor(0.5*9)-4 = 0 offset.
  const id = augmentBatch(x, n, seq([0.5, 0.5, 0.9]));
  assert.deepEqual(id, x);
  const m = augmentBatch(x, n, seq([0.5, 0.5, 0.1]));
  for (let k = 0; k < n; k++) {
    for (let y = 0; y < 32; y++) {
      for (let xx = 0; xx < 32; xx++) {
        for (let c = 0; c < 3; c++) assert.equal(at(m, k, y, xx, c), at(x, k, y, 31 - xx, c));
      }
    }
  }
  // dy = -4 (draw 0), dx = +4 (draw 0.99), no flip: out(y,x) = in(y-4, x+4)
  const s = augmentBatch(x, 1, seq([0, 0.99, 0.9]));
  for (let y = 0; y < 32; y++) {
    for (let xx = 0; xx < 32; xx++) {
      for (let c = 0; c < 3; c++) {
        const want = y < 4 || xx >= 28 ? 0 : at(x, 0, y - 4, xx + 4, c);
        assert.equal(at(s, 0, y, xx, c), want, `${y},${xx},${c}`);
      }
    }
  }
  // zero count of a 4-row, 4-column shift: (4*32 + 28*4) pixels * 3 channels
  assert.equal(s.subarray(0, 3072).filter((v) => v === 0).length, (4 * 32 + 28 * 4) * 3);
  const f = augmentBatch(x, 1, seq([0, 0.5, 0.9]), { fill: [-1, -2, -3] });
  assert.deepEqual([at(f, 0, 0, 0, 0), at(f, 0, 0, 0, 1), at(f, 0, 3, 31, 2)], [-1, -2, -3]);
  assert.equal(at(f, 0, 4, 0, 0), at(x, 0, 0, 0, 0));
});

Deno.test("augmentBatch: deterministic per seed, offsets within ±4, flips about half the time", () => {
  const n = 200;
  const x = new Float32Array(n * 3072);
  const r0 = makeRng(9);
  for (let i = 0; i < x.length; i++) x[i] = 0.5 + r0();
  const a = augmentBatch(x, n, makeRng("aug-1"));
  const b = augmentBatch(x, n, makeRng("aug-1"));
  const c = augmentBatch(x, n, makeRng("aug-2"));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // recover each image's (dy, dx, flip) by search: every output must be one of the 162 candidates
  let flips = 0;
  const shifts = new Set<string>();
  for (let k = 0; k < 20; k++) {
    let found = false;
    for (let dy = -4; dy <= 4 && !found; dy++) {
      for (let dx = -4; dx <= 4 && !found; dx++) {
        for (const flip of [false, true]) {
          let ok = true;
          for (let y = 0; y < 32 && ok; y += 3) {
            for (let xx = 0; xx < 32 && ok; xx += 3) {
              const sy = y + dy, sx = (flip ? 31 - xx : xx) + dx;
              const want = sy < 0 || sy > 31 || sx < 0 || sx > 31 ? 0 : at(x, k, sy, sx, 1);
              ok = at(a, k, y, xx, 1) === want;
            }
          }
          if (ok) {
            found = true;
            if (flip) flips++;
            shifts.add(`${dy},${dx}`);
            break;
          }
        }
      }
    }
    assert.ok(found, `image ${k} is not a pad-4 crop/flip of its input`);
  }
  assert.ok(flips >= 3 && flips <= 17, `flips ${flips}/20`);
  assert.ok(shifts.size >= 8, `only ${shifts.size} distinct shifts in 20 images`);
  // out buffer reuse and overlap check
  const out = new Float32Array(n * 3072);
  assert.equal(augmentBatch(x, n, makeRng("aug-1"), { out }), out);
  assert.deepEqual(out, a);
  assert.throws(() => augmentBatch(x, n, makeRng(1), { out: x }), (e: Error) => e instanceof NoiselabError);
  assert.throws(
    () => augmentBatch(x, n + 1, makeRng(1)),
    (e: Error) => e instanceof NoiselabError && /^x:/.test(e.message),
  );

  // speed (printed, not asserted): one 128-image batch, and normalising 10k images
  const big = new Float32Array(128 * 3072).fill(0.3);
  const o = new Float32Array(128 * 3072);
  const rng = makeRng(1);
  let t = performance.now();
  for (let r = 0; r < 50; r++) augmentBatch(big, 128, rng, { out: o });
  const perBatch = (performance.now() - t) / 50;
  const s10k: Split = {
    images: new Uint8Array(10000 * 3072).fill(7),
    labels: new Uint8Array(10000),
    n: 10000,
  };
  t = performance.now();
  normalize(s10k, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  console.log(
    `augmentBatch: ${perBatch.toFixed(2)} ms per 128-image batch; normalize 10k images: ${
      (performance.now() - t).toFixed(0)
    } ms`,
  );
});

Deno.test("batchIndices and gatherBatch: every index once, seeded order, last batch smaller", () => {
  const plain = batchIndices(10, 4);
  assert.deepEqual(plain.map((b) => [...b]), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const a = batchIndices(1000, 128, makeRng(5));
  assert.equal(a.length, 8);
  assert.equal(a[7].length, 1000 - 7 * 128);
  const all = a.flatMap((b) => [...b]).sort((p, q) => p - q);
  assert.deepEqual(all, Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(batchIndices(1000, 128, makeRng(5)).map((b) => [...b]), a.map((b) => [...b]));
  assert.notDeepEqual(batchIndices(1000, 128, makeRng(6)).map((b) => [...b]), a.map((b) => [...b]));
  assert.notDeepEqual(a.flatMap((b) => [...b]), all); // actually shuffled
  assert.throws(
    () => batchIndices(10, 0),
    (e: Error) => e instanceof NoiselabError && /batchSize/.test(e.message),
  );

  const x = new Float32Array(5 * 3072);
  for (let i = 0; i < 5; i++) x.fill(i, i * 3072, (i + 1) * 3072);
  const labels = Uint8Array.from([10, 11, 12, 13, 14]);
  const g = gatherBatch(x, labels, [4, 1]);
  assert.deepEqual([...g.y], [14, 11]);
  assert.equal(g.x[0], 4);
  assert.equal(g.x[3071], 4);
  assert.equal(g.x[3072], 1);
});
