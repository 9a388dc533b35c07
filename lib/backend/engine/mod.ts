/**
 * The `noiselab` compute engine: a tfjs backend over oneDNN (Deno FFI).
 * Most code should call `initBackend()` from `lib/backend/mod.ts` instead.
 * @module
 */
export { ENGINE_NAME, engineUnavailableReason, NoiselabBackend, registerEngine } from "./register.ts";
export { layerFusionEnabled, reluFusions, withLayerFusion } from "./grads.ts";
export { engineSkipReason, ONEDNN_HEADERS, skipTagged } from "./expect.ts";
export { engineThreads, loadNative, type NativeEngine, nativeLibraryPath } from "./ffi.ts";
export {
  BN_INFER_RELU,
  BN_TRAIN,
  BN_TRAIN_GRAD,
  BN_TRAIN_RELU,
  engineStats,
  type KernelStat,
  RELU_GRAD,
  setEngineProfiling,
} from "./kernels/mod.ts";
export { type ConvPrecision, convPrecision, setConvPrecision } from "./precision.ts";
export { measurePeakGflops, type PeakGflops } from "./peak.ts";
export { createNativePlan, type NativePlan, nativePlansAvailable, PLAN_OP, PLAN_OP_INTS } from "./plan.ts";
