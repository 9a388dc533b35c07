/**
 * The measured peak of this machine's cores (the engine shim's `nl_peak_gflops`):
 * GFLOP/s of register-resident loops of independent fp32 FMAs (`_mm512_fmadd_ps`,
 * or `_mm256_fmadd_ps` without AVX-512) and of bf16 dot products
 * (`_mm512_dpbf16_ps`) on every thread at once, the best of 3 runs of ~0.3 s.
 * It is the cores' FMA / dot-product peak: AMX tiles, where the CPU has them, are
 * not measured. Other processes on the same cores lower it like any timing.
 * @module
 */
import { engineThreads, loadNative } from "./ffi.ts";

/** Measured peaks in GFLOP/s, all threads together. */
export interface PeakGflops {
  /** fp32 FMA peak. */
  fp32: number;
  /** bf16 dot-product peak; null where the shim was built without AVX-512 BF16. */
  bf16: number | null;
  /** Threads it ran on. */
  threads: number;
}

/**
 * Measures the fp32 and bf16 peaks with `threads` threads (default: the engine's,
 * {@link engineThreads}); takes about 2-3 s. Null where the engine shim is not
 * loaded, predates `nl_peak_gflops`, or has no fp32 FMA loop for this build.
 */
export function measurePeakGflops(threads: number = engineThreads()): PeakGflops | null {
  const peak = loadNative()?.sym.nl_peak_gflops;
  if (!peak) return null;
  const fp32 = peak(0, threads);
  if (!(fp32 > 0)) return null;
  const bf16 = peak(1, threads);
  return { fp32, bf16: bf16 > 0 ? bf16 : null, threads };
}
