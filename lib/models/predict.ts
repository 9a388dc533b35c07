/**
 * Batched inference on NHWC Float32Array images, with no tensor leaks.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { withLayerFusion } from "../backend/engine/grads.ts";

function imageSize(model: tfl.LayersModel): [number, number, number] {
  const s = model.inputs[0].shape;
  if (s.length !== 4 || s.slice(1).some((d) => d === null)) {
    throw new NoiselabError(
      `model: expected an image model with input [N, H, W, C], got ${JSON.stringify(s)}`,
      "model",
    );
  }
  return [s[1]!, s[2]!, s[3]!];
}

function checkBatch(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NoiselabError(`batchSize: expected a positive integer, got ${batchSize}`, "batchSize");
  }
}

/** Number of images in `x` for this model; throws a NoiselabError naming `x` when the length does not fit. */
export function countImages(model: tfl.LayersModel, x: Float32Array): number {
  const [h, w, c] = imageSize(model);
  const per = h * w * c;
  if (!(x instanceof Float32Array) || x.length % per !== 0) {
    throw new NoiselabError(
      `x: expected a Float32Array of N*${h}*${w}*${c} values, got length ${x?.length}`,
      "x",
    );
  }
  return x.length / per;
}

/**
 * Logits for every image (row-major [n, classes]), `batchSize` images at a
 * time in inference mode (BN uses its moving statistics).
 */
export async function predictLogits(
  model: tfl.LayersModel,
  x: Float32Array,
  batchSize = 500,
): Promise<Float32Array> {
  checkBatch(batchSize);
  const n = countImages(model, x);
  const [h, w, c] = imageSize(model);
  const per = h * w * c;
  const classes = model.outputs[0].shape.at(-1) as number;
  const out = new Float32Array(n * classes);
  for (let s = 0; s < n; s += batchSize) {
    const b = Math.min(batchSize, n - s);
    const y = tf.tidy(() => {
      const xb = tf.tensor4d(x.subarray(s * per, (s + b) * per), [b, h, w, c]);
      // BN + ReLU pairs run fused on the engine (bitwise the separate layers)
      return withLayerFusion(model, () => model.predict(xb)) as tf.Tensor;
    });
    try {
      out.set(await y.data() as Float32Array, s * classes);
    } finally {
      y.dispose();
    }
  }
  return out;
}

/**
 * How a logits row becomes a prediction when it is not all finite (after
 * noise has made a BN variance negative, rows are NaN). A documented,
 * named parameter of every evaluation, never a hidden constant.
 *
 * - `"argmax-numpy"` (default, reproduces Keras/NumPy evaluations such as the
 *   paper's): exactly `numpy.argmax` on float rows. NumPy documents that "in
 *   case of multiple occurrences of the maximum values, the indices
 *   corresponding to the first occurrence are returned", and NaN compares as
 *   the maximum (NaN propagates, as in `np.maximum`), so the index of the
 *   FIRST NaN wins: an all-NaN row predicts class 0 and a row with its first
 *   NaN at index 3 predicts 3. +Inf is a normal maximum (first +Inf wins);
 *   an all -Inf row predicts 0. On a balanced test set a model whose every row
 *   is NaN thus scores chance (the paper's VGG16-BN 10.75% ≈ 10% / 93%).
 *   References: https://numpy.org/doc/stable/reference/generated/numpy.argmax.html,
 *   https://numpy.org/doc/stable/reference/generated/numpy.maximum.html.
 * - `"nonfinite-wrong"`: a row containing any NaN or ±Inf counts as a wrong
 *   prediction (a broken computation never scores); finite rows use the same
 *   first-maximum argmax. Accuracy then is at most 1 − nonFiniteShare.
 */
export type ScoringRule = "argmax-numpy" | "nonfinite-wrong";

/** Every scoring rule. */
export const SCORING_RULES: readonly ScoringRule[] = ["argmax-numpy", "nonfinite-wrong"];

/** The default scoring rule: NumPy's argmax (reproduces the paper's Keras evaluation). */
export const DEFAULT_SCORING_RULE: ScoringRule = "argmax-numpy";

/** Validate a scoring rule (undefined → the default); throws a NoiselabError naming `scoring`. */
export function resolveScoringRule(rule?: string): ScoringRule {
  if (rule === undefined) return DEFAULT_SCORING_RULE;
  if (!(SCORING_RULES as readonly string[]).includes(rule)) {
    throw new NoiselabError(
      `scoring: unknown scoring rule ${JSON.stringify(rule)}; use ${SCORING_RULES.join(", ")}`,
      "scoring",
    );
  }
  return rule as ScoringRule;
}

