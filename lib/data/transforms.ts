/**
 * Subsets, normalisation, augmentation and batching. These run inside
 * training loops, so they are plain typed-array loops that allocate as
 * little as possible (pass `out` buffers to reuse memory).
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { makeRng, type Rng, shuffleInPlace } from "../util/rng.ts";
import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE, type Split } from "./types.ts";

/** Per-channel mean and standard deviation on the 0..1 pixel scale. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

function numClassesOf(labels: Uint8Array): number {
  let m = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i] > m) m = labels[i];
  return m + 1;
}

/**
 * Indices (ascending) of a stratified random subset of `size` items: each
 * class gets `floor(size / classes)`; the remainder goes one each to the
 * classes first in a seeded order; a class with too few items gives its
 * share to the others. Same labels + size + seed ⇒ same indices.
 */
export function stratifiedIndices(labels: Uint8Array, size: number, seed: number | string): Uint32Array {
  const n = labels.length;
  if (!Number.isInteger(size) || size <= 0) {
    throw new NoiselabError(`size: expected a positive integer, got ${size}`, "size");
  }
  if (size >= n) return Uint32Array.from({ length: n }, (_, i) => i);
  const rng = makeRng(`stratified:${seed}`);
  const k = numClassesOf(labels);
  const byClass: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]].push(i);
  const quota = new Array<number>(k).fill(0);
  const order = shuffleInPlace(Array.from({ length: k }, (_, c) => c), rng) as number[];
  // hand out one per class in `order`, round after round, skipping exhausted classes
  let left = size;
  const base = Math.floor(size / k);
  for (let c = 0; c < k; c++) {
    quota[c] = Math.min(base, byClass[c].length);
    left -= quota[c];
  }
  while (left > 0) {
    let gave = false;
    for (const c of order) {
      if (left === 0) break;
      if (quota[c] < byClass[c].length) {
        quota[c]++;
        left--;
        gave = true;
      }
    }
    if (!gave) break; // cannot happen when size < n
  }
  const picked: number[] = [];
  for (let c = 0; c < k; c++) {
    if (quota[c] === 0) continue;
    const idx = shuffleInPlace(byClass[c], rng) as number[];
    for (let j = 0; j < quota[c]; j++) picked.push(idx[j]);
  }
  return Uint32Array.from(picked).sort();
}

/** Copy the images/labels at `indices` into a new split. */
export function takeIndices(split: Split, indices: ArrayLike<number>): Split {
  const m = indices.length;
  const images = new Uint8Array(m * IMAGE_BYTES);
  const labels = new Uint8Array(m);
  const coarse = split.coarseLabels ? new Uint8Array(m) : undefined;
  for (let j = 0; j < m; j++) {
    const i = indices[j];
    if (!(i >= 0 && i < split.n)) {
      throw new NoiselabError(`indices: ${i} is out of range 0..${split.n - 1}`, "indices");
    }
    images.set(split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
    labels[j] = split.labels[i];
    if (coarse) coarse[j] = split.coarseLabels![i];
  }
  const out: Split = { images, labels, n: m };
  if (coarse) out.coarseLabels = coarse;
  return out;
}

/**
 * A seeded stratified subset of `size` images (as equal per class as possible),
 * in the original order. `size >= split.n` returns `split` itself.
 */
export function stratifiedSubset(split: Split, size: number, seed: number | string): Split {
  if (!Number.isInteger(size) || size <= 0) {
    throw new NoiselabError(`size: expected a positive integer, got ${size}`, "size");
  }
  if (size >= split.n) return split;
  return takeIndices(split, stratifiedIndices(split.labels, size, seed));
}

/** Per-channel mean/std (population) of a split's pixels on the 0..1 scale. Use the TRAIN split. */
export function channelStats(split: Split): ChannelStats {
  if (split.n <= 0) throw new NoiselabError("split: empty split has no channel statistics", "split");
  // per-channel histograms: exact and fast (no float accumulation over 150M values);
  // Uint32 counts are safe up to 4M images
  const h0 = new Uint32Array(256), h1 = new Uint32Array(256), h2 = new Uint32Array(256);
  const px = split.images;
  const len = split.n * IMAGE_BYTES;
  for (let i = 0; i < len; i += 3) {
    h0[px[i]]++;
    h1[px[i + 1]]++;
    h2[px[i + 2]]++;
  }
  const hist = [h0, h1, h2];
  const count = split.n * IMAGE_SIZE * IMAGE_SIZE;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < CHANNELS; c++) {
    let s = 0;
    for (let v = 0; v < 256; v++) s += hist[c][v] * v;
    const m = s / count;
    let q = 0;
    for (let v = 0; v < 256; v++) q += hist[c][v] * (v - m) * (v - m);
    mean.push(m / 255);
    std.push(Math.sqrt(q / count) / 255);
  }
  return { mean, std };
}

/**
 * Pixels as float32 NHWC, `(p/255 - mean[c]) / std[c]`. Pass `out`
 * (length `n*3072`) to reuse a buffer.
 */
