/**
 * The vendored CIFAR-10 JPEG copy (`data/cifar10-jpeg/`): two tar.gz archives
 * in the image-folder layout `train/<class>/NNNN.jpg`, `test/<class>/NNNN.jpg`,
 * checked against `SHA256SUMS`, decoded once with jpeg-js and cached on disk as
 * raw NHWC bytes (`data/cache/cifar10-jpeg-<hash>.bin` + `.json` header), so
 * later loads only read that file.
 * @module
 */
import jpeg from "jpeg-js";
import { join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { sha256Hex } from "../util/hash.ts";
import { exists, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { readTarGz } from "./archive.ts";
import {
  CIFAR10_CLASSES,
  type Dataset,
  IMAGE_BYTES,
  IMAGE_SIZE,
  type ProgressFn,
  type Split,
} from "./types.ts";

/** Archive file names inside the JPEG folder. */
export const JPEG_ARCHIVES = { train: "cifar10-train.tar.gz", test: "cifar10-test.tar.gz" } as const;
/** Provenance label of the JPEG copy. */
export const JPEG_SOURCE_LABEL = "CIFAR-10, JPEG q75 copy";
/** Bump when the cache layout or decoding changes (invalidates old caches). */
const CACHE_FORMAT = 1;

/** Options for {@link loadCifar10Jpeg}. */
export interface JpegLoadOptions {
  /** Data folder: the archives are in `<dataDir>/cifar10-jpeg/`, the cache in `<dataDir>/cache/`. */
  dataDir: string;
  /** Cache folder (default `<dataDir>/cache`). */
  cacheDir?: string;
  /** Use and write the decoded cache (default true). */
  cache?: boolean;
  onProgress?: ProgressFn;
}

/** Header stored next to the cache file. */
interface CacheHeader {
  format: number;
  source: string;
  archives: { train: string; test: string };
  nTrain: number;
  nTest: number;
  bytes: number;
  classNames: string[];
}

/** Parse a `SHA256SUMS` file (`<hex>  <name>` lines; `*name` binary marker allowed). */
export function parseSha256Sums(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([0-9a-fA-F]{64})\s+\*?(.+)$/.exec(line);
    if (!m) throw new NoiselabError(`${file}: line ${i + 1} is not "<sha256>  <file name>"`, file);
    out.set(m[2].trim(), m[1].toLowerCase());
  }
  return out;
}

/** Decode one JPEG into `dst` at image `k`; any failure names `label`. */
function decodeInto(bytes: Uint8Array, label: string, dst: Uint8Array, k: number): void {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  } catch (e) {
    throw new NoiselabError(`${label}: cannot decode JPEG (${(e as Error).message})`, label);
  }
  if (img.width !== IMAGE_SIZE || img.height !== IMAGE_SIZE) {
    throw new NoiselabError(
      `${label}: image is ${img.width}x${img.height}, expected ${IMAGE_SIZE}x${IMAGE_SIZE}`,
      label,
    );
  }
  const off = k * IMAGE_BYTES;
  if (img.data.length === IMAGE_BYTES) {
    dst.set(img.data, off);
  } else if (img.data.length === IMAGE_SIZE * IMAGE_SIZE) { // grayscale JPEG: replicate
    for (let p = 0; p < IMAGE_SIZE * IMAGE_SIZE; p++) {
      const v = img.data[p];
      dst[off + 3 * p] = v;
      dst[off + 3 * p + 1] = v;
      dst[off + 3 * p + 2] = v;
    }
  } else {
    throw new NoiselabError(`${label}: decoded to ${img.data.length} bytes, expected ${IMAGE_BYTES}`, label);
  }
}

