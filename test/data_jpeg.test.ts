import assert from "node:assert/strict";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { NoiselabError } from "../lib/util/errors.ts";
import { describeDataset, loadCifar10Jpeg, loadDataset } from "../lib/data/mod.ts";
import { makeTarGz, sha256HexOf, tempDir } from "./data_helpers.ts";

const CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/** A solid-colour 32x32 JPEG (quality 100) whose colour encodes (class, file index). */
function solidJpeg(r: number, g: number, b: number, size = 32): Uint8Array {
  const data = new Uint8Array(size * size * 4);
  for (let p = 0; p < size * size; p++) data.set([r, g, b, 255], p * 4);
  return new Uint8Array(jpeg.encode({ data, width: size, height: size }, 100).data);
}

const colour = (cls: number, k: number) => [cls * 20 + 10, k * 40 + 20, 128] as const;

/**
 * Writes `<dir>/cifar10-jpeg/` with train (classes 0..2, 3 files each, stored in
 * reverse order) and test (classes 0..1, 2 files each) plus SHA256SUMS.
 */
async function writeJpegCopy(dir: string, mutate?: (files: { name: string; data: Uint8Array }[]) => void) {
  const mk = async (prefix: string, nClass: number, nFile: number) => {
    const files: { name: string; data: Uint8Array }[] = [];
    for (let c = nClass - 1; c >= 0; c--) {
      for (let k = nFile - 1; k >= 0; k--) {
        files.push({
          name: `${prefix}/${CLASSES[c]}/${String(k).padStart(4, "0")}.jpg`,
          data: solidJpeg(...colour(c, k)),
        });
      }
    }
    if (prefix === "train") mutate?.(files);
    return await makeTarGz(files);
  };
  const jd = join(dir, "cifar10-jpeg");
  await Deno.mkdir(jd, { recursive: true });
  const train = await mk("train", 3, 3);
  const test = await mk("test", 2, 2);
  await Deno.writeFile(join(jd, "cifar10-train.tar.gz"), train);
  await Deno.writeFile(join(jd, "cifar10-test.tar.gz"), test);
  await Deno.writeTextFile(
    join(jd, "SHA256SUMS"),
    `${sha256HexOf(test)}  cifar10-test.tar.gz\n${sha256HexOf(train)}  cifar10-train.tar.gz\n`,
  );
  return { train, test };
}

