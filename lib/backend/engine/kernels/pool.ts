/**
 * Pooling kernels of the `noiselab` backend: MaxPool, AvgPool and their
 * gradients through oneDNN (NHWC; 1x1 stride-1 windows and padded average
 * gradients stay on the cpu kernel).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type KernelContext, type KernelTable, size, type TensorInfo } from "./context.ts";

/** The shim's parameter block of a pooling. */
function poolParams(pi: tf.backend_util.Conv2DInfo, isMax: boolean): Int32Array {
  return Int32Array.of(
    pi.batchSize,
    pi.inHeight,
    pi.inWidth,
    pi.inChannels,
    pi.filterHeight,
    pi.filterWidth,
    pi.outHeight,
    pi.outWidth,
    pi.strideHeight,
    pi.strideWidth,
    pi.padInfo.top,
    pi.padInfo.left,
    pi.padInfo.bottom,
    pi.padInfo.right,
    isMax ? 1 : 0,
  );
}

function poolInfo(xShape: number[], a: Record<string, any>) {
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
}

/** MaxPool, MaxPoolGrad, AvgPool, AvgPoolGrad. */
export function poolKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, f32, fb } = ctx;
  const kernels: KernelTable = {};
  for (const isMax of [true, false]) {
    const fwdName = isMax ? "MaxPool" : "AvgPool";
    const bwdName = isMax ? "MaxPoolGrad" : "AvgPoolGrad";
    kernels[fwdName] = fb(fwdName, (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      if (x.shape.length !== 4 || !f32(x)) return null;
      const pi = poolInfo(x.shape, args.attrs as Record<string, any>);
      if (pi.filterHeight === 1 && pi.filterWidth === 1 && pi.strideHeight === 1 && pi.strideWidth === 1) {
        return null;
      }
      const y = alloc(args.backend, size(pi.outShape));
      nat.check(s.nl_pool_fwd(vals(args.backend, x)!, y, poolParams(pi, isMax)), fwdName);
      return out(args.backend, pi.outShape, y);
    });
    kernels[bwdName] = fb(bwdName, (args) => {
      const { dy, input } = args.inputs as Record<string, TensorInfo>;
      if (input.shape.length !== 4 || !f32(dy, input)) return null;
      const pi = poolInfo(input.shape, args.attrs as Record<string, any>);
      // tfjs' AvgPoolGrad divides by the full window size even where the window
      // overlaps the padding (its forward does not): keep tfjs' semantics there.
      const padded = pi.padInfo.top + pi.padInfo.bottom + pi.padInfo.left + pi.padInfo.right > 0;
      if (!isMax && padded) return null;
      if (pi.filterHeight === 1 && pi.filterWidth === 1 && pi.strideHeight === 1 && pi.strideWidth === 1) {
        return null;
      }
      const dx = alloc(args.backend, size(input.shape));
      nat.check(
        s.nl_pool_bwd(vals(args.backend, input)!, vals(args.backend, dy)!, dx, poolParams(pi, isMax)),
        bwdName,
      );
      return out(args.backend, [...input.shape], dx);
    });
  }
  return kernels;
}
