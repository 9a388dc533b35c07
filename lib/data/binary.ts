/**
 * Loaders for the official CIFAR binary releases:
 *
 * - CIFAR-10 (`cifar-10-batches-bin/data_batch_{1..5}.bin`, `test_batch.bin`):
 *   records of 1 label byte + 3072 pixel bytes (channel-major: 1024 R, 1024 G, 1024 B).
 * - CIFAR-100 (`cifar-100-binary/train.bin`, `test.bin`): records of a coarse
 *   label byte, a fine label byte and 3072 pixel bytes.
 *
 * Files are found in the data folder (extracted folder, or the release's
 * `.tar.gz` next to it), or downloaded on request with md5 verification.
 * The record parsing is hand-written: it is a fixed-size record format that
 * no npm package reads for us, and it is a few lines.
 * @module
 */
import { join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { sha256Hex } from "../util/hash.ts";
import { exists, md5File } from "../util/fs.ts";
import { readTarGz } from "./archive.ts";
import { downloadVerified } from "./download.ts";
import {
  CIFAR100_VENDORED,
  hasVendoredCifar100,
  unpackVendoredCifar100,
  vendoredCifar100Sums,
} from "./vendored.ts";
import {
  CIFAR100_BINARY_URL,
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_BINARY_URL,
  CIFAR10_CLASSES,
  type Dataset,
  type DownloadSource,
  IMAGE_BYTES,
  type ProgressFn,
  type SourceFile,
  type Split,
} from "./types.ts";

/** Options shared by the binary loaders. */
export interface BinaryLoadOptions {
  /** Folder holding the extracted release folder or its `.tar.gz` (default: caller's data dir). */
  dataDir: string;
  /** Download the release when it is not found (default false). */
  download?: boolean;
  /** Override the URL and md5 (tests, mirrors). The md5 also checks an archive found on disk. */
  downloadSource?: DownloadSource;
  onProgress?: ProgressFn;
  /**
   * Expected number of records (default: the official 50000 train / 10000 test).
   * Only tests and hand-made subsets change this; CIFAR-10's train count is split
   * evenly over its 5 batch files.
   */
  records?: { train: number; test: number };
}

/** Bytes per CIFAR-10 record (label + pixels). */
export const CIFAR10_RECORD_BYTES = 1 + IMAGE_BYTES;
/** Bytes per CIFAR-100 record (coarse label + fine label + pixels). */
export const CIFAR100_RECORD_BYTES = 2 + IMAGE_BYTES;

/** Copy one channel-major (CHW) 32x32x3 image at `src[off..]` to NHWC at `dst[dOff..]`. */
function chwToHwc(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
  const g = off + 1024;
  const b = off + 2048;
  for (let p = 0; p < 1024; p++) {
    const o = dOff + p * 3;
    dst[o] = src[off + p];
    dst[o + 1] = src[g + p];
    dst[o + 2] = src[b + p];
  }
}

/**
 * Parse CIFAR binary records. `labelBytes` is 1 (CIFAR-10: label) or 2
 * (CIFAR-100: coarse, fine). Writes into `split` starting at image `start`.
 */
function parseRecords(
  bytes: Uint8Array,
  file: string,
  labelBytes: 1 | 2,
  split: Split,
  start: number,
  numClasses: number,
): void {
  const rec = labelBytes + IMAGE_BYTES;
  const n = bytes.length / rec;
  for (let i = 0; i < n; i++) {
    const off = i * rec;
    const k = start + i;
    if (labelBytes === 1) {
      const l = bytes[off];
      if (l >= numClasses) {
        throw new NoiselabError(`${file}: record ${i} has label ${l}, expected 0..${numClasses - 1}`, file);
      }
      split.labels[k] = l;
    } else {
      const c = bytes[off];
      const f = bytes[off + 1];
      if (c >= 20 || f >= numClasses) {
        throw new NoiselabError(
          `${file}: record ${i} has coarse label ${c} / fine label ${f}, expected 0..19 / 0..${
            numClasses - 1
          }`,
          file,
        );
      }
      split.coarseLabels![k] = c;
      split.labels[k] = f;
    }
    chwToHwc(bytes, off + labelBytes, split.images, k * IMAGE_BYTES);
  }
}

function newSplit(n: number, coarse: boolean): Split {
  const s: Split = { images: new Uint8Array(n * IMAGE_BYTES), labels: new Uint8Array(n), n };
  if (coarse) s.coarseLabels = new Uint8Array(n);
  return s;
}

function checkSize(file: string, size: number, records: number, recBytes: number): void {
  const expected = records * recBytes;
  if (size !== expected) {
    throw new NoiselabError(
      `${file}: wrong size ${size} bytes, expected ${expected} bytes (${records} records of ${recBytes} bytes)` +
        (size < expected ? "; the file looks truncated" : ""),
      file,
    );
  }
}

function parseNames(text: string | undefined, count: number, fallback: readonly string[]): string[] {
  if (text !== undefined) {
    const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length === count) return names;
  }
  return [...fallback];
}

