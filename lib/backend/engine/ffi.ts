/**
 * Loads the engine's native shim (`native/build/libnoiselab_dnnl.so`, C++ over
 * oneDNN) with `Deno.dlopen` and exposes its functions with typed signatures.
 * @module
 */
import { engineReductionThreads } from "./reduction.ts";

const SYMBOLS = {
  nl_init: { parameters: ["i32"], result: "i32" },
  nl_last_error: { parameters: [], result: "pointer" },
  nl_info: { parameters: [], result: "pointer" },
  nl_conv_impl: { parameters: ["buffer"], result: "pointer" },
  nl_conv_fwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_conv_bwd_data: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_conv_bwd_weights: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_matmul: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_pool_fwd: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  nl_pool_bwd: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_bn_train_fwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i64", "i32", "f64", "i32"],
    result: "i32",
  },
  nl_bn_train_bwd: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i32",
      "f64",
    ],
    result: "i32",
  },
  nl_bn_infer: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i64", "i32", "f64", "i32"],
    result: "i32",
  },
  nl_relu: { parameters: ["buffer", "buffer", "i64"], result: "i32" },
  nl_relu_grad: { parameters: ["buffer", "buffer", "buffer", "i64"], result: "i32" },
  nl_binary: { parameters: ["buffer", "buffer", "buffer", "i64", "i64", "i32"], result: "i32" },
  nl_sum_rows: { parameters: ["buffer", "buffer", "i64", "i64"], result: "i32" },
  nl_slice4: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  nl_pad4: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "f32"], result: "i32" },
  nl_spatial_mean: { parameters: ["buffer", "buffer", "i64", "i64", "i64"], result: "i32" },
  nl_spatial_mean_grad: { parameters: ["buffer", "buffer", "i64", "i64", "i64"], result: "i32" },
  // optional: a shim built before it existed still loads (then bf16 is simply unavailable)
  nl_set_conv_bf16: { parameters: ["i32"], result: "i32", optional: true },
  // optional likewise: the measured fp32 FMA (kind 0) / bf16 dot-product (kind 1) peak in GFLOP/s, -1 where unsupported
  nl_peak_gflops: { parameters: ["i32", "i32"], result: "f64", optional: true },
  // optional likewise: native inference plans (lib/backend/engine plan.ts)
  nl_plan_create: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer", "i64", "i32"],
    result: "i32",
    optional: true,
  },
  nl_plan_run: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32", optional: true },
  nl_plan_free: { parameters: ["i32"], result: "i32", optional: true },
} as const;

/** The shim's functions, as returned by `Deno.dlopen`. */
export type NativeSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A loaded shim: its symbols, the thread count in effect and a description for provenance. */
export interface NativeEngine {
  sym: NativeSymbols;
  threads: number;
  detail: string;
  /** Throws the shim's last error if `rc` is not 0. */
  check(rc: number, what: string): void;
  /** The oneDNN implementation chosen for a convolution parameter block (diagnostics). */
  convImpl(p: Int32Array): string;
}

/**
 * Absolute path of the shim built by `native/build.sh`, or `NOISELAB_ENGINE_LIB`
 * when set (tests use it to check what happens without a working shim).
 */
export function nativeLibraryPath(): string {
  const env = Deno.env.get("NOISELAB_ENGINE_LIB");
  if (env != null && env !== "") return env;
  return new URL("./native/build/libnoiselab_dnnl.so", import.meta.url).pathname;
}

/** Threads to use: `NOISELAB_THREADS` if set (a positive integer), else the cores this process may use. */
export function engineThreads(): number {
  const env = Deno.env.get("NOISELAB_THREADS");
  if (env != null && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`NOISELAB_THREADS must be a positive integer, got "${env}"`);
    }
    return n;
  }
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

let loaded: NativeEngine | null = null;
let loadError: string | null = null;

/**
 * Loads the shim once. Returns null (and remembers why, see {@link nativeLoadError})
 * when the library is missing or fails to load. Sets `OMP_NUM_THREADS` before the
 * first load so that OpenMP (used by oneDNN and the shim) starts with that many threads.
 */
export function loadNative(): NativeEngine | null {
  if (loaded || loadError) return loaded;
  const path = nativeLibraryPath();
  try {
    Deno.statSync(path);
  } catch {
    loadError = `native shim not built (${path} missing; run lib/backend/engine/native/build.sh)`;
    return null;
  }
  let threads: number;
  try {
    threads = engineThreads();
    Deno.env.set("OMP_NUM_THREADS", String(threads));
    // With fewer threads than the reduction layout (engineReductionThreads), the backward-weights
    // convolutions still run that many: OpenMP threads that sleep instead of spinning between and
    // inside those regions keep them from stealing the cores of the pool's other workers (a 2-worker
    // pool of 1-thread processes on 2 cores ran 1.3x slower spinning; as before with PASSIVE).
    if (threads < engineReductionThreads() && !Deno.env.get("OMP_WAIT_POLICY")) {
      Deno.env.set("OMP_WAIT_POLICY", "PASSIVE");
    }
    const lib = Deno.dlopen(path, SYMBOLS);
    const sym = lib.symbols;
    const cstr = (p: Deno.PointerValue) => (p == null ? "" : Deno.UnsafePointerView.getCString(p));
    const got = sym.nl_init(threads);
    if (got < 0) throw new Error(`nl_init failed: ${cstr(sym.nl_last_error())}`);
    loaded = {
      sym,
      threads: got,
      detail: cstr(sym.nl_info()),
      check(rc: number, what: string) {
        if (rc !== 0) throw new Error(`noiselab engine: ${what} failed: ${cstr(sym.nl_last_error())}`);
      },
      convImpl(p: Int32Array) {
        return cstr(sym.nl_conv_impl(p));
      },
    };
  } catch (e) {
    loadError = `native shim failed to load: ${e instanceof Error ? e.message : String(e)}`;
    return null;
  }
  return loaded;
}

/** Why {@link loadNative} returned null, or null if it did not. */
export function nativeLoadError(): string | null {
  return loadError;
}
