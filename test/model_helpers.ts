/** Helpers for the inference tests (fused_inference, native_plan): seeded images and BN statistics. */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { makeRng } from "../lib/util/rng.ts";

/** `n` seeded NHWC 32x32x3 images with pixels uniform in [-1.5, 1.5). */
export function images(n: number, seed: number): Float32Array {
  const r = makeRng(seed);
  const x = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 3;
  return x;
}

/** Give every BN layer non-trivial statistics and affine parameters (a trained model's are not 0/1). */
export function randomizeBN(model: tfl.LayersModel, seed: number): void {
  const r = makeRng(seed);
  for (const l of model.layers) {
    if (l.getClassName() !== "BatchNormalization") continue;
    for (const w of l.weights) {
      const kind = w.originalName.split("/").at(-1)!;
      const v = new Float32Array(w.shape[0]!).map(() =>
        kind === "moving_variance" ? 0.2 + r() * 2 : kind === "gamma" ? 0.5 + r() : (r() - 0.5) * 0.6
      );
      w.write(tf.tensor1d(v));
    }
  }
}