interface Release {
  url: string;
  md5: string;
  archive: string;
  folder: string;
}

/** Read the named members of a release, from the extracted folder or the archive (md5-checked). */
async function readRelease(
  rel: Release,
  members: { name: string; records?: number; recBytes?: number; optional?: boolean }[],
  opts: BinaryLoadOptions,
  missingHelp: string,
): Promise<Map<string, Uint8Array>> {
  const src = opts.downloadSource ?? { url: rel.url, md5: rel.md5 };
  const folder = join(opts.dataDir, rel.folder);
  const archive = join(opts.dataDir, rel.archive);
  const out = new Map<string, Uint8Array>();
  const required = members.filter((m) => !m.optional);
  const folderHas = await Promise.all(required.map((m) => exists(join(folder, m.name))));
  if (folderHas.some((x) => x)) {
    const missing = required.filter((_, i) => !folderHas[i]).map((m) => join(folder, m.name));
    if (missing.length > 0) {
      throw new NoiselabError(
        `missing file(s) ${missing.join(", ")} (the folder ${folder} is incomplete)`,
        missing[0],
      );
    }
    // check every size before reading anything
    for (const m of required) {
      const path = join(folder, m.name);
      checkSize(path, (await Deno.stat(path)).size, m.records!, m.recBytes!);
    }
    for (const m of members) {
      const path = join(folder, m.name);
      if (m.optional && !(await exists(path))) continue;
      opts.onProgress?.({ phase: `read ${m.name}`, done: out.size, total: members.length });
      out.set(m.name, await Deno.readFile(path));
    }
    return out;
  }
  if (!(await exists(archive))) {
    if (!opts.download) throw new NoiselabError(missingHelp, archive);
    await downloadVerified({ url: src.url, md5: src.md5, dest: archive, onProgress: opts.onProgress });
  } else {
    opts.onProgress?.({ phase: `verify ${rel.archive}`, done: 0, total: 1 });
    const got = await md5File(archive);
    if (got !== src.md5.toLowerCase()) {
      throw new NoiselabError(
        `${archive}: md5 mismatch (expected ${src.md5.toLowerCase()}, got ${got}); delete it and fetch it again`,
        archive,
      );
    }
  }
  opts.onProgress?.({ phase: `unpack ${rel.archive}`, done: 0, total: 1 });
  const wanted = new Set(members.map((m) => `${rel.folder}/${m.name}`));
  const entries = await readTarGz(await Deno.readFile(archive), archive, (n) => wanted.has(n));
  for (const e of entries) out.set(e.name.slice(rel.folder.length + 1), e.data);
  for (const m of required) {
    const label = `${archive}:${rel.folder}/${m.name}`;
    const data = out.get(m.name);
    if (!data) throw new NoiselabError(`${archive}: the archive has no ${rel.folder}/${m.name}`, archive);
    checkSize(label, data.length, m.records!, m.recBytes!);
  }
  return out;
}

/** Official record counts. */
const OFFICIAL_RECORDS = { train: 50000, test: 10000 };

