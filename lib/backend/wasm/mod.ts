/**
 * The tfjs `wasm` backend (`@tensorflow/tfjs-backend-wasm`, XNNPACK, SIMD) made
 * able to train CIFAR ResNet/VGG models under Deno: {@link initWasmBackend}
 * registers it with the training kernels of this folder (kernels.ts: the
 * convolution gradients as forward convolutions in conv_grads.ts, a correct
 * MaxPoolGrad, fast Tile and leading-axes Sum/Mean) and selects it.
 *
 * Threads: tfjs-wasm turns its threaded build off when it detects Node (Deno
 * counts), and forcing it on hung in tests here, so this module never forces
 * it: the backend runs the single-threaded SIMD build.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../util/paths.ts";
import { registerWasmTrainingKernels } from "./kernels.ts";

export { registerWasmTrainingKernels, wasmTrainingKernels } from "./kernels.ts";

/** Options for {@link initWasmBackend}. */
export interface WasmInitOptions {
  /**
   * Requested thread count. Only honoured by tfjs-wasm's threaded build, which
   * tfjs never selects under Deno (and this module does not force it), so in
   * practice the backend runs with 1 thread; {@link wasmBackendInfo} reports
   * the real count.
   */
  threads?: number;
  /** Folder holding `tfjs-backend-wasm*.wasm`; default: the project's node_modules copy. */
  wasmDir?: string;
}

/** What the wasm backend actually runs with (for provenance). */
export interface WasmBackendInfo {
  threads: number;
  simd: boolean;
  detail: string;
}

// deno-lint-ignore no-explicit-any
type WasmModule = any;

let wasmPkg: WasmModule | null = null;
let info: WasmBackendInfo | null = null;
let lastError: string | null = null;

/** Default location of the `.wasm` binaries: the npm package's `dist/` in the project's node_modules. */
export function defaultWasmDir(): string {
  return join(projectRoot, "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist");
}

/**
 * Registers the `wasm` backend with the training kernels of this folder and
 * makes it the active tfjs backend.
 *
 * Never throws: returns `false` (leaving the previous backend active) when the
 * package, its `.wasm` binary or WebAssembly SIMD is unavailable or the backend
 * fails to initialise; {@link wasmInitError} then says why.
 *
 * Call it once per process, before creating tensors that should live on wasm.
 * Calling it again is cheap and just re-selects `wasm`.
 */
export async function initWasmBackend(opts: WasmInitOptions = {}): Promise<boolean> {
  const previous = safeGetBackend();
  try {
    if (wasmPkg == null) {
      const dir = opts.wasmDir ?? defaultWasmDir();
      const simdFile = join(dir, "tfjs-backend-wasm-simd.wasm");
      if (!existsSync(simdFile)) {
        lastError = `wasm binary not found: ${simdFile}`;
        return false;
      }
      wasmPkg = await import("@tensorflow/tfjs-backend-wasm");
      // Under Deno the emscripten loader reads the binary with node:fs, so a
      // plain folder path (with trailing separator) works as the prefix.
      try {
        wasmPkg.setWasmPaths(dir.endsWith("/") ? dir : dir + "/");
      } catch (e) {
        // setWasmPaths refuses once the backend was initialised; harmless then.
        if (!String((e as Error)?.message ?? e).includes("before")) throw e;
      }
      if (opts.threads != null && Number.isInteger(opts.threads) && opts.threads > 0) {
        // Only affects the threaded build (never chosen under Deno); not forced.
        wasmPkg.setThreadsCount(opts.threads);
      }
    }
    registerWasmTrainingKernels();
    const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    if (!simd) {
      lastError = "WebAssembly SIMD is not supported by this runtime";
      return false;
    }
    const ok = await tf.setBackend("wasm");
    if (!ok || tf.getBackend() !== "wasm") {
      lastError = "tf.setBackend('wasm') failed (see the warning tfjs printed)";
      if (previous && previous !== "wasm") await tf.setBackend(previous).catch(() => false);
      return false;
    }
    await tf.ready();
    const threads = Number(wasmPkg.getThreadsCount?.() ?? 1);
    info = {
      threads,
      simd: true,
      detail: `tfjs-backend-wasm ${wasmPkg.version_wasm ?? "?"} (XNNPACK, SIMD, ${threads} thread${
        threads === 1 ? "" : "s"
      }; conv gradients as forward convs)`,
    };
    lastError = null;
    return true;
  } catch (e) {
    lastError = String((e as Error)?.message ?? e);
    try {
      if (previous && previous !== "wasm" && tf.getBackend() !== previous) await tf.setBackend(previous);
    } catch { /* keep whatever backend is active */ }
    return false;
  }
}

/** Why the last {@link initWasmBackend} call returned false (null after a success). */
export function wasmInitError(): string | null {
  return lastError;
}

/** Thread count, SIMD and a one-line description of the wasm backend; null before a successful init. */
export function wasmBackendInfo(): WasmBackendInfo | null {
  return info;
}

function safeGetBackend(): string | null {
  try {
    // getBackend() initialises the best backend when none is set; avoid that.
    return tf.engine().backendName ?? null;
  } catch {
    return null;
  }
}