/** Decode one split's archive (bytes already checksum-verified). */
async function decodeSplit(
  gz: Uint8Array,
  archivePath: string,
  prefix: "train" | "test",
  onProgress?: ProgressFn,
): Promise<Split> {
  onProgress?.({ phase: `unpack ${prefix}`, done: 0, total: 1 });
  const entries = await readTarGz(gz, archivePath, (n) => n.toLowerCase().endsWith(".jpg"));
  const items: { cls: number; file: string; name: string; data: Uint8Array }[] = [];
  for (const e of entries) {
    const parts = e.name.split("/");
    if (parts.length !== 3 || parts[0] !== prefix) {
      throw new NoiselabError(
        `${archivePath}: unexpected entry ${e.name} (expected ${prefix}/<class>/<file>.jpg)`,
        archivePath,
      );
    }
    const cls = CIFAR10_CLASSES.indexOf(parts[1]);
    if (cls < 0) {
      throw new NoiselabError(
        `${archivePath}: entry ${e.name} has unknown class "${parts[1]}" (expected one of ${
          CIFAR10_CLASSES.join(", ")
        })`,
        archivePath,
      );
    }
    items.push({ cls, file: parts[2], name: e.name, data: e.data });
  }
  if (items.length === 0) {
    throw new NoiselabError(`${archivePath}: no ${prefix}/<class>/*.jpg images`, archivePath);
  }
  // deterministic order: class, then file name
  items.sort((a, b) => a.cls - b.cls || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const n = items.length;
  const split: Split = { images: new Uint8Array(n * IMAGE_BYTES), labels: new Uint8Array(n), n };
  for (let k = 0; k < n; k++) {
    const it = items[k];
    decodeInto(it.data, `${archivePath}:${it.name}`, split.images, k);
    split.labels[k] = it.cls;
    if (onProgress && (k % 2000 === 0 || k === n - 1)) {
      onProgress({ phase: `decode ${prefix}`, done: k + 1, total: n });
    }
  }
  return split;
}

/** Read an archive and check it against SHA256SUMS; returns its bytes and sha256. */
async function readVerified(dir: string, name: string, sums: Map<string, string>, sumsPath: string) {
  const path = join(dir, name);
  const want = sums.get(name);
  if (!want) throw new NoiselabError(`${sumsPath}: no checksum for ${name}`, sumsPath);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NoiselabError(`${path}: missing (the vendored CIFAR-10 JPEG copy should be here)`, path);
    }
    throw e;
  }
  const got = sha256Hex(bytes);
  if (got !== want) {
    throw new NoiselabError(
      `${path}: sha256 mismatch (expected ${want} from SHA256SUMS, got ${got}); the file is corrupt or truncated`,
      path,
    );
  }
  return { path, bytes, sha256: got };
}

/** Result of {@link loadCifar10Jpeg}: the data set plus where its cache lives and whether it was used. */
export type JpegDataset = Omit<Dataset, "dataId"> & { cache?: { path: string; hit: boolean } };

/** Try to read a valid cache; undefined when absent, stale or damaged. */
async function readCache(
  binPath: string,
  jsonPath: string,
  expect: Omit<CacheHeader, "nTrain" | "nTest" | "bytes">,
) {
  const h = await readJsonIfExists<CacheHeader>(jsonPath).catch(() => undefined);
  if (!h || h.format !== expect.format || h.source !== expect.source) return undefined;
  if (h.archives?.train !== expect.archives.train || h.archives?.test !== expect.archives.test) {
    return undefined;
  }
  if (h.bytes !== (h.nTrain + h.nTest) * (IMAGE_BYTES + 1)) return undefined;
  let size: number;
  try {
    size = (await Deno.stat(binPath)).size;
  } catch {
    return undefined;
  }
  if (size !== h.bytes) return undefined;
  const buf = await Deno.readFile(binPath);
  if (buf.length !== h.bytes) return undefined;
  const a = h.nTrain * IMAGE_BYTES;
  const b = a + h.nTrain;
  const c = b + h.nTest * IMAGE_BYTES;
  const train: Split = { images: buf.subarray(0, a), labels: buf.subarray(a, b), n: h.nTrain };
  const test: Split = { images: buf.subarray(b, c), labels: buf.subarray(c, c + h.nTest), n: h.nTest };
  for (const s of [train, test]) {
    for (let i = 0; i < s.n; i++) if (s.labels[i] >= 10) return undefined;
  }
  return { train, test };
}