/**
 * Predicted class of row `row` of row-major `logits` ([n, classes]) under
 * `rule`; -1 means "counted wrong" (only `nonfinite-wrong` on a non-finite
 * row, or classes = 0).
 */
export function predictedClass(
  logits: ArrayLike<number>,
  row: number,
  classes: number,
  rule: ScoringRule = DEFAULT_SCORING_RULE,
): number {
  const o = row * classes;
  if (classes < 1) return -1;
  if (rule === "nonfinite-wrong") {
    for (let k = 0; k < classes; k++) if (!Number.isFinite(logits[o + k])) return -1;
  }
  // numpy's float argmax (numpy/_core/src/multiarray/arraytypes.c.src @fname@_argmax):
  // mp = row[0]; stop at the first NaN; replace only on a strictly larger value
  let mp = logits[o];
  let arg = 0;
  if (Number.isNaN(mp)) return 0;
  for (let k = 1; k < classes; k++) {
    const v = logits[o + k];
    if (!(v <= mp)) { // true for v > mp and for NaN
      mp = v;
      arg = k;
      if (Number.isNaN(v)) break;
    }
  }
  return arg;
}

/** True when every value of the row is finite (no NaN, no ±Inf). */
export function rowFinite(logits: ArrayLike<number>, row: number, classes: number): boolean {
  const o = row * classes;
  for (let k = 0; k < classes; k++) if (!Number.isFinite(logits[o + k])) return false;
  return true;
}

/** Scores of a logits matrix: see {@link scoreLogits}. */
export interface LogitScore {
  /** Rows scored (= labels.length). */
  n: number;
  /** Rows predicted correctly under the rule. */
  correct: number;
  /** Rows that are not all finite (contain NaN or ±Inf). */
  nonFinite: number;
  /** correct / n. */
  accuracy: number;
  /** nonFinite / n (0..1): the share of test images whose logits row is not all finite. */
  nonFiniteShare: number;
  scoring: ScoringRule;
}

/** Correct and non-finite rows of row-major `logits` ([labels.length, classes]) under `rule`. */
export function scoreLogits(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  rule: ScoringRule = DEFAULT_SCORING_RULE,
): LogitScore {
  const scoring = resolveScoringRule(rule);
  let correct = 0;
  let nonFinite = 0;
  const n = labels.length;
  for (let i = 0; i < n; i++) {
    if (!rowFinite(logits, i, classes)) nonFinite++;
    if (predictedClass(logits, i, classes, scoring) === labels[i]) correct++;
  }
  return { n, correct, nonFinite, accuracy: correct / n, nonFiniteShare: nonFinite / n, scoring };
}

/**
 * Number of rows whose predicted class (see {@link ScoringRule}; default
 * NumPy's argmax, so an all-NaN row predicts class 0) equals the label.
 */
export function countCorrect(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  rule: ScoringRule = DEFAULT_SCORING_RULE,
): number {
  return scoreLogits(logits, labels, classes, rule).correct;
}

/**
 * Accuracy and the share of non-finite logits rows of `model` on images `x`
 * with integer `labels`, under `scoring` (default {@link DEFAULT_SCORING_RULE}).
 */
export async function evaluateLogits(
  model: tfl.LayersModel,
  x: Float32Array,
  labels: ArrayLike<number>,
  opts: { batchSize?: number; scoring?: ScoringRule } = {},
): Promise<LogitScore> {
  const scoring = resolveScoringRule(opts.scoring);
  const n = countImages(model, x);
  if (labels.length !== n) {
    throw new NoiselabError(`labels: ${labels.length} labels for ${n} images`, "labels");
  }
  if (n === 0) throw new NoiselabError("x: no images to evaluate", "x");
  const classes = model.outputs[0].shape.at(-1) as number;
  const logits = await predictLogits(model, x, opts.batchSize ?? 500);
  return scoreLogits(logits, labels, classes, scoring);
}

/**
 * Top-1 accuracy (0..1) of `model` on images `x` with integer `labels`;
 * non-finite logits rows are scored by `scoring` (default NumPy's argmax).
 */
export async function accuracy(
  model: tfl.LayersModel,
  x: Float32Array,
  labels: ArrayLike<number>,
  batchSize = 500,
  scoring: ScoringRule = DEFAULT_SCORING_RULE,
): Promise<number> {
  return (await evaluateLogits(model, x, labels, { batchSize, scoring })).accuracy;
}
