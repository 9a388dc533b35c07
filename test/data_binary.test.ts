import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { NoiselabError } from "../lib/util/errors.ts";
import { downloadVerified, loadCifar100Binary, loadCifar10Binary, loadDataset } from "../lib/data/mod.ts";
import { genPixel, makeBinaryRecords, makeTarGz, md5Hex, tempDir } from "./data_helpers.ts";

const C10_RECORDS = { train: 10, test: 4 }; // 2 records per batch file
const C100_RECORDS = { train: 6, test: 3 };

/** CIFAR-10 files: train record i has label (i*3)%10 and pixels genPixel(i,...). */
function cifar10Files(): { name: string; data: Uint8Array }[] {
  const files = [];
  for (let b = 0; b < 5; b++) {
    const labels = [0, 1].map((r) => [((2 * b + r) * 3) % 10]);
    files.push({ name: `data_batch_${b + 1}.bin`, data: makeBinaryRecords(labels, 2 * b) });
  }
  files.push({ name: "test_batch.bin", data: makeBinaryRecords([[9], [8], [7], [6]], 100) });
  return files;
}

/** CIFAR-100 files: record i has coarse i%20, fine (i*7+1)%100. */
function cifar100Files(): { name: string; data: Uint8Array }[] {
  const rec = (n: number, first: number) =>
    makeBinaryRecords(
      Array.from({ length: n }, (_, r) => [(first + r) % 20, ((first + r) * 7 + 1) % 100]),
      first,
    );
  return [{ name: "train.bin", data: rec(6, 0) }, { name: "test.bin", data: rec(3, 50) }];
}

async function writeFolder(dir: string, files: { name: string; data: Uint8Array }[]) {
  await Deno.mkdir(dir, { recursive: true });
  for (const f of files) await Deno.writeFile(join(dir, f.name), f.data);
}

/** The NHWC value of image i at (y, x, c). */
function px(images: Uint8Array, i: number, y: number, x: number, c: number): number {
  return images[i * 3072 + (y * 32 + x) * 3 + c];
}