function checkRecords(r: { train: number; test: number }, perFileDivisor: number): void {
  for (const k of ["train", "test"] as const) {
    if (!Number.isInteger(r[k]) || r[k] <= 0) {
      throw new NoiselabError(`records.${k}: expected a positive integer, got ${r[k]}`, `records.${k}`);
    }
  }
  if (r.train % perFileDivisor !== 0) {
    throw new NoiselabError(
      `records.train: must be divisible by ${perFileDivisor}, got ${r.train}`,
      "records.train",
    );
  }
}

/** Where to put the CIFAR-10 binary release, and how to get it (shown when it is missing). */
export function cifar10MissingHelp(dataDir: string): string {
  return `CIFAR-10 binary release not found. Put the extracted folder at ${
    join(dataDir, "cifar-10-batches-bin")
  }/ ` +
    `(data_batch_1.bin ... data_batch_5.bin, test_batch.bin) or the archive at ` +
    `${
      join(dataDir, CIFAR10_BINARY_URL.archive)
    } (from ${CIFAR10_BINARY_URL.url}, md5 ${CIFAR10_BINARY_URL.md5}), ` +
    `or load with download: true (CLI: --download) on a machine that can reach www.cs.toronto.edu. ` +
    `Without it, source "jpeg" uses the vendored JPEG copy of CIFAR-10.`;
}

/** Where to put the CIFAR-100 binary release, and how to get it (shown when it is missing). */
export function cifar100MissingHelp(dataDir: string): string {
  return `CIFAR-100 not found (neither the vendored copy ${
    join(dataDir, "cifar100")
  }/ nor the official release). Put the extracted folder at ${join(dataDir, "cifar-100-binary")}/ ` +
    `(train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt) or the archive at ` +
    `${join(dataDir, CIFAR100_BINARY_URL.archive)}: download it from ${CIFAR100_BINARY_URL.url} ` +
    `(md5 ${CIFAR100_BINARY_URL.md5}), e.g. \`curl -o ${join(dataDir, CIFAR100_BINARY_URL.archive)} ` +
    `${CIFAR100_BINARY_URL.url}\`, or load with download: true (CLI: --download) on a machine that can reach ` +
    `www.cs.toronto.edu.`;
}

function filesOf(map: Map<string, Uint8Array>, folder: string, names: string[]): SourceFile[] {
  return names.map((n) => ({ path: `${folder}/${n}`, sha256: sha256Hex(map.get(n)!) }));
}

/** Load the official CIFAR-10 binary release (NHWC uint8). */
export async function loadCifar10Binary(opts: BinaryLoadOptions): Promise<Omit<Dataset, "dataId">> {
  const records = opts.records ?? OFFICIAL_RECORDS;
  checkRecords(records, 5);
  const per = records.train / 5;
  const batches = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  const map = await readRelease(
    CIFAR10_BINARY_URL,
    [
      ...batches.map((name) => ({ name, records: per, recBytes: CIFAR10_RECORD_BYTES })),
      { name: "test_batch.bin", records: records.test, recBytes: CIFAR10_RECORD_BYTES },
      { name: "batches.meta.txt", optional: true },
    ],
    opts,
    cifar10MissingHelp(opts.dataDir),
  );
  const train = newSplit(records.train, false);
  batches.forEach((b, i) => {
    opts.onProgress?.({ phase: "convert train", done: i, total: 5 });
    parseRecords(map.get(b)!, `${CIFAR10_BINARY_URL.folder}/${b}`, 1, train, i * per, 10);
  });
  const test = newSplit(records.test, false);
  parseRecords(map.get("test_batch.bin")!, `${CIFAR10_BINARY_URL.folder}/test_batch.bin`, 1, test, 0, 10);
  const meta = map.get("batches.meta.txt");
  return {
    name: "cifar10",
    source: "cifar10-binary",
    sourceLabel: "CIFAR-10, official binary release",
    numClasses: 10,
    classNames: parseNames(meta && new TextDecoder().decode(meta), 10, CIFAR10_CLASSES),
    train,
    test,
    files: filesOf(map, CIFAR10_BINARY_URL.folder, [...batches, "test_batch.bin"]),
  };
}

