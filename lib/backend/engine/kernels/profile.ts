/**
 * Per-kernel profiling of the `noiselab` backend (`deno task bench --profile`):
 * call counts split into native calls and cpu fallbacks, and time per kernel.
 * @module
 */
import type { KernelFn } from "./context.ts";

/** Per-kernel call counts and time (ms), split into native calls and cpu fallbacks. */
export interface KernelStat {
  native: number;
  fallback: number;
  ms: number;
}
const stats = new Map<string, KernelStat>();
let profiling = false;
/** With NOISELAB_PROFILE_SHAPES=1 the profile is split by input shapes. */
const withShapes = (() => {
  try {
    return Deno.env.get("NOISELAB_PROFILE_SHAPES") === "1";
  } catch {
    return false;
  }
})();

/** Turns per-kernel counting/timing on or off (off by default; on costs a performance.now() per kernel). Resets the counters. */
export function setEngineProfiling(on: boolean): void {
  profiling = on;
  stats.clear();
}

/** Counters collected since {@link setEngineProfiling}(true), by kernel name. */
export function engineStats(): Record<string, KernelStat> {
  return Object.fromEntries([...stats].map(([k, v]) => [k, { ...v }]));
}

function record(name: string, native: boolean, ms: number) {
  let st = stats.get(name);
  if (!st) stats.set(name, st = { native: 0, fallback: 0, ms: 0 });
  if (native) st.native++;
  else st.fallback++;
  st.ms += ms;
}

/** Wraps a kernel so that, while profiling, calls and time are recorded (native unless the cpu fallback ran). */
export function profiled(
  name: string,
  fn: KernelFn,
  isNative: boolean,
  fallbackFlag?: { used: boolean },
): KernelFn {
  return (args) => {
    if (!profiling) return fn(args);
    if (fallbackFlag) fallbackFlag.used = false;
    const t0 = performance.now();
    const r = fn(args);
    const key = withShapes
      ? `${name}[${Object.values(args.inputs).map((t) => t ? t.shape.join("x") : "-").join(",")}]`
      : name;
    record(key, isNative && !(fallbackFlag?.used ?? false), performance.now() - t0);
    return r;
  };
}