Deno.test("CIFAR-10 binary: extracted folder round-trips CHW records to NHWC with labels", async () => {
  const dir = await tempDir();
  try {
    await writeFolder(join(dir, "cifar-10-batches-bin"), cifar10Files());
    const ds = await loadDataset({ dataset: "cifar10", source: "auto", dataDir: dir, records: C10_RECORDS });
    assert.equal(ds.source, "cifar10-binary");
    assert.equal(ds.sourceLabel, "CIFAR-10, official binary release");
    assert.equal(ds.train.n, 10);
    assert.equal(ds.test.n, 4);
    assert.equal(ds.train.images.length, 10 * 3072);
    assert.deepEqual([...ds.train.labels], [0, 3, 6, 9, 2, 5, 8, 1, 4, 7]);
    assert.deepEqual([...ds.test.labels], [9, 8, 7, 6]);
    // specific pixels: record 3 (2nd record of batch 2), row 2, col 5, green
    // genPixel(3, 1, 2, 5) = 33 + 37 + 10 + 15 = 95
    assert.equal(px(ds.train.images, 3, 2, 5, 1), 95);
    assert.equal(genPixel(3, 1, 2, 5), 95);
    for (const [i, y, x, c] of [[0, 0, 0, 0], [9, 31, 31, 2], [7, 10, 20, 1], [4, 0, 31, 2]]) {
      assert.equal(px(ds.train.images, i, y, x, c), genPixel(i, c, y, x), `train ${i} ${y} ${x} ${c}`);
    }
    assert.equal(px(ds.test.images, 2, 17, 3, 0), genPixel(102, 0, 17, 3));
    assert.equal(ds.classNames[0], "airplane");
    assert.equal(ds.files.length, 6);
    assert.match(ds.dataId, /^cifar10-binary-[0-9a-f]{12}$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-10 binary: wrong-size and truncated files name the file and the expected size", async () => {
  const dir = await tempDir();
  try {
    const files = cifar10Files();
    files[2].data = files[2].data.subarray(0, 3073 + 100); // truncated data_batch_3.bin
    await writeFolder(join(dir, "cifar-10-batches-bin"), files);
    await assert.rejects(
      loadDataset({ dataset: "cifar10", source: "binary", dataDir: dir, records: C10_RECORDS }),
      (e: Error) =>
        e instanceof NoiselabError && /data_batch_3\.bin/.test(e.message) && /6146 bytes/.test(e.message),
    );
    // official sizes by default: the small files are the wrong size
    await Deno.writeFile(join(dir, "cifar-10-batches-bin", "data_batch_3.bin"), cifar10Files()[2].data);
    await assert.rejects(
      loadDataset({ dataset: "cifar10", source: "binary", dataDir: dir }),
      (e: Error) =>
        e instanceof NoiselabError && /30730000 bytes/.test(e.message) && /data_batch_1\.bin/.test(e.message),
    );
    // a missing member of an otherwise present folder
    await Deno.remove(join(dir, "cifar-10-batches-bin", "test_batch.bin"));
    await assert.rejects(
      loadDataset({ dataset: "cifar10", source: "binary", dataDir: dir, records: C10_RECORDS }),
      (e: Error) => e instanceof NoiselabError && /test_batch\.bin/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-10 binary: labels out of range are rejected with the file name", async () => {
  const dir = await tempDir();
  try {
    const files = cifar10Files();
    files[5].data[3073] = 12; // label of test record 1
    await writeFolder(join(dir, "cifar-10-batches-bin"), files);
    await assert.rejects(
      loadCifar10Binary({ dataDir: dir, records: C10_RECORDS }),
      (e: Error) => e instanceof NoiselabError && /test_batch\.bin: record 1 has label 12/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 binary: archive in data dir with md5 check, fine/coarse labels, names from files", async () => {
  const dir = await tempDir();
  try {
    const fine = Array.from({ length: 100 }, (_, i) => `fine${i}`).join("\n") + "\n";
    const gz = await makeTarGz([
      ...cifar100Files().map((f) => ({ name: `cifar-100-binary/${f.name}`, data: f.data })),
      { name: "cifar-100-binary/fine_label_names.txt", data: fine },
    ]);
    await Deno.writeFile(join(dir, "cifar-100-binary.tar.gz"), gz);
    const src = { url: "http://127.0.0.1:9/unused", md5: md5Hex(gz) };
    const ds = await loadDataset({
      dataset: "cifar100",
      dataDir: dir,
      records: C100_RECORDS,
      downloadSource: src,
    });
    assert.equal(ds.source, "cifar100-binary");
    assert.equal(ds.numClasses, 100);
    assert.deepEqual([...ds.train.labels], [1, 8, 15, 22, 29, 36]);
    assert.deepEqual([...ds.train.coarseLabels!], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...ds.test.labels], [51, 58, 65]);
    assert.deepEqual([...ds.test.coarseLabels!], [10, 11, 12]);
    assert.equal(ds.classNames[7], "fine7"); // from fine_label_names.txt
    assert.equal(ds.coarseClassNames![19], "vehicles_2"); // built-in (file absent)
    for (const [i, y, x, c] of [[0, 0, 0, 0], [5, 31, 0, 2], [2, 13, 14, 1]]) {
      assert.equal(px(ds.train.images, i, y, x, c), genPixel(i, c, y, x));
    }
    assert.equal(px(ds.test.images, 1, 4, 9, 2), genPixel(51, 2, 4, 9));
    // the default (official) md5 does not match the generated archive
    await assert.rejects(
      loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS }),
      (e: Error) => e instanceof NoiselabError && /cifar-100-binary\.tar\.gz: md5 mismatch/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 binary: truncated / corrupt archives and wrong-size members are clear errors", async () => {
  const dir = await tempDir();
  try {
    const gz = await makeTarGz(
      cifar100Files().map((f) => ({ name: `cifar-100-binary/${f.name}`, data: f.data })),
    );
    const archive = join(dir, "cifar-100-binary.tar.gz");
    const cut = gz.subarray(0, Math.floor(gz.length / 2));
    await Deno.writeFile(archive, cut);
    await assert.rejects(
      loadDataset({
        dataset: "cifar100",
        dataDir: dir,
        records: C100_RECORDS,
        downloadSource: { url: "x", md5: md5Hex(cut) },
      }),
      (e: Error) =>
        e instanceof NoiselabError && e.message.includes(archive) && /gzip|truncated/.test(e.message),
    );
    await Deno.writeFile(archive, gz);
    await assert.rejects(
      loadDataset({
        dataset: "cifar100",
        dataDir: dir,
        records: { train: 7, test: 3 },
        downloadSource: { url: "x", md5: md5Hex(gz) },
      }),
      (e: Error) =>
        e instanceof NoiselabError && /train\.bin/.test(e.message) && /21518 bytes/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 missing without download: the error says where to put the files and how to fetch them", async () => {
  const dir = await tempDir();
  try {
    await assert.rejects(loadDataset({ dataset: "cifar100", dataDir: dir }), (e: Error) => {
      assert.ok(e instanceof NoiselabError);
      assert.ok(e.message.includes(join(dir, "cifar-100-binary")), e.message);
      assert.ok(e.message.includes(join(dir, "cifar-100-binary.tar.gz")), e.message);
      assert.ok(e.message.includes("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"), e.message);
      assert.ok(e.message.includes("03b5dce01913d631647c71ecec9e9cb8"), e.message);
      return true;
    });
    await assert.rejects(
      loadDataset({ dataset: "cifar10", source: "binary", dataDir: dir }),
      (e: Error) => e instanceof NoiselabError && e.message.includes("cifar-10-binary.tar.gz"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download: local HTTP server, md5 good → archive in place and loaded; bad → nothing left behind", async () => {
  const dir = await tempDir();
  const gz = await makeTarGz(
    cifar100Files().map((f) => ({ name: `cifar-100-binary/${f.name}`, data: f.data })),
  );
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    hits++;
    if (new URL(req.url).pathname !== "/cifar-100-binary.tar.gz") return new Response("no", { status: 404 });
    return new Response(gz as Uint8Array<ArrayBuffer>, { headers: { "content-length": String(gz.length) } });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    // bad md5 first: fails, leaves neither the archive nor a temp file
    await assert.rejects(
      loadDataset({
        dataset: "cifar100",
        dataDir: dir,
        download: true,
        records: C100_RECORDS,
        downloadSource: { url: `${base}/cifar-100-binary.tar.gz`, md5: "0".repeat(32) },
      }),
      (e: Error) => e instanceof NoiselabError && /md5 mismatch/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), []);
    // 404
    await assert.rejects(
      downloadVerified({ url: `${base}/nope`, md5: md5Hex(gz), dest: join(dir, "x.tar.gz") }),
      (e: Error) => e instanceof NoiselabError && /HTTP 404/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), []);
    // good md5
    const phases = new Set<string>();
    const ds = await loadDataset({
      dataset: "cifar100",
      dataDir: dir,
      download: true,
      records: C100_RECORDS,
      downloadSource: { url: `${base}/cifar-100-binary.tar.gz`, md5: md5Hex(gz) },
      onProgress: (p) => phases.add(p.phase),
    });
    assert.equal(ds.train.n, 6);
    assert.ok(phases.has("download cifar-100-binary.tar.gz"), [...phases].join(","));
    assert.deepEqual(await Deno.readFile(join(dir, "cifar-100-binary.tar.gz")), gz);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["cifar-100-binary.tar.gz"]);
    // second load uses the archive on disk (no new request)
    const before = hits;
    await loadDataset({
      dataset: "cifar100",
      dataDir: dir,
      download: true,
      records: C100_RECORDS,
      downloadSource: { url: `${base}/cifar-100-binary.tar.gz`, md5: md5Hex(gz) },
    });
    assert.equal(hits, before);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download: file URL source for CIFAR-10, verified and renamed into place", async () => {
  const dir = await tempDir();
  try {
    const gz = await makeTarGz(
      cifar10Files().map((f) => ({ name: `cifar-10-batches-bin/${f.name}`, data: f.data })),
    );
    const srcPath = join(dir, "mirror.tar.gz");
    await Deno.writeFile(srcPath, gz);
    const dataDir = join(dir, "data");
    const url = pathToFileURL(srcPath).href;
    await assert.rejects(
      loadDataset({
        dataset: "cifar10",
        dataDir,
        download: true,
        records: C10_RECORDS,
        downloadSource: { url, md5: "f".repeat(32) },
      }),
      (e: Error) => e instanceof NoiselabError && /md5 mismatch/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
    const ds = await loadDataset({
      dataset: "cifar10",
      dataDir,
      download: true,
      records: C10_RECORDS,
      downloadSource: { url, md5: md5Hex(gz) },
    });
    assert.equal(ds.source, "cifar10-binary");
    assert.equal(px(ds.train.images, 6, 1, 2, 0), genPixel(6, 0, 1, 2));
    // afterwards, "auto" finds the archive in the data dir
    const again = await loadDataset({
      dataset: "cifar10",
      dataDir,
      records: C10_RECORDS,
      downloadSource: { url, md5: md5Hex(gz) },
    });
    assert.equal(again.source, "cifar10-binary");
    assert.equal(again.dataId, ds.dataId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadDataset: unknown dataset / source / bad record counts name the parameter", async () => {
  await assert.rejects(
    loadDataset({ dataset: "mnist" as never }),
    (e: Error) => e instanceof NoiselabError && /^dataset:/.test(e.message) && e.message.includes("mnist"),
  );
  await assert.rejects(
    loadDataset({ dataset: "cifar10", source: "png" as never }),
    (e: Error) => e instanceof NoiselabError && /^source:/.test(e.message),
  );
  await assert.rejects(
    loadDataset({ dataset: "cifar100", source: "jpeg" }),
    (e: Error) => e instanceof NoiselabError && /^source:/.test(e.message),
  );
  await assert.rejects(
    loadCifar100Binary({ dataDir: "/nonexistent", records: { train: 0, test: 1 } }),
    (e: Error) => e instanceof NoiselabError && /records\.train/.test(e.message),
  );
});
