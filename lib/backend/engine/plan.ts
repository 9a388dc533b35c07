/**
 * Native inference plans: a whole inference forward pass run by the engine's
 * shim in one call (`nl_plan_create` / `nl_plan_run`, the "native inference
 * plans" section of native/noiselab_dnnl.cc). lib/models `compileFusedInference`
 * builds the program (BN folded, conv + bias + ReLU fused; a residual add + ReLU
 * one pass in fp32 plans, fused into the convolution before it in bf16 plans)
 * and uses a plan when the engine is the active backend; this module is the
 * thin FFI layer.
 *
 * Program format (Int32Array, {@link PLAN_OP_INTS} ints per op): `[op, a, b,
 * out, ...params]` with slot numbers `a`, `b` (-1 when unused) and `out`;
 * slot 0 is the input, slot 1 the output. Ops and their params:
 * - `conv` (1): `b` = the residual summand (-1: none); params H, W, C, KH, KW,
 *   OC, OH, OW, SH, SW, DH, DW, PT, PL, PB, PR, relu, weight offset (HWIO),
 *   bias offset (-1: none) — the engine's Conv2D parameter block without N.
 * - `pad` (2): H, W, C, OH, OW, OC, before H, before W, before C (zeros).
 * - `subsample` (3): H, W, C, SH, SW, OH, OW (a 1x1 average pool with strides).
 * - `add` (4): elements per image, relu.
 * - `relu` (5): elements per image.
 * - `maxpool` (6): H, W, C, KH, KW, SH, SW, OH, OW, PT, PL.
 * - `gap` (7): H·W, C (global average pooling; f32 output).
 * - `dense` (8): K, U, relu, weight offset ([K, U]), bias offset (-1: none).
 * Slots: `[kind, elements per image]` pairs; kind 0 is always f32, kind 1 is
 * the plan's activation type (bf16 in a bf16 plan).
 * @module
 */
import { loadNative } from "./ffi.ts";

/** Ints per op record of a plan program. */
export const PLAN_OP_INTS = 24;
/** Op codes of a plan program (see the module notes). */
export const PLAN_OP = {
  conv: 1,
  pad: 2,
  subsample: 3,
  add: 4,
  relu: 5,
  maxpool: 6,
  gap: 7,
  dense: 8,
} as const;

/** A created native plan. Dispose it after use (it holds its slots and reordered weights). */
export interface NativePlan {
  /** "fp32" or "bf16" (activations and convolutions in bf16, f32 accumulation). */
  readonly precision: "fp32" | "bf16";
  /**
   * Runs the plan on `n` images `x` (NHWC f32, the input slot's elements per
   * image each), writing `out` (the output slot's elements per image each).
   * Returns false, with `out` unspecified, when the inputs of a fused ReLU were
   * not finite or so large that a partial sum could overflow (oneDNN's relu
   * post-op would map the NaN of +Inf + -Inf to 0, where tfjs keeps it): evaluate
   * those images on the per-layer path. Throws the shim's error otherwise.
   */
  run(x: Float32Array, n: number, out: Float32Array): boolean;
  dispose(): void;
}

/** Whether the loaded shim has native plans (a shim built before them has not). */
export function nativePlansAvailable(): boolean {
  return loadNative()?.sym.nl_plan_create != null;
}

/**
 * Creates a native plan from `program` ({@link PLAN_OP_INTS} ints per op),
 * `slots` (`[kind, elements per image]` pairs) and the f32 `params` the ops'
 * offsets point into (copied). Returns null where the shim is not loaded or has
 * no plans; throws the shim's error for a malformed program.
 */
export function createNativePlan(
  program: Int32Array,
  slots: Int32Array,
  params: Float32Array,
  precision: "fp32" | "bf16",
): NativePlan | null {
  const nat = loadNative();
  const create = nat?.sym.nl_plan_create, runFn = nat?.sym.nl_plan_run, free = nat?.sym.nl_plan_free;
  if (!nat || !create || !runFn || !free) return null;
  if (program.length % PLAN_OP_INTS !== 0) throw new Error(`native plan: program length ${program.length}`);
  const id = create(
    program,
    program.length / PLAN_OP_INTS,
    slots,
    slots.length / 2,
    params,
    BigInt(params.length),
    precision === "bf16" ? 1 : 0,
  );
  if (id < 0) nat.check(-1, "nl_plan_create");
  let live = true;
  return {
    precision,
    run(x, n, out) {
      if (!live) throw new Error("native plan: used after dispose");
      const rc = runFn(id, x, n, out);
      if (rc === 2) return false;
      nat.check(rc, "nl_plan_run");
      return true;
    },
    dispose() {
      if (live) free(id);
      live = false;
    },
  };
}