/** Load the official CIFAR-100 binary release (fine labels as `labels`, coarse as `coarseLabels`). */
export async function loadCifar100Binary(opts: BinaryLoadOptions): Promise<Omit<Dataset, "dataId">> {
  const records = opts.records ?? OFFICIAL_RECORDS;
  checkRecords(records, 1);
  // The official release (folder or archive in dataDir, or a download) wins; otherwise the vendored
  // offline copy (data/cifar100/, sha256-verified: lib/data/vendored.ts).
  const official = opts.download || (await hasCifar100Binary(opts.dataDir));
  const vendored = !official && (await hasVendoredCifar100(opts.dataDir));
  const readOpts = vendored
    ? { ...opts, dataDir: await unpackVendoredCifar100(opts.dataDir, opts.onProgress) }
    : opts;
  const map = await readRelease(
    CIFAR100_BINARY_URL,
    [
      { name: "train.bin", records: records.train, recBytes: CIFAR100_RECORD_BYTES },
      { name: "test.bin", records: records.test, recBytes: CIFAR100_RECORD_BYTES },
      { name: "fine_label_names.txt", optional: true },
      { name: "coarse_label_names.txt", optional: true },
    ],
    readOpts,
    cifar100MissingHelp(opts.dataDir),
  );
  if (vendored) {
    // re-check the unpacked files on every load (the cache folder could have been edited)
    const sums = await vendoredCifar100Sums(opts.dataDir);
    for (const name of ["train.bin", "test.bin"]) {
      const rel = `${CIFAR100_BINARY_URL.folder}/${name}`;
      const got = sha256Hex(map.get(name)!);
      if (got !== sums.get(rel)) {
        throw new NoiselabError(
          `${join(readOpts.dataDir, rel)}: sha256 ${got}, expected ${
            sums.get(rel)
          }; delete ${readOpts.dataDir}`,
          join(readOpts.dataDir, rel),
        );
      }
    }
  }
  const train = newSplit(records.train, true);
  opts.onProgress?.({ phase: "convert", done: 0, total: 2 });
  parseRecords(map.get("train.bin")!, `${CIFAR100_BINARY_URL.folder}/train.bin`, 2, train, 0, 100);
  const test = newSplit(records.test, true);
  opts.onProgress?.({ phase: "convert", done: 1, total: 2 });
  parseRecords(map.get("test.bin")!, `${CIFAR100_BINARY_URL.folder}/test.bin`, 2, test, 0, 100);
  const dec = new TextDecoder();
  const fine = map.get("fine_label_names.txt");
  const coarse = map.get("coarse_label_names.txt");
  return {
    name: "cifar100",
    source: "cifar100-binary",
    sourceLabel: vendored ? CIFAR100_VENDORED.sourceLabel : "CIFAR-100, official binary release",
    numClasses: 100,
    classNames: parseNames(fine && dec.decode(fine), 100, CIFAR100_FINE_CLASSES),
    coarseClassNames: parseNames(coarse && dec.decode(coarse), 20, CIFAR100_COARSE_CLASSES),
    train,
    test,
    files: filesOf(map, CIFAR100_BINARY_URL.folder, ["train.bin", "test.bin"]),
  };
}

/** True when the official CIFAR-100 binary release (folder or archive) is in `dataDir`. */
export async function hasCifar100Binary(dataDir: string): Promise<boolean> {
  return (await exists(join(dataDir, CIFAR100_BINARY_URL.folder, "train.bin"))) ||
    (await exists(join(dataDir, CIFAR100_BINARY_URL.archive)));
}

/** True when the CIFAR-10 binary release (folder or archive) is in `dataDir`. */
export async function hasCifar10Binary(dataDir: string): Promise<boolean> {
  return (await exists(join(dataDir, CIFAR10_BINARY_URL.folder, "data_batch_1.bin"))) ||
    (await exists(join(dataDir, CIFAR10_BINARY_URL.archive)));
}
