/**
 * Batch-norm kernels of the `noiselab` backend: FusedBatchNorm (inference),
 * and the engine's own training-mode forward and gradient kernels that the
 * BatchNormalization hook (lib/backend/engine/grads.ts) calls.
 * @module
 */
import { type KernelContext, type KernelFn, type KernelTable, size, type TensorInfo } from "./context.ts";

/** Custom kernel: training batch norm over all but the last axis (inputs x, gamma, beta; attr epsilon) → [y, mean, variance]. */
export const BN_TRAIN = "NoiselabBatchNormTrain";
/**
 * Custom kernel: {@link BN_TRAIN} followed by tfjs' Relu in the same pass (same inputs and attrs)
 * → [relu(y), mean, variance], bitwise what BN_TRAIN then Relu give.
 */
export const BN_TRAIN_RELU = "NoiselabBatchNormTrainRelu";
/**
 * Custom kernel: gradient of {@link BN_TRAIN} (inputs dy, x, mean, variance, gamma; attr epsilon)
 * → [dx, dgamma, dbeta]. With input `y` (the output of {@link BN_TRAIN_RELU}), dy first goes
 * through tfjs' relu gradient at y, bitwise as the separate ReluGrad kernel would give it.
 */
export const BN_TRAIN_GRAD = "NoiselabBatchNormTrainGrad";

/**
 * Custom kernel: FusedBatchNorm (inference; same inputs and attrs) followed by tfjs' Relu in the
 * same pass → relu(y), bitwise what the two kernels give. Float32 x and 1-D statistics only.
 */
export const BN_INFER_RELU = "NoiselabBatchNormInferRelu";

/** FusedBatchNorm, {@link BN_INFER_RELU}, {@link BN_TRAIN}, {@link BN_TRAIN_RELU}, {@link BN_TRAIN_GRAD}. */
export function batchNormKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, f32, fb } = ctx;
  /** x's channel count (last axis), element count and rows (all but the last axis) as the shim takes them. */
  const dims = (x: TensorInfo) => {
    const C = x.shape[x.shape.length - 1], n = size(x.shape);
    return { C, n, rows: BigInt(n / C) };
  };
  /** FusedBatchNorm's native body; null where it needs the cpu kernel (not float32, params not 1-D). */
  const bnInfer = (args: Parameters<KernelFn>[0], relu: boolean) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo>;
    const { C, n, rows } = dims(x);
    const is1d = (t?: TensorInfo) => t == null || (t.shape.length === 1 && t.shape[0] === C);
    if (!f32(x, mean, variance, offset, scale) || ![mean, variance, offset, scale].every(is1d)) {
      return null;
    }
    const y = alloc(args.backend, n);
    const eps = (args.attrs as Record<string, any>).varianceEpsilon ?? 0.001;
    const b = args.backend;
    nat.check(
      s.nl_bn_infer(
        vals(b, x)!,
        vals(b, mean)!,
        vals(b, variance)!,
        vals(b, scale),
        vals(b, offset),
        y,
        rows,
        C,
        eps,
        relu ? 1 : 0,
      ),
      relu ? BN_INFER_RELU : "FusedBatchNorm",
    );
    return out(b, [...x.shape], y);
  };
  const bnTrain = (args: Parameters<KernelFn>[0], relu: boolean) => {
    const { x, gamma, beta } = args.inputs as Record<string, TensorInfo>;
    const { C, n, rows } = dims(x);
    const y = alloc(args.backend, n), mean = alloc(args.backend, C), v = alloc(args.backend, C);
    const b = args.backend;
    const eps = (args.attrs as Record<string, any>).epsilon as number;
    nat.check(
      s.nl_bn_train_fwd(
        vals(b, x)!,
        vals(b, gamma),
        vals(b, beta),
        y,
        mean,
        v,
        rows,
        C,
        eps,
        relu ? 1 : 0,
      ),
      relu ? BN_TRAIN_RELU : BN_TRAIN,
    );
    return [out(b, [...x.shape], y), out(b, [C], mean), out(b, [C], v)];
  };
  return {
    FusedBatchNorm: fb("FusedBatchNorm", (args) => bnInfer(args, false)),

    [BN_INFER_RELU]: (args) => {
      const r = bnInfer(args, true);
      if (r == null) {
        throw new Error(`${BN_INFER_RELU}: needs float32 x and 1-D float32 statistics of its last axis`);
      }
      return r;
    },

    [BN_TRAIN]: (args) => bnTrain(args, false),
    [BN_TRAIN_RELU]: (args) => bnTrain(args, true),

    [BN_TRAIN_GRAD]: (args) => {
      const { dy, x, mean, variance, gamma } = args.inputs as Record<string, TensorInfo>;
      const y = (args.inputs as Record<string, TensorInfo | undefined>).y; // BN_TRAIN_RELU's output
      const { C, n, rows } = dims(x);
      const dx = alloc(args.backend, n), dg = alloc(args.backend, C), db = alloc(args.backend, C);
      const b = args.backend;
      const eps = (args.attrs as Record<string, any>).epsilon as number;
      nat.check(
        s.nl_bn_train_bwd(
          vals(b, dy)!,
          vals(b, x)!,
          vals(b, mean)!,
          vals(b, variance)!,
          vals(b, gamma),
          y ? vals(b, y)! : null,
          dx,
          dg,
          db,
          rows,
          C,
          eps,
        ),
        BN_TRAIN_GRAD,
      );
      return [out(b, [...x.shape], dx), out(b, [C], dg), out(b, [C], db)];
    },
  };
}
