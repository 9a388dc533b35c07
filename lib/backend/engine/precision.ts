/**
 * Precision of the engine's convolutions: "fp32" (default) or "bf16" (inputs,
 * weights and — in training — output gradients rounded to bf16; fp32
 * accumulation, fp32 outputs and gradients; oneDNN's `avx512_core_bf16`
 * kernels, or AMX, on CPUs with bf16 dot products).
 *
 * Two scopes: `"inference"` puts the forward convolutions in bf16 (the opt-in
 * bf16 sweep fast path, lib/noise `SweepOptions.fastPath: "bf16"`);
 * `"training"` puts the forward and both backward convolutions in bf16
 * (mixed-precision training, lib/train `TrainConfig.precision: "bf16"`: the
 * master weights, the optimizer, BN statistics, the loss and every other kernel
 * stay fp32, as in PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)`
 * where convolutions and matmuls are the bf16 ops). Matmuls (the dense
 * classifier, <1% of the FLOPs here) stay fp32.
 * @module
 */
import { loadNative } from "./ffi.ts";

/** A precision of the engine's convolutions. */
export type ConvPrecision = "fp32" | "bf16";
/** Which convolutions a bf16 precision covers: forward only, or forward and backward. */
export type PrecisionScope = "inference" | "training";

/** The shim's mode now in effect: 0 fp32, 1 bf16 forward (inference), 2 bf16 forward + backward (training). */
let currentMode = 0;
let noticed = false;

/**
 * Sets the convolution precision and returns the one in effect: "bf16" falls
 * back to "fp32" — with a one-line notice on stderr, once per process — where
 * the CPU lacks bf16 dot products (oneDNN's ISA is below avx512_core_bf16) or
 * the engine/shim is not loaded.
 * @param p the precision
 * @param scope "inference" (forward convolutions; default) or "training"
 *   (forward and backward convolutions)
 */
export function setConvPrecision(p: ConvPrecision, scope: PrecisionScope = "inference"): ConvPrecision {
  const nat = loadNative();
  const set = nat?.sym.nl_set_conv_bf16;
  if (p === "bf16") {
    const mode = scope === "training" ? 2 : 1;
    const on = set ? set(mode) === mode : false;
    if (!on && !noticed) {
      noticed = true;
      console.error(
        `[engine] bf16 convolutions unavailable (${
          set
            ? "the CPU has no avx512_core_bf16/AMX per oneDNN"
            : "engine shim not loaded or built without bf16"
        }); using fp32`,
      );
    }
    currentMode = on ? mode : 0;
  } else {
    set?.(0);
    currentMode = 0;
  }
  return convPrecision();
}

/** The convolution precision in effect. */
export function convPrecision(): ConvPrecision {
  return currentMode === 0 ? "fp32" : "bf16";
}

/** Whether bf16 convolutions are available here (probes and restores the current setting). */
export function bf16Available(): boolean {
  const set = loadNative()?.sym.nl_set_conv_bf16;
  if (!set) return false;
  const ok = set(1) === 1;
  set(currentMode); // restores the mode in effect (a bf16 training scope stays a training scope)
  return ok;
}
