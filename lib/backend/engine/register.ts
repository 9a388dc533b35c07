/**
 * The `noiselab` tfjs backend: the tfjs CPU backend's storage (typed arrays) and
 * every CPU kernel, with the hot kernels replaced by native oneDNN-backed ones.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadNative, type NativeEngine, nativeLoadError } from "./ffi.ts";
import { makeKernels, profiled } from "./kernels/mod.ts";
import { installEngineGradients } from "./grads.ts";

/** Name under which the engine is registered with tfjs. */
export { ENGINE_NAME } from "./name.ts";
import { ENGINE_NAME } from "./name.ts";

/** Arrays of at least this many floats are recycled (smaller ones are cheap to allocate). */
const POOL_MIN = 1 << 14;
/** At most this many bytes are kept in the free pool. */
const POOL_MAX_BYTES = 2 ** 31;

/**
 * A MathBackendCPU whose hot kernels run in the native shim.
 *
 * Output buffers of the native kernels come from a free pool keyed by length:
 * a training step allocates and frees the same few multi-MB sizes every
 * step, and fresh `Float32Array`s cost page faults, zero-filling and GC work.
 * Safety rules: only buffers this backend allocated are recycled ("owned");
 * `readSync`/`read` (dataSync, data) return a copy of an owned buffer so
 * callers never hold memory that will be reused; a cpu fallback kernel whose
 * output aliases an owned buffer (e.g. a contiguous Slice is a subarray view)
 * disowns it.
 */
export class NoiselabBackend extends MathBackendCPU {
  /** The loaded shim. */
  readonly native: NativeEngine;
  private free = new Map<number, Float32Array[]>();
  private freeBytes = 0;
  private owned = new WeakSet<ArrayBufferLike>();
  constructor(native: NativeEngine) {
    super();
    this.native = native;
    // silence the CPU backend's one-time "install tfjs-node" banner: this backend is the fast path
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** An output buffer of n floats, NOT zeroed (the native kernels write every element). */
  alloc(n: number): Float32Array {
    if (n < POOL_MIN) return new Float32Array(n);
    const list = this.free.get(n);
    const a = list?.pop();
    if (a) {
      this.freeBytes -= a.byteLength;
      return a;
    }
    const fresh = new Float32Array(n);
    this.owned.add(fresh.buffer);
    return fresh;
  }

  /** Stops recycling the buffer behind `values` (it is aliased by a tensor this backend did not allocate). */
  disown(values: unknown): void {
    const buf = (values as { buffer?: ArrayBufferLike } | null)?.buffer;
    if (buf) this.owned.delete(buf);
  }

  /** True when `values` lives in a recyclable buffer. */
  isOwned(values: unknown): boolean {
    const buf = (values as { buffer?: ArrayBufferLike } | null)?.buffer;
    return buf != null && this.owned.has(buf);
  }

  override disposeData(dataId: object, force = false): boolean {
    const entry = this.data.get(dataId);
    const values = entry?.values as Float32Array | undefined;
    const done = super.disposeData(dataId, force);
    if (
      done && values instanceof Float32Array && values.length >= POOL_MIN && this.owned.has(values.buffer) &&
      values.byteOffset === 0 && values.byteLength === values.buffer.byteLength &&
      this.freeBytes + values.byteLength <= POOL_MAX_BYTES
    ) {
      let list = this.free.get(values.length);
      if (!list) this.free.set(values.length, list = []);
      list.push(values);
      this.freeBytes += values.byteLength;
    }
    return done;
  }

  override readSync(dataId: object): tf.BackendValues {
    const v = super.readSync(dataId);
    return this.isOwned(v) ? (v as Float32Array).slice() : v;
  }

  /** Drops the free pool (the memory goes back to the GC). */
  releasePool(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  override dispose(): void {
    this.releasePool();
    super.dispose();
  }
}

let registered: NativeEngine | null = null;

type AnyKernel = (
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
) => tf.TensorInfo | tf.TensorInfo[];

/** Wraps a cpu kernel: any output that shares a recyclable buffer (an input view) is disowned. */
export function disowningAliases(fn: AnyKernel): AnyKernel {
  return (args) => {
    const r = fn(args);
    const b = args.backend as NoiselabBackend;
    if (b instanceof NoiselabBackend) {
      const inIds = new Set(Object.values(args.inputs).map((t) => t?.dataId));
      for (const t of Array.isArray(r) ? r : [r]) {
        if (inIds.has(t.dataId)) continue; // shared data id (Reshape, Identity): refcounted, safe
        const v = b.data.get(t.dataId)?.values;
        if (b.isOwned(v)) b.disown(v);
      }
    }
    return r;
  };
}

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
    return disowningAliases(k.kernelFunc as any) as any;
  };
  const native = makeKernels(nat, cpuKernel);
  const nativeNames = new Set(native.map((k) => k.kernelName));
  for (const k of cpuKernels) {
    if (!nativeNames.has(k.kernelName)) {
      tf.registerKernel({
        ...k,
        backendName: ENGINE_NAME,
        kernelFunc: profiled(k.kernelName, disowningAliases(k.kernelFunc as any), false) as any,
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