/**
 * Load the CIFAR-10 JPEG copy. Both archives are always checked against
 * SHA256SUMS; the decoded pixels come from the cache when it matches those
 * checksums, else the archives are decoded (a few seconds) and the cache is
 * written atomically.
 */
export async function loadCifar10Jpeg(opts: JpegLoadOptions): Promise<JpegDataset> {
  const dir = join(opts.dataDir, "cifar10-jpeg");
  const sumsPath = join(dir, "SHA256SUMS");
  let sumsText: string;
  try {
    sumsText = await Deno.readTextFile(sumsPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NoiselabError(
        `${sumsPath}: missing (the vendored CIFAR-10 JPEG copy is incomplete)`,
        sumsPath,
      );
    }
    throw e;
  }
  const sums = parseSha256Sums(sumsText, sumsPath);
  opts.onProgress?.({ phase: "verify archives", done: 0, total: 2 });
  const trainA = await readVerified(dir, JPEG_ARCHIVES.train, sums, sumsPath);
  const testA = await readVerified(dir, JPEG_ARCHIVES.test, sums, sumsPath);
  const files = [
    { path: `cifar10-jpeg/${JPEG_ARCHIVES.train}`, sha256: trainA.sha256 },
    { path: `cifar10-jpeg/${JPEG_ARCHIVES.test}`, sha256: testA.sha256 },
  ];
  const base = {
    name: "cifar10" as const,
    source: "cifar10-jpeg",
    sourceLabel: JPEG_SOURCE_LABEL,
    numClasses: 10,
    classNames: [...CIFAR10_CLASSES],
    files,
  };
  const useCache = opts.cache ?? true;
  const cacheDir = opts.cacheDir ?? join(opts.dataDir, "cache");
  const key = sha256Hex(`${trainA.sha256}:${testA.sha256}`).slice(0, 16);
  const binPath = join(cacheDir, `cifar10-jpeg-${key}.bin`);
  const jsonPath = join(cacheDir, `cifar10-jpeg-${key}.json`);
  const expect = {
    format: CACHE_FORMAT,
    source: "cifar10-jpeg",
    archives: { train: trainA.sha256, test: testA.sha256 },
    classNames: [...CIFAR10_CLASSES],
  };
  if (useCache) {
    opts.onProgress?.({ phase: "read cache", done: 0, total: 1 });
    const hit = await readCache(binPath, jsonPath, expect);
    if (hit) return { ...base, ...hit, cache: { path: binPath, hit: true } };
  }
  const train = await decodeSplit(trainA.bytes, trainA.path, "train", opts.onProgress);
  const test = await decodeSplit(testA.bytes, testA.path, "test", opts.onProgress);
  if (!useCache) return { ...base, train, test };
  const bytes = (train.n + test.n) * (IMAGE_BYTES + 1);
  const buf = new Uint8Array(bytes);
  let off = 0;
  for (const a of [train.images, train.labels, test.images, test.labels]) {
    buf.set(a, off);
    off += a.length;
  }
  try {
    await writeFileAtomic(binPath, buf);
    await writeJsonAtomic(
      jsonPath,
      { ...expect, nTrain: train.n, nTest: test.n, bytes } satisfies CacheHeader,
    );
  } catch (e) {
    // a read-only data folder must not stop the load; the next load decodes again
    console.warn(`noiselab: could not write the decoded-image cache ${binPath}: ${(e as Error).message}`);
    return { ...base, train, test };
  }
  return { ...base, train, test, cache: { path: binPath, hit: false } };
}

/** True when the JPEG copy's SHA256SUMS is present in `dataDir`. */
export function hasCifar10Jpeg(dataDir: string): Promise<boolean> {
  return exists(join(dataDir, "cifar10-jpeg", "SHA256SUMS"));
}
