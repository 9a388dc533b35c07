/**
 * The REAL vendored CIFAR-10 JPEG copy (data/cifar10-jpeg/): 50k/10k images,
 * 5000/1000 per class, served from the decoded cache after the first load,
 * and the cache holds exactly what a fresh decode gives.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { channelStats, describeDataset, loadCifar10Jpeg, loadDataset } from "../lib/data/mod.ts";
import { dataDir } from "../lib/util/paths.ts";

Deno.test("real CIFAR-10 JPEG copy: counts, order, cache, and a fresh decode equal to the cache", async () => {
  let t = performance.now();
  const first = await loadDataset({ dataset: "cifar10", source: "jpeg" });
  const t1 = (performance.now() - t) / 1000;
  t = performance.now();
  const ds = await loadDataset({ dataset: "cifar10", source: "jpeg" });
  const t2 = (performance.now() - t) / 1000;
  console.log(
    `first load ${t1.toFixed(2)} s (cache ${first.cache?.hit ? "hit" : "miss → written"}), ` +
      `second load ${t2.toFixed(2)} s (cache ${ds.cache?.hit ? "hit" : "miss"})`,
  );
  assert.equal(ds.cache?.hit, true, "second load must come from the cache");
  assert.equal(ds.sourceLabel, "CIFAR-10, JPEG q75 copy");
  assert.equal(ds.train.n, 50000);
  assert.equal(ds.test.n, 10000);
  assert.equal(ds.train.images.length, 50000 * 3072);
  const d = describeDataset(ds);
  assert.deepEqual(d.train.perClass, new Array(10).fill(5000));
  assert.deepEqual(d.test.perClass, new Array(10).fill(1000));
  // sorted by class
  for (let i = 0; i < 50000; i += 499) assert.equal(ds.train.labels[i], Math.floor(i / 5000));
  // the official CIFAR-10 training-set statistics are mean (0.4914, 0.4822, 0.4465),
  // std (0.2470, 0.2435, 0.2616); the q75 JPEG copy must be close to them
  const st = channelStats(ds.train);
  const off = [0.4914, 0.4822, 0.4465], offStd = [0.2470, 0.2435, 0.2616];
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(st.mean[c] - off[c]) < 0.01, `mean[${c}] ${st.mean[c]}`);
    assert.ok(Math.abs(st.std[c] - offStd[c]) < 0.01, `std[${c}] ${st.std[c]}`);
  }
  // a fresh decode (no cache) gives the same bytes as the cache
  t = performance.now();
  const fresh = await loadCifar10Jpeg({ dataDir: dataDir(), cache: false });
  console.log(`fresh decode of 60k JPEGs without cache: ${((performance.now() - t) / 1000).toFixed(2)} s`);
  assert.equal(fresh.cache, undefined);
  assert.ok(Buffer.compare(fresh.train.images, ds.train.images) === 0, "train pixels differ from the cache");
  assert.ok(Buffer.compare(fresh.test.images, ds.test.images) === 0, "test pixels differ from the cache");
  assert.deepEqual(fresh.train.labels, ds.train.labels);
  assert.deepEqual(fresh.test.labels, ds.test.labels);
});
