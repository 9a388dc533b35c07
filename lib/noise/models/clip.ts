/**
 * Weight clipping before mapping: W clipped to [−k·std(W), k·std(W)] per
 * tensor (population std), as analog-training recipes do before programming
 * (AIHWKit's weight clipping at a multiple of the weights' standard deviation,
 * e.g. `WeightClipType.LAYER_GAUSSIAN` with `sigma`), so one outlier does not
 * set max|W| — and with it every other weight's share of g_max — for the whole
 * tensor. k = 0: off (the values are returned unchanged).
 * @module
 */

/** Clipped copy of `w` at ±k·std(w) (k > 0), or `w` itself for k = 0. */
export function clipValues(w: Float32Array, k: number): Float32Array {
  if (!(k > 0) || w.length === 0) return w;
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i];
  const mean = s / w.length;
  let ss = 0;
  for (let i = 0; i < w.length; i++) ss += (w[i] - mean) ** 2;
  const c = k * Math.sqrt(ss / w.length);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = Math.min(Math.max(w[i], -c), c);
  return out;
}
