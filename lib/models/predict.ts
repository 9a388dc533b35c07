/**
 * Batched inference on NHWC Float32Array images, with no tensor leaks.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";

function imageSize(model: tfl.LayersModel): [number, number, number] {
  const s = model.inputs[0].shape;
  if (s.length !== 4 || s.slice(1).some((d) => d === null)) {
    throw new NoiselabError(
      `model: expected an image model with input [N, H, W, C], got ${JSON.stringify(s)}`,
      "model",
    );
  }
  return [s[1]!, s[2]!, s[3]!];
}

function checkBatch(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NoiselabError(`batchSize: expected a positive integer, got ${batchSize}`, "batchSize");
  }
}

/** Number of images in `x` for this model; throws a NoiselabError naming `x` when the length does not fit. */
export function countImages(model: tfl.LayersModel, x: Float32Array): number {
  const [h, w, c] = imageSize(model);
  const per = h * w * c;
  if (!(x instanceof Float32Array) || x.length % per !== 0) {
    throw new NoiselabError(
      `x: expected a Float32Array of N*${h}*${w}*${c} values, got length ${x?.length}`,
      "x",
    );
  }
  return x.length / per;
}

/**
 * Logits for every image (row-major [n, classes]), `batchSize` images at a
 * time in inference mode (BN uses its moving statistics).
 */
export async function predictLogits(
  model: tfl.LayersModel,
  x: Float32Array,
  batchSize = 500,
): Promise<Float32Array> {
  checkBatch(batchSize);
  const n = countImages(model, x);
  const [h, w, c] = imageSize(model);
  const per = h * w * c;
  const classes = model.outputs[0].shape.at(-1) as number;
  const out = new Float32Array(n * classes);
  for (let s = 0; s < n; s += batchSize) {
    const b = Math.min(batchSize, n - s);
    const y = tf.tidy(() => {
      const xb = tf.tensor4d(x.subarray(s * per, (s + b) * per), [b, h, w, c]);
      return model.predict(xb) as tf.Tensor;
    });
    try {
      out.set(await y.data() as Float32Array, s * classes);
    } finally {
      y.dispose();
    }
  }
  return out;
}

/**
 * Number of rows whose arg-max equals the label. A row containing NaN (e.g.
 * after noise made a BN variance negative) counts as wrong, never as class 0.
 */
export function countCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = -Infinity;
    let arg = -1;
    let bad = false;
    for (let k = 0; k < classes; k++) {
      const v = logits[i * classes + k];
      if (Number.isNaN(v)) {
        bad = true;
        break;
      }
      if (v > best) {
        best = v;
        arg = k;
      }
    }
    if (!bad && arg === labels[i]) correct++;
  }
  return correct;
}

/** Top-1 accuracy (0..1) of `model` on images `x` with integer `labels`. */
export async function accuracy(
  model: tfl.LayersModel,
  x: Float32Array,
  labels: ArrayLike<number>,
  batchSize = 500,
): Promise<number> {
  const n = countImages(model, x);
  if (labels.length !== n) {
    throw new NoiselabError(`labels: ${labels.length} labels for ${n} images`, "labels");
  }
  if (n === 0) throw new NoiselabError("x: no images to evaluate", "x");
  const classes = model.outputs[0].shape.at(-1) as number;
  const logits = await predictLogits(model, x, batchSize);
  return countCorrect(logits, labels, classes) / n;
}
