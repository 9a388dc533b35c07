/**
 * The `noiselab` tfjs backend: the tfjs CPU backend's storage (typed arrays) and
 * every CPU kernel, with the hot kernels replaced by native oneDNN-backed ones.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadNative, type NativeEngine, nativeLoadError } from "./ffi.ts";
import { makeKernels, profiled } from "./kernels.ts";
import { installEngineGradients } from "./grads.ts";

/** Name under which the engine is registered with tfjs. */
export const ENGINE_NAME = "noiselab";

/** A MathBackendCPU whose hot kernels run in the native shim. */
export class NoiselabBackend extends MathBackendCPU {
  /** The loaded shim. */
  readonly native: NativeEngine;
  constructor(native: NativeEngine) {
    super();
    this.native = native;
    // silence the CPU backend's one-time "install tfjs-node" banner: this backend is the fast path
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
}

let registered: NativeEngine | null = null;

/**
 * Registers the `noiselab` backend with tfjs if the native shim loads (idempotent).
 * Returns the loaded shim, or null with the reason in {@link engineUnavailableReason}.
 * Does not make it the active backend (see `initBackend` in `lib/backend/mod.ts`).
 */
export function registerEngine(): NativeEngine | null {
  if (registered) return registered;
  const nat = loadNative();
  if (!nat) return null;
  const cpuKernels = tf.getKernelsForBackend("cpu");
  const byName = new Map(cpuKernels.map((k) => [k.kernelName, k]));
  const cpuKernel = (name: string) => {
    const k = byName.get(name);
    if (!k) throw new Error(`noiselab engine: the cpu backend has no kernel ${name}`);
    return k.kernelFunc as any;
  };
  const native = makeKernels(nat, cpuKernel);
  const nativeNames = new Set(native.map((k) => k.kernelName));
  for (const k of cpuKernels) {
    if (!nativeNames.has(k.kernelName)) {
      tf.registerKernel({
        ...k,
        backendName: ENGINE_NAME,
        kernelFunc: profiled(k.kernelName, k.kernelFunc as any, false) as any,
      });
    }
  }
  for (const k of native) tf.registerKernel(k);
  // priority 0: never picked implicitly; initBackend() selects it explicitly
  tf.registerBackend(ENGINE_NAME, () => new NoiselabBackend(nat), 0);
  installEngineGradients();
  registered = nat;
  return nat;
}

/** Why the engine could not be registered (shim missing or failing to load), or null. */
export function engineUnavailableReason(): string | null {
  return nativeLoadError();
}
