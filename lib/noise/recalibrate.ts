/**
 * Re-estimate BatchNorm moving statistics with the model's *current* (e.g.
 * noisy) weights — the "BN recalibration" remedy (Joshi et al. 2020).
 *
 * Exact, layer by layer: the calibration images flow through the network in
 * topological order; at each BN layer the mean and (biased) variance of its
 * input over ALL calibration images (and all pixels) are computed first and
 * written as the moving statistics, then the BN is applied in inference mode
 * with them, so each later BN sees inputs normalised with the already
 * recalibrated statistics. One forward pass in total; the activations of all
 * calibration images at the current layer(s) are held in memory at once.
 *
 * Hand-written because tfjs only updates moving statistics with momentum
 * during `fit`, which would mix in the old (clean) statistics.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { countImages } from "../models/predict.ts";

/** Options of {@link recalibrateBatchNorm}. */
export interface RecalibrateOptions {
  /** Number of batches to use (images = batches × batchSize, capped at what `x` holds). */
  batches: number;
  /** Images per forward chunk (default 128). */
  batchSize?: number;
}

// deno-lint-ignore no-explicit-any
type AnyLayer = any;

/**
 * Set every BN layer's moving mean/variance to the statistics of its input on
 * the first `batches × batchSize` images of `x`, computed layer by layer with
 * the current weights. Returns the number of BN layers updated.
 */
export async function recalibrateBatchNorm(
  model: tfl.LayersModel,
  x: Float32Array,
  opts: RecalibrateOptions,
): Promise<number> {
  const batchSize = opts.batchSize ?? 128;
  if (!Number.isInteger(opts.batches) || opts.batches < 1) {
    throw new NoiselabError(
      `recalibrateBN.batches: expected a positive integer, got ${opts.batches}`,
      "recalibrateBN",
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NoiselabError(
      `recalibrateBN.batchSize: expected a positive integer, got ${batchSize}`,
      "recalibrateBN",
    );
  }
  const total = countImages(model, x);
  const n = Math.min(total, opts.batches * batchSize);
  if (n < 1) throw new NoiselabError("recalibrateBN.x: no calibration images", "recalibrateBN");
  const [, h, w, c] = model.inputs[0].shape as number[];
  const per = h * w * c;

  const layers = model.layers as AnyLayer[];
  const inboundOf = (l: AnyLayer): string[] => {
    if (l.inboundNodes.length !== 1) {
      throw new NoiselabError(
        `model: layer ${l.name} is shared; recalibration supports single-use layers`,
        "model",
      );
    }
    return l.inboundNodes[0].inboundLayers.map((p: AnyLayer) => p.name);
  };
  // how many consumers each layer's output still has (outputs count as one)
  const pending = new Map<string, number>();
  for (const l of layers) {
    if (l.getClassName() === "InputLayer") continue;
    for (const p of inboundOf(l)) pending.set(p, (pending.get(p) ?? 0) + 1);
  }
  for (const o of model.outputLayers) pending.set(o.name, (pending.get(o.name) ?? 0) + 1);

  const values = new Map<string, tf.Tensor[]>();
  const release = (name: string) => {
    const left = (pending.get(name) ?? 1) - 1;
    pending.set(name, left);
    if (left <= 0) {
      tf.dispose(values.get(name) ?? []);
      values.delete(name);
    }
  };
  let updated = 0;
  try {
    for (const l of layers) {
      if (l.getClassName() === "InputLayer") {
        const chunks: tf.Tensor[] = [];
        for (let s = 0; s < n; s += batchSize) {
          const b = Math.min(batchSize, n - s);
          chunks.push(tf.tensor4d(x.subarray(s * per, (s + b) * per), [b, h, w, c]));
        }
        values.set(l.name, chunks);
        continue;
      }
      const ins = inboundOf(l).map((p) => values.get(p)!);
      if (l.getClassName() === "BatchNormalization") {
        await setStats(l, ins[0]);
        updated++;
      }
      const outs = ins[0].map((_, i) => {
        const args = ins.length === 1 ? ins[0][i] : ins.map((arr) => arr[i]);
        return l.apply(args, { training: false }) as tf.Tensor;
      });
      values.set(l.name, outs);
      for (const p of inboundOf(l)) release(p);
    }
  } finally {
    for (const v of values.values()) tf.dispose(v);
  }
  return updated;
}

/** Pooled per-channel mean / biased variance over all chunks, written into the BN layer. */
async function setStats(bn: AnyLayer, chunks: tf.Tensor[]): Promise<void> {
  const axis = (bn.getConfig() as { axis: number | number[] }).axis;
  const rank = chunks[0].rank;
  const ax = Array.isArray(axis) ? axis : [axis];
  if (ax.length !== 1 || !(ax[0] === -1 || ax[0] === rank - 1)) {
    throw new NoiselabError(`model: BN layer ${bn.name} does not normalise the last axis`, "model");
  }
  const cdim = chunks[0].shape[rank - 1];
  // Per-channel two-pass statistics straight over the chunk's values: tf.moments composes
  // element-wise ops that run as JS loops on the CPU-storage backends (~100 ms per
  // 128x32x32x16 chunk, which made recalibration 5 s per noise draw for ResNet-20).
  const parts: { count: number; mean: Float64Array; variance: Float64Array }[] = [];
  for (const t of chunks) {
    const d = await t.data() as Float32Array;
    const count = d.length / cdim;
    const mean = new Float64Array(cdim);
    for (let i = 0; i < d.length; i += cdim) for (let k = 0; k < cdim; k++) mean[k] += d[i + k];
    for (let k = 0; k < cdim; k++) mean[k] /= count;
    const variance = new Float64Array(cdim);
    for (let i = 0; i < d.length; i += cdim) {
      for (let k = 0; k < cdim; k++) {
        const e = d[i + k] - mean[k];
        variance[k] += e * e;
      }
    }
    for (let k = 0; k < cdim; k++) variance[k] /= count;
    parts.push({ count, mean, variance });
  }
  const N = parts.reduce((s, p) => s + p.count, 0);
  const mean = new Float64Array(cdim);
  for (const p of parts) for (let k = 0; k < cdim; k++) mean[k] += (p.count / N) * p.mean[k];
  const variance = new Float64Array(cdim);
  for (const p of parts) {
    for (let k = 0; k < cdim; k++) {
      variance[k] += (p.count / N) * (p.variance[k] + (p.mean[k] - mean[k]) ** 2);
    }
  }
  const find = (kind: string) =>
    bn.weights.find((v: tfl.LayerVariable) => v.originalName.endsWith(`/${kind}`));
  const mt = tf.tensor1d(Float32Array.from(mean));
  const vt = tf.tensor1d(Float32Array.from(variance));
  try {
    find("moving_mean").write(mt);
    find("moving_variance").write(vt);
  } finally {
    tf.dispose([mt, vt]);
  }
}
