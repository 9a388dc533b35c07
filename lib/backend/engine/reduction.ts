/**
 * The engine's reduction layout, read by the native shim (`reduction_parts()`) and by the TS side.
 * @module
 */
/**
 * The engine's reduction layout (native `reduction_parts()`): every reduction of a training step —
 * oneDNN's backward-weights convolutions and the hand-written BN / bias-gradient sums — runs in the
 * layout of this many threads, whatever `NOISELAB_THREADS` is, so the weights a run produces do not
 * depend on the machine's core count. 2 (the thread count every stored result was trained with)
 * unless `NOISELAB_REDUCTION_THREADS` is an integer 1-256 (parsed as the shim parses it).
 */
export function engineReductionThreads(): number {
  const raw = Deno.env.get("NOISELAB_REDUCTION_THREADS");
  const n = raw === undefined ? NaN : parseInt(raw, 10);
  return Number.isInteger(n) && n >= 1 && n <= 256 ? n : 2;
}
