/**
 * Precision of the engine's forward convolutions: "fp32" (default) or "bf16"
 * (inputs and weights rounded to bf16, fp32 accumulation and output; oneDNN
 * `brgconv:avx512_core_bf16` on CPUs with bf16 dot products). Used by the
 * opt-in bf16 sweep fast path (lib/noise `SweepOptions.fastPath: "bf16"`);
 * backward convolutions and every other kernel stay fp32.
 * @module
 */
import { loadNative } from "./ffi.ts";

/** A precision of the engine's forward convolutions. */
export type ConvPrecision = "fp32" | "bf16";

let current: ConvPrecision = "fp32";
let noticed = false;

/**
 * Sets the forward-convolution precision and returns the one in effect: "bf16"
 * falls back to "fp32" — with a one-line notice on stderr, once per process —
 * where the CPU lacks bf16 dot products (oneDNN's ISA is below
 * avx512_core_bf16) or the engine/shim is not loaded.
 */
export function setConvPrecision(p: ConvPrecision): ConvPrecision {
  const nat = loadNative();
  const set = nat?.sym.nl_set_conv_bf16;
  if (p === "bf16") {
    const on = set ? set(1) === 1 : false;
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
    current = on ? "bf16" : "fp32";
  } else {
    set?.(0);
    current = "fp32";
  }
  return current;
}

/** The forward-convolution precision in effect. */
export function convPrecision(): ConvPrecision {
  return current;
}
