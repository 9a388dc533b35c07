/**
 * What every kernel family of the `noiselab` backend shares: typed access to
 * the CPU backend's storage (input arrays, recycled output buffers), the loaded
 * shim, and the cpu fallback. A native kernel handles the common case (float32,
 * NHWC, 1-D bias...) and returns `null` for anything else, which {@link KernelContext.fb}
 * hands to the tfjs `cpu` backend's kernel of the same name (it runs on this
 * backend because the storage is shared).
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type { NativeEngine, NativeSymbols } from "../ffi.ts";

/** tfjs' tensor handle inside a kernel. */
export type TensorInfo = tf.TensorInfo;
/** Arguments of a kernel function. */
export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
/** A kernel function. */
export type KernelFn = (args: KernelArgs) => TensorInfo | TensorInfo[];
/** A family's kernels by kernel name. */
export type KernelTable = Record<string, KernelFn>;

/** Number of elements of a shape. */
export const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Below this many elements the JS loop is as fast as a call into the shim. */
export const MIN_NATIVE = 1024;

/** The shim, storage access and fallbacks a kernel family is built from. */
export interface KernelContext {
  /** The loaded shim (`nat.check(rc, name)` turns a failing call into an error). */
  nat: NativeEngine;
  /** The shim's symbols (`nat.sym`). */
  s: NativeSymbols;
  /** The float32 array behind a tensor (null for an absent optional input). */
  vals(b: unknown, t: TensorInfo | undefined | null): Float32Array | null;
  /** A float32 output tensor over `values`. */
  out(b: unknown, shape: number[], values: Float32Array): TensorInfo;
  /** An output buffer of n floats from the backend's free pool (not zeroed). */
  alloc(b: unknown, n: number): Float32Array;
  /** True when every given tensor is float32 (absent ones count as float32). */
  f32(...ts: (TensorInfo | undefined | null)[]): boolean;
  /** The cpu kernel of `name`, marking {@link fallbackUsed} when it runs. */
  cpu(name: string): KernelFn;
  /** `native`, or the cpu kernel of `name` when `native` returns null. */
  fb(name: string, native: (args: KernelArgs) => TensorInfo | TensorInfo[] | null): KernelFn;
  /** Set when a cpu fallback ran (read by the profiler). */
  fallbackUsed: { used: boolean };
}

/** The context of a loaded shim; `cpuKernel(name)` gives the cpu fallback. */
export function kernelContext(nat: NativeEngine, cpuKernel: (name: string) => KernelFn): KernelContext {
  const fallbackUsed = { used: false };
  const cpu = (name: string): KernelFn => {
    const k = cpuKernel(name); // already wrapped to disown aliased outputs
    return (args) => {
      fallbackUsed.used = true;
      return k(args);
    };
  };
  return {
    nat,
    s: nat.sym,
    vals: (b, t) => t == null ? null : ((b as MathBackendCPU).data.get(t.dataId).values as Float32Array),
    out: (b, shape, values) => (b as MathBackendCPU).makeTensorInfo(shape, "float32", values),
    alloc: (b, n) => (b as { alloc?: (n: number) => Float32Array }).alloc?.(n) ?? new Float32Array(n),
    f32: (...ts) => ts.every((t) => t == null || t.dtype === "float32"),
    cpu,
    fb: (name, native) => {
      const k = cpu(name);
      return (args) => native(args) ?? k(args);
    },
    fallbackUsed,
  };
}
