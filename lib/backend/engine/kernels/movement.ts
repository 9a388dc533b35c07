/**
 * Data-movement kernels of the `noiselab` backend: Slice and PadV2 (rank ≤ 4)
 * through the shim, and Concat as typed-array copies into a recycled buffer.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type KernelContext, type KernelTable, MIN_NATIVE, size, type TensorInfo } from "./context.ts";

/** A shape of rank ≤ 4 padded with leading 1s to rank 4. */
const to4 = (shape: number[]) => Int32Array.from([...Array(4 - shape.length).fill(1), ...shape]);

/** Slice, PadV2, Concat. */
export function movementKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, fb } = ctx;
  return {
    Slice: fb("Slice", (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      const a = args.attrs as Record<string, any>;
      if (x.dtype !== "float32" || x.shape.length > 4 || x.shape.length === 0) return null;
      const [begin, sz] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin, a.size);
      const n = size(sz);
      if (n < MIN_NATIVE) return null;
      const y = alloc(args.backend, n);
      nat.check(
        s.nl_slice4(
          vals(args.backend, x)!,
          y,
          to4(x.shape),
          to4(begin).map((v, i) => i < 4 - begin.length ? 0 : v),
          to4(sz),
        ),
        "Slice",
      );
      return out(args.backend, [...sz], y);
    }),

    PadV2: fb("PadV2", (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      const a = args.attrs as Record<string, any>;
      const r = x.shape.length;
      if (x.dtype !== "float32" || r > 4 || r === 0) return null;
      const pads = a.paddings as [number, number][];
      const ys = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
      const n = size(ys);
      if (n < MIN_NATIVE) return null;
      const before = Int32Array.from([...Array(4 - r).fill(0), ...pads.map((p) => p[0])]);
      const y = alloc(args.backend, n);
      nat.check(
        s.nl_pad4(vals(args.backend, x)!, y, to4(x.shape), before, to4(ys), a.constantValue ?? 0),
        "PadV2",
      );
      return out(args.backend, ys, y);
    }),

    // Concat: plain typed-array copies (Float32Array.set is a memcpy) into a
    // recycled output; the cpu kernel allocates a fresh zeroed array, which for
    // lib/train's flat parameter vector (15M floats for VGG16) costs more than the copy.
    Concat: fb("Concat", (args) => {
      const ts = Object.values(args.inputs) as TensorInfo[];
      if (ts.length === 0 || !ts.every((t) => t.dtype === "float32")) return null;
      const r = ts[0].shape.length;
      if (r === 0) return null;
      const axis = tf.util.parseAxisParam((args.attrs as Record<string, any>).axis, ts[0].shape)[0];
      const outShape = tf.backend_util.computeOutShape(ts.map((t) => t.shape), axis);
      const n = size(outShape);
      if (n < MIN_NATIVE) return null;
      const outer = size(outShape.slice(0, axis));
      const inners = ts.map((t) => size(t.shape.slice(axis)));
      const rowLen = inners.reduce((a, b) => a + b, 0);
      const y = alloc(args.backend, n);
      const srcs = ts.map((t) => vals(args.backend, t)!);
      for (let o = 0; o < outer; o++) {
        let off = o * rowLen;
        for (let i = 0; i < srcs.length; i++) {
          const len = inners[i];
          if (len > 0) y.set(srcs[i].subarray(o * len, (o + 1) * len), off);
          off += len;
        }
      }
      return out(args.backend, outShape, y);
    }),
  };
}
