/**
 * Native kernels of the `noiselab` backend, one file per kernel family, all
 * registered here. Each kernel handles the common case (float32, NHWC, 1-D
 * bias...) through the oneDNN shim and hands anything else to the tfjs `cpu`
 * backend's kernel of the same name, which runs fine on this backend because
 * it shares the CPU backend's storage (context.ts).
 *
 * | file | kernels |
 * | --- | --- |
 * | conv.ts | Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter |
 * | matmul.ts | BatchMatMul, _FusedMatMul |
 * | pool.ts | MaxPool, AvgPool, MaxPoolGrad, AvgPoolGrad |
 * | batchnorm.ts | FusedBatchNorm, NoiselabBatchNormTrain(Grad) |
 * | elementwise.ts | Relu, NoiselabReluGrad, Add, Sub, Multiply |
 * | reduce.ts | Sum, Mean, NoiselabSpatialMeanGrad |
 * | movement.ts | Slice, PadV2, Concat |
 * | profile.ts | per-kernel counts and time (`setEngineProfiling`, `engineStats`) |
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { NativeEngine } from "../ffi.ts";
import { ENGINE_NAME } from "../name.ts";
import { batchNormKernels } from "./batchnorm.ts";
import { kernelContext, type KernelFn } from "./context.ts";
import { convKernels } from "./conv.ts";
import { elementwiseKernels } from "./elementwise.ts";
import { matmulKernels } from "./matmul.ts";
import { movementKernels } from "./movement.ts";
import { poolKernels } from "./pool.ts";
import { profiled } from "./profile.ts";
import { reduceKernels } from "./reduce.ts";

export { BN_INFER_RELU, BN_TRAIN, BN_TRAIN_GRAD, BN_TRAIN_RELU } from "./batchnorm.ts";
export { RELU_GRAD } from "./elementwise.ts";
export { isSpatialMean, SPATIAL_MEAN_GRAD } from "./reduce.ts";
export { engineStats, type KernelStat, profiled, setEngineProfiling } from "./profile.ts";
export type { KernelFn } from "./context.ts";

/** The kernel table of the backend for a loaded shim. `cpuKernel(name)` gives the fallback. */
export function makeKernels(nat: NativeEngine, cpuKernel: (name: string) => KernelFn): tf.KernelConfig[] {
  const ctx = kernelContext(nat, cpuKernel);
  const kernels = {
    ...convKernels(ctx),
    ...matmulKernels(ctx),
    ...poolKernels(ctx),
    ...batchNormKernels(ctx),
    ...elementwiseKernels(ctx),
    ...reduceKernels(ctx),
    ...movementKernels(ctx),
  };
  return Object.entries(kernels).map(([kernelName, kernelFunc]) => ({
    kernelName,
    backendName: ENGINE_NAME,
    kernelFunc: profiled(kernelName, kernelFunc, true, ctx.fallbackUsed) as unknown as tf.KernelFunc,
  }));
}
