/**
 * Reduction kernels of the `noiselab` backend: Sum over every axis but the
 * last (bias gradients, BN-like reductions), Mean over the spatial axes of an
 * NHWC tensor (global average pooling) and that mean's gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type KernelContext, type KernelTable, MIN_NATIVE, size, type TensorInfo } from "./context.ts";

/** Custom kernel: gradient of a mean over the spatial axes of an NHWC tensor (input dy; attr xShape). */
export const SPATIAL_MEAN_GRAD = "NoiselabSpatialMeanGrad";

/** True for a Mean over axes 1 and 2 of a rank-4 tensor (what the native Mean handles). */
export function isSpatialMean(shape: number[], axis: number | number[]): boolean {
  if (shape.length !== 4) return false;
  const ax = tf.util.parseAxisParam(axis, shape).slice().sort();
  return ax.length === 2 && ax[0] === 1 && ax[1] === 2;
}

/** Sum, Mean, {@link SPATIAL_MEAN_GRAD}. */
export function reduceKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, fb } = ctx;
  return {
    Sum: fb("Sum", (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      const a = args.attrs as Record<string, any>;
      const r = x.shape.length;
      if (x.dtype !== "float32" || r < 2) return null;
      const axes = tf.util.parseAxisParam(a.axis, x.shape).slice().sort((p, q) => p - q);
      // only the "sum over every axis but the last" pattern (bias gradients, BN-like reductions)
      if (axes.length !== r - 1 || axes.some((ax, i) => ax !== i)) return null;
      const C = x.shape[r - 1];
      const n = size(x.shape);
      if (n < MIN_NATIVE) return null;
      const y = alloc(args.backend, C);
      nat.check(s.nl_sum_rows(vals(args.backend, x)!, y, BigInt(n / C), BigInt(C)), "Sum");
      const shape = a.keepDims ? [...Array(r - 1).fill(1), C] : [C];
      return out(args.backend, shape, y);
    }),

    Mean: fb("Mean", (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      const a = args.attrs as Record<string, any>;
      if (x.dtype !== "float32" || !isSpatialMean(x.shape, a.axis)) return null;
      const [N, H, W, C] = x.shape;
      const y = alloc(args.backend, N * C);
      nat.check(s.nl_spatial_mean(vals(args.backend, x)!, y, BigInt(N), BigInt(H * W), BigInt(C)), "Mean");
      return out(args.backend, a.keepDims ? [N, 1, 1, C] : [N, C], y);
    }),

    [SPATIAL_MEAN_GRAD]: (args) => {
      const { dy } = args.inputs as Record<string, TensorInfo>;
      const [N, H, W, C] = (args.attrs as Record<string, any>).xShape as number[];
      const dx = alloc(args.backend, N * H * W * C);
      nat.check(
        s.nl_spatial_mean_grad(vals(args.backend, dy)!, dx, BigInt(N), BigInt(H * W), BigInt(C)),
        SPATIAL_MEAN_GRAD,
      );
      return out(args.backend, [N, H, W, C], dx);
    },
  };
}