export function normalize(split: Split, stats: ChannelStats, out?: Float32Array): Float32Array {
  const len = split.n * IMAGE_BYTES;
  const dst = out ?? new Float32Array(len);
  if (dst.length < len) {
    throw new NoiselabError(`out: buffer holds ${dst.length} values, need ${len}`, "out");
  }
  for (let c = 0; c < CHANNELS; c++) {
    if (!(stats.std[c] > 0)) {
      throw new NoiselabError(`stats.std[${c}]: must be > 0, got ${stats.std[c]}`, "stats");
    }
  }
  // 256-entry lookup table per channel: one load per pixel instead of a divide
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < CHANNELS; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - stats.mean[c]) / stats.std[c];
  }
  const px = split.images;
  for (let i = 0; i < len; i += 3) {
    dst[i] = lut[px[i]];
    dst[i + 1] = lut[256 + px[i + 1]];
    dst[i + 2] = lut[512 + px[i + 2]];
  }
  return dst;
}

/** Options for {@link augmentBatch}. */
export interface AugmentOptions {
  /** Output buffer (length ≥ n*3072), reused across batches. Must not alias `x`. */
  out?: Float32Array;
  /** Padding width (default 4). */
  pad?: number;
  /**
   * Per-channel value of the padded border (default 0, i.e. 0 of the input's
   * scale; on normalised input pass `-mean/std` to mimic black padding).
   */
  fill?: number[];
  /** Random horizontal flip with probability 1/2 (default true). */
  flip?: boolean;
}

/**
 * Standard CIFAR augmentation of `n` NHWC 32x32x3 float images: pad by 4
 * (zeros), random 32x32 crop, random horizontal flip. Draws three numbers
 * per image from `rng` (dy, dx, flip), so a seeded rng gives the same batch.
 */
export function augmentBatch(x: Float32Array, n: number, rng: Rng, opts: AugmentOptions = {}): Float32Array {
  const S = IMAGE_SIZE;
  const len = n * IMAGE_BYTES;
  if (x.length < len) throw new NoiselabError(`x: holds ${x.length} values, need ${len} for n=${n}`, "x");
  const out = opts.out ?? new Float32Array(len);
  if (out.length < len) throw new NoiselabError(`out: holds ${out.length} values, need ${len}`, "out");
  if (
    out.buffer === x.buffer && out.byteOffset < x.byteOffset + len * 4 &&
    x.byteOffset < out.byteOffset + len * 4
  ) {
    throw new NoiselabError("out: must not overlap x", "out");
  }
  const pad = opts.pad ?? 4;
  const f0 = opts.fill?.[0] ?? 0, f1 = opts.fill?.[1] ?? 0, f2 = opts.fill?.[2] ?? 0;
  const doFlip = opts.flip ?? true;
  const span = 2 * pad + 1;
  for (let k = 0; k < n; k++) {
    const dy = Math.floor(rng() * span) - pad; // out(y,x) = in(y+dy, x+dx)
    const dx = Math.floor(rng() * span) - pad;
    const flip = doFlip && rng() < 0.5;
    const base = k * IMAGE_BYTES;
    for (let y = 0; y < S; y++) {
      const sy = y + dy;
      const orow = base + y * S * 3;
      if (sy < 0 || sy >= S) {
        for (let xx = 0; xx < S; xx++) {
          const o = orow + xx * 3;
          out[o] = f0;
          out[o + 1] = f1;
          out[o + 2] = f2;
        }
        continue;
      }
      const irow = base + sy * S * 3;
      for (let xx = 0; xx < S; xx++) {
        // flip mirrors the cropped image: output column xx shows crop column S-1-xx
        const sx = (flip ? S - 1 - xx : xx) + dx;
        const o = orow + xx * 3;
        if (sx < 0 || sx >= S) {
          out[o] = f0;
          out[o + 1] = f1;
          out[o + 2] = f2;
        } else {
          const i = irow + sx * 3;
          out[o] = x[i];
          out[o + 1] = x[i + 1];
          out[o + 2] = x[i + 2];
        }
      }
    }
  }
  return out;
}

/**
 * Split `0..n-1` into batches of `batchSize` (the last one may be smaller),
 * shuffled with `rng` when given. Returns views into one permutation array.
 */
export function batchIndices(n: number, batchSize: number, rng?: Rng): Uint32Array[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new NoiselabError(`n: expected a non-negative integer, got ${n}`, "n");
  }
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new NoiselabError(`batchSize: expected a positive integer, got ${batchSize}`, "batchSize");
  }
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  if (rng) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  }
  const out: Uint32Array[] = [];
  for (let s = 0; s < n; s += batchSize) out.push(perm.subarray(s, Math.min(n, s + batchSize)));
  return out;
}

/**
 * Gather the float images and labels at `idx` from `x` (NHWC float32, 3072 per
 * image) into `outX` / `outY` (allocated when not given). For building batches.
 */
export function gatherBatch(
  x: Float32Array,
  labels: Uint8Array,
  idx: ArrayLike<number>,
  outX?: Float32Array,
  outY?: Uint8Array,
): { x: Float32Array; y: Uint8Array } {
  const m = idx.length;
  const bx = outX ?? new Float32Array(m * IMAGE_BYTES);
  const by = outY ?? new Uint8Array(m);
  if (bx.length < m * IMAGE_BYTES) throw new NoiselabError(`outX: too small for ${m} images`, "outX");
  for (let j = 0; j < m; j++) {
    const i = idx[j];
    bx.set(x.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
    by[j] = labels[i];
  }
  return { x: bx, y: by };
}
