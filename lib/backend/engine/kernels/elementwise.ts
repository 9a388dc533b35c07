/**
 * Element-wise kernels of the `noiselab` backend: Relu and its gradient, and
 * Add / Sub / Multiply for same-shape, per-channel (last axis) and scalar
 * operands.
 * @module
 */
import { type KernelContext, type KernelTable, MIN_NATIVE, size, type TensorInfo } from "./context.ts";

/** Custom kernel: ReLU gradient `dx = x > 0 ? dy : 0` (inputs dy, x). */
export const RELU_GRAD = "NoiselabReluGrad";

/** Relu, {@link RELU_GRAD}, Add, Sub, Multiply. */
export function elementwiseKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, f32, fb } = ctx;
  const kernels: KernelTable = {
    Relu: fb("Relu", (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      const n = size(x.shape);
      if (x.dtype !== "float32" || n < MIN_NATIVE) return null;
      const y = alloc(args.backend, n);
      nat.check(s.nl_relu(vals(args.backend, x)!, y, BigInt(n)), "Relu");
      return out(args.backend, [...x.shape], y);
    }),
    [RELU_GRAD]: (args) => {
      const { dy, x } = args.inputs as Record<string, TensorInfo>;
      const n = size(x.shape);
      const dx = alloc(args.backend, n);
      nat.check(s.nl_relu_grad(vals(args.backend, dy)!, vals(args.backend, x)!, dx, BigInt(n)), RELU_GRAD);
      return out(args.backend, [...x.shape], dx);
    },
  };
  // [kernel, op code, op code with the operands swapped (the broadcast one first)]
  const binOps: [string, number, number][] = [["Add", 0, 0], ["Sub", 1, 3], ["Multiply", 2, 2]];
  for (const [name, op0, swappedOp] of binOps) {
    kernels[name] = fb(name, (args) => {
      let { a, b } = args.inputs as Record<string, TensorInfo>;
      let op = op0;
      if (!f32(a, b)) return null;
      const na = size(a.shape), nb = size(b.shape);
      if (na < MIN_NATIVE && nb < MIN_NATIVE) return null;
      const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
      const lastAxisBcast = (big: TensorInfo, small: TensorInfo) =>
        small.shape.length <= big.shape.length &&
        (size(small.shape) === 1 ||
          (small.shape.length >= 1 && small.shape.slice(0, -1).every((d) => d === 1) &&
            small.shape[small.shape.length - 1] === big.shape[big.shape.length - 1]));
      if (!sameShape) {
        if (lastAxisBcast(a, b)) { /* a big, b per-channel */ }
        else if (lastAxisBcast(b, a)) [a, b, op] = [b, a, swappedOp];
        else return null;
      }
      const n = size(a.shape);
      const y = alloc(args.backend, n);
      nat.check(
        s.nl_binary(vals(args.backend, a)!, vals(args.backend, b)!, y, BigInt(n), BigInt(size(b.shape)), op),
        name,
      );
      return out(args.backend, [...a.shape], y);
    });
  }
  return kernels;
}