Deno.test("JPEG copy: decode order (class, file), pixels, labels, cache written then used", async () => {
  const dir = await tempDir();
  try {
    await writeJpegCopy(dir);
    let t = performance.now();
    const ds = await loadDataset({ dataset: "cifar10", dataDir: dir }); // auto → jpeg (no binary here)
    const first = performance.now() - t;
    assert.equal(ds.source, "cifar10-jpeg");
    assert.equal(ds.sourceLabel, "CIFAR-10, JPEG q75 copy");
    assert.equal(ds.train.n, 9);
    assert.equal(ds.test.n, 4);
    assert.deepEqual([...ds.train.labels], [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert.deepEqual([...ds.test.labels], [0, 0, 1, 1]);
    for (let i = 0; i < 9; i++) {
      const want = colour(Math.floor(i / 3), i % 3);
      for (const p of [0, 500, 1023]) {
        for (let c = 0; c < 3; c++) {
          const got = ds.train.images[i * 3072 + p * 3 + c];
          assert.ok(Math.abs(got - want[c]) <= 3, `image ${i} pixel ${p} channel ${c}: ${got} vs ${want[c]}`);
        }
      }
    }
    assert.equal(ds.cache?.hit, false);
    const cachePath = ds.cache!.path;
    assert.ok(cachePath.startsWith(join(dir, "cache")));
    assert.equal((await Deno.stat(cachePath)).size, 13 * 3073);

    t = performance.now();
    const again = await loadDataset({ dataset: "cifar10", source: "jpeg", dataDir: dir });
    const second = performance.now() - t;
    console.log(
      `generated JPEG copy: first load ${first.toFixed(0)} ms, cached load ${second.toFixed(0)} ms`,
    );
    assert.equal(again.cache?.hit, true);
    assert.equal(again.cache?.path, cachePath);
    assert.deepEqual(again.train.images, ds.train.images);
    assert.deepEqual(again.test.labels, ds.test.labels);
    assert.equal(again.dataId, ds.dataId);

    // the pixels really come from the cache file: change one byte there and see it
    const bin = await Deno.readFile(cachePath);
    bin[5] = bin[5] ^ 0xff;
    await Deno.writeFile(cachePath, bin);
    const fromCache = await loadDataset({ dataset: "cifar10", source: "jpeg", dataDir: dir });
    assert.equal(fromCache.train.images[5], ds.train.images[5] ^ 0xff);
    // a damaged (truncated) cache is ignored and rewritten
    await Deno.writeFile(cachePath, bin.subarray(0, 1000));
    const redo = await loadDataset({ dataset: "cifar10", source: "jpeg", dataDir: dir });
    assert.equal(redo.cache?.hit, false);
    assert.deepEqual(redo.train.images, ds.train.images);
    assert.equal((await Deno.stat(cachePath)).size, 13 * 3073);
    // no temp files left in the cache folder
    assert.deepEqual(
      [...Deno.readDirSync(join(dir, "cache"))].map((e) => e.name).sort(),
      [
        cachePath.split("/").pop()!,
        cachePath.split("/").pop()!.replace(/\.bin$/, ".json"),
      ].sort(),
    );

    const d = describeDataset(ds);
    assert.deepEqual(d.train.perClass, [3, 3, 3, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(d.files.length, 2);
    assert.equal(d.files[0].sha256.length, 64);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JPEG copy: checksum mismatch and missing files name the file", async () => {
  const dir = await tempDir();
  try {
    const { train } = await writeJpegCopy(dir);
    const p = join(dir, "cifar10-jpeg", "cifar10-train.tar.gz");
    await Deno.writeFile(p, train.subarray(0, train.length - 10)); // truncated
    await assert.rejects(
      loadDataset({ dataset: "cifar10", source: "jpeg", dataDir: dir }),
      (e: Error) => e instanceof NoiselabError && e.message.includes(p) && /sha256 mismatch/.test(e.message),
    );
    await Deno.remove(p);
    await assert.rejects(
      loadCifar10Jpeg({ dataDir: dir }),
      (e: Error) => e instanceof NoiselabError && e.message.includes(p) && /missing/.test(e.message),
    );
    await Deno.remove(join(dir, "cifar10-jpeg", "SHA256SUMS"));
    await assert.rejects(
      loadCifar10Jpeg({ dataDir: dir }),
      (e: Error) => e instanceof NoiselabError && /SHA256SUMS/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JPEG copy: corrupt gzip, undecodable JPEG, wrong image size, unknown class name the file", async () => {
  const cases: [string, (f: { name: string; data: Uint8Array }[]) => void, RegExp][] = [
    [
      "undecodable",
      (f) => f[1].data = f[1].data.subarray(0, 40),
      /train\/bird\/0001\.jpg: cannot decode JPEG/,
    ],
    [
      "wrong size",
      (f) => f[0].data = solidJpeg(1, 2, 3, 16),
      /train\/bird\/0002\.jpg: image is 16x16, expected 32x32/,
    ],
    ["unknown class", (f) => f[0].name = "train/dragon/0000.jpg", /unknown class "dragon"/],
  ];
  for (const [what, mutate, re] of cases) {
    const dir = await tempDir();
    try {
      await writeJpegCopy(dir, mutate);
      await assert.rejects(
        loadCifar10Jpeg({ dataDir: dir }),
        (e: Error) =>
          e instanceof NoiselabError && re.test(e.message) && e.message.includes("cifar10-train.tar.gz"),
        what,
      );
      assert.equal(
        await Deno.stat(join(dir, "cache")).then(() => true, () => false),
        false,
        `${what}: no cache`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  // not gzip at all, with a matching checksum
  const dir = await tempDir();
  try {
    await writeJpegCopy(dir);
    const bad = new TextEncoder().encode("this is not a gzip file");
    await Deno.writeFile(join(dir, "cifar10-jpeg", "cifar10-test.tar.gz"), bad);
    const sums = await Deno.readTextFile(join(dir, "cifar10-jpeg", "SHA256SUMS"));
    await Deno.writeTextFile(
      join(dir, "cifar10-jpeg", "SHA256SUMS"),
      sums.replace(/^[0-9a-f]{64}(?= {2}cifar10-test)/m, sha256HexOf(bad)),
    );
    await assert.rejects(
      loadCifar10Jpeg({ dataDir: dir }),
      (e: Error) => e instanceof NoiselabError && /cifar10-test\.tar\.gz: not a valid gzip/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
