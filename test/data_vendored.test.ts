import assert from "node:assert/strict";
import { join } from "node:path";
import { NoiselabError } from "../lib/util/errors.ts";
import { loadDataset } from "../lib/data/mod.ts";
import { makeBinaryRecords, makeTarGz, sha256HexOf, tempDir } from "./data_helpers.ts";

const C100_RECORDS = { train: 6, test: 3 };

/** A vendored-style folder: a small CIFAR-100 archive split into 3 parts, with both sum files. */
async function writeVendored(dir: string): Promise<{ parts: string[]; train: Uint8Array }> {
  const rec = (n: number, first: number) =>
    makeBinaryRecords(Array.from({ length: n }, (_, r) => [(first + r) % 20, (first + r) * 3 % 100]), first);
  const train = rec(6, 0), test = rec(3, 40);
  const gz = await makeTarGz([
    { name: "cifar-100-binary/train.bin", data: train },
    { name: "cifar-100-binary/test.bin", data: test },
  ]);
  const v = join(dir, "cifar100");
  await Deno.mkdir(v, { recursive: true });
  const cut = [0, Math.floor(gz.length / 3), Math.floor((2 * gz.length) / 3), gz.length];
  const parts: string[] = [];
  let partSums = "";
  for (let i = 0; i < 3; i++) {
    const name = `cifar-100-binary.tar.gz.part-0${i}`;
    const bytes = gz.slice(cut[i], cut[i + 1]);
    await Deno.writeFile(join(v, name), bytes);
    partSums += `${sha256HexOf(bytes)}  ${name}\n`;
    parts.push(join(v, name));
  }
  await Deno.writeTextFile(join(v, "PARTS.SHA256SUMS"), partSums);
  await Deno.writeTextFile(
    join(v, "SHA256SUMS"),
    `${sha256HexOf(gz)}  cifar-100-binary.tar.gz\n${sha256HexOf(test)}  cifar-100-binary/test.bin\n` +
      `${sha256HexOf(train)}  cifar-100-binary/train.bin\n`,
  );
  return { parts, train };
}

Deno.test("CIFAR-100 vendored parts: verified, re-assembled, unpacked once, labelled as the vendored copy", async () => {
  const dir = await tempDir();
  try {
    await writeVendored(dir);
    const ds = await loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS });
    assert.equal(ds.source, "cifar100-binary");
    assert.match(ds.sourceLabel, /vendored offline copy/);
    assert.deepEqual([...ds.train.labels], [0, 3, 6, 9, 12, 15]);
    assert.deepEqual([...ds.test.coarseLabels!], [0, 1, 2]);
    // the unpacked cache is reused: a second load does not need the parts' bytes to be re-read
    const stamp = join(dir, "cache", "cifar100-vendored", ".archive-sha256");
    assert.ok((await Deno.stat(stamp)).isFile);
    const again = await loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS });
    assert.equal(again.dataId, ds.dataId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 vendored parts: a corrupt part or an edited unpacked file is an error naming the file", async () => {
  const dir = await tempDir();
  try {
    const { parts } = await writeVendored(dir);
    const bytes = await Deno.readFile(parts[1]);
    bytes[5] ^= 0xff;
    await Deno.writeFile(parts[1], bytes);
    await assert.rejects(
      loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS }),
      (e: Error) => e instanceof NoiselabError && e.message.includes(parts[1]) && /sha256/.test(e.message),
    );
    // nothing half-unpacked is left behind
    const cache = join(dir, "cache");
    const left = await Array.fromAsync(Deno.readDir(cache)).catch(() => []);
    assert.deepEqual(left.map((e) => e.name).filter((n) => n.startsWith("cifar100-vendored")), []);

    bytes[5] ^= 0xff;
    await Deno.writeFile(parts[1], bytes);
    await loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS });
    const train = join(cache, "cifar100-vendored", "cifar-100-binary", "train.bin");
    const t = await Deno.readFile(train);
    t[100] ^= 1;
    await Deno.writeFile(train, t);
    await assert.rejects(
      loadDataset({ dataset: "cifar100", dataDir: dir, records: C100_RECORDS }),
      (e: Error) => e instanceof NoiselabError && e.message.includes(train),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 vendored in this repository: byte-exact official train.bin/test.bin, 500/100 per class", async () => {
  const ds = await loadDataset({ dataset: "cifar100" });
  assert.equal(ds.train.n, 50000);
  assert.equal(ds.test.n, 10000);
  const sha = Object.fromEntries(ds.files.map((f) => [f.path, f.sha256]));
  // the official files' sha256 (data/cifar100/README.md, confirmed by two independent public loaders)
  assert.equal(
    sha["cifar-100-binary/train.bin"],
    "f31298fc616915fa142368359df1c4ca2ae984d6915ca468b998a5ec6aeebf29",
  );
  assert.equal(
    sha["cifar-100-binary/test.bin"],
    "d8b1e6b7b3bee4020055f0699b111f60b1af1e262aeb93a0b659061746f8224a",
  );
  const per = new Array(100).fill(0);
  for (const l of ds.test.labels) per[l]++;
  assert.ok(per.every((c) => c === 100));
  assert.equal(ds.classNames[99], "worm");
});
