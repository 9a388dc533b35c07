/**
 * Seeded random numbers. Every random choice in noiselab goes through here so
 * that the same seed gives the same result on every run.
 * @module
 */
import seedrandom from "seedrandom";

/** A seeded uniform [0,1) generator (seedrandom's Alea: fast and well tested). */
export type Rng = () => number;

/** Make a deterministic generator from a seed (numbers and strings are both fine). */
export function makeRng(seed: string | number): Rng {
  // deno-lint-ignore no-explicit-any
  const alea = (seedrandom as any).alea as (s: string) => Rng;
  return alea(String(seed));
}

/** A random 32-bit integer seed derived from a generator. */
export function nextSeed(rng: Rng): number {
  return Math.floor(rng() * 0x100000000) >>> 0;
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(arr: T[] | Uint32Array | Int32Array, rng: Rng): typeof arr {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}

/** Fill `out` with standard normal samples (Box–Muller on the seeded generator). */
export function gaussianFill(rng: Rng, out: Float32Array): Float32Array {
  const n = out.length;
  let i = 0;
  while (i < n) {
    let u = rng();
    while (u <= 1e-300) u = rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * v;
    out[i++] = r * Math.cos(t);
    if (i < n) out[i++] = r * Math.sin(t);
  }
  return out;
}
