/**
 * Matrix-multiplication kernels of the `noiselab` backend: BatchMatMul and
 * _FusedMatMul (bias, ReLU) through oneDNN.
 * @module
 */
import { type KernelContext, type KernelFn, type KernelTable, size, type TensorInfo } from "./context.ts";

/** BatchMatMul, _FusedMatMul. */
export function matmulKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, f32 } = ctx;

  function matmul(name: string, fused: boolean): KernelFn {
    const cpu = ctx.cpu(name);
    return (args) => {
      const inp = args.inputs as Record<string, TensorInfo>;
      const { a, b } = inp;
      const bias = fused ? inp.bias : undefined;
      const at = args.attrs as Record<string, any>;
      const activation = fused ? (at.activation ?? "linear") : "linear";
      const act = activation === "linear" ? 0 : activation === "relu" ? 1 : -1;
      const ra = a.shape.length, rb = b.shape.length;
      if (
        act < 0 || ra < 2 || ra !== rb || !f32(a, b, bias) || (fused && inp.preluActivationWeights != null)
      ) {
        return cpu(args);
      }
      const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
      if (batchA.some((d, i) => d !== batchB[i])) return cpu(args);
      const M = at.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
      const K = at.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
      const K2 = at.transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
      const N = at.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
      if (K !== K2) return cpu(args);
      if (bias != null && !(bias.shape.length === 1 && bias.shape[0] === N)) return cpu(args);
      const B = size(batchA);
      const c = alloc(args.backend, B * M * N);
      const p = Int32Array.of(
        B,
        M,
        N,
        K,
        at.transposeA ? 1 : 0,
        at.transposeB ? 1 : 0,
        bias != null ? 1 : 0,
        act,
      );
      nat.check(
        s.nl_matmul(vals(args.backend, a)!, vals(args.backend, b)!, vals(args.backend, bias), c, p),
        name,
      );
      return out(args.backend, [...batchA, M, N], c);
    };
  }

  return {
    BatchMatMul: matmul("BatchMatMul", false),
    _FusedMatMul: matmul("_FusedMatMul", true),
  };
}
