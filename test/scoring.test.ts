/**
 * The scoring rule for logits rows that are not all finite (lib/models
 * predict.ts), on hand-made logits: "argmax-numpy" is exactly numpy.argmax
 * (first NaN wins, +Inf is an ordinary maximum, ties → first index),
 * "nonfinite-wrong" scores such rows as wrong.
 */
import assert from "node:assert/strict";
import {
  countCorrect,
  DEFAULT_SCORING_RULE,
  predictedClass,
  resolveScoringRule,
  scoreLogits,
  SCORING_RULES,
} from "../lib/models/predict.ts";
import { NoiselabError } from "../lib/util/errors.ts";

const NaN_ = Number.NaN, Inf = Infinity;

/** Predicted class of one row under a rule. */
const pred = (row: number[], rule: "argmax-numpy" | "nonfinite-wrong") =>
  predictedClass(new Float32Array(row), 0, row.length, rule);

Deno.test("argmax-numpy matches numpy.argmax on NaN, ±Inf and ties", () => {
  // expected values are what numpy 1.x/2.x returns for np.argmax(np.array(row, dtype=np.float32))
  const cases: [number[], number][] = [
    [[NaN_, NaN_, NaN_, NaN_], 0], // all-NaN row → class 0 (the paper's chance-level signature)
    [[0.1, 2, 0.3, NaN_, 9], 3], // the first NaN wins, even over a larger finite value after it
    [[NaN_, 5, 1], 0],
    [[1, NaN_, 3, NaN_], 1],
    [[1, Inf, 3], 1], // +Inf is a normal maximum
    [[Inf, 2, Inf], 0], // ties at +Inf → first
    [[1, Inf, NaN_], 2], // NaN beats +Inf
    [[-Inf, -Inf, -Inf], 0], // all -Inf → first index
    [[-Inf, -5, -Inf], 1],
    [[2, 7, 7, 1], 1], // ties → first occurrence
    [[-3, -1, -2], 1],
  ];
  for (const [row, want] of cases) assert.equal(pred(row, "argmax-numpy"), want, JSON.stringify(row));
  assert.equal(DEFAULT_SCORING_RULE, "argmax-numpy");
  assert.equal(pred([NaN_, NaN_], DEFAULT_SCORING_RULE), 0);
});

Deno.test("nonfinite-wrong: any NaN or ±Inf in a row makes it wrong; finite rows as argmax-numpy", () => {
  for (const row of [[NaN_, NaN_, NaN_], [0.1, 2, 0.3, NaN_], [1, Inf, 3], [-Inf, 0, 1]]) {
    assert.equal(pred(row, "nonfinite-wrong"), -1, JSON.stringify(row));
  }
  for (const row of [[2, 7, 7, 1], [-3, -1, -2], [0, 0, 0]]) {
    assert.equal(pred(row, "nonfinite-wrong"), pred(row, "argmax-numpy"), JSON.stringify(row));
  }
});

Deno.test("scoreLogits / countCorrect: accuracy and non-finite share per rule", () => {
  // 5 rows, 4 classes: all-NaN, NaN at index 3, +Inf at index 2, finite (argmax 1), -Inf present (argmax 0)
  const logits = new Float32Array([
    ...[NaN_, NaN_, NaN_, NaN_],
    ...[0, 9, 1, NaN_],
    ...[0, 1, Inf, 3],
    ...[0, 4, 1, 2],
    ...[5, -Inf, 1, 2],
  ]);
  const labels = [0, 3, 2, 1, 0];
  const np = scoreLogits(logits, labels, 4, "argmax-numpy");
  assert.deepEqual(np, {
    n: 5,
    correct: 5,
    nonFinite: 4,
    accuracy: 1,
    nonFiniteShare: 0.8,
    scoring: "argmax-numpy",
  });
  const wrong = scoreLogits(logits, labels, 4, "nonfinite-wrong");
  assert.equal(wrong.correct, 1, "only the finite row scores");
  assert.equal(wrong.nonFiniteShare, 0.8);
  assert.equal(countCorrect(logits, labels, 4), 5, "default rule = argmax-numpy");
  assert.equal(countCorrect(logits, labels, 4, "nonfinite-wrong"), 1);
  // all-NaN predictions on a balanced label set: chance accuracy (1/classes) under numpy's rule
  const allNaN = new Float32Array(40).fill(NaN_);
  const balanced = Array.from({ length: 10 }, (_, i) => i % 4);
  assert.equal(scoreLogits(allNaN, balanced, 4).accuracy, 0.3); // labels 0 at i = 0, 4, 8
  assert.equal(scoreLogits(allNaN, balanced, 4, "nonfinite-wrong").accuracy, 0);
});

Deno.test("scoring rule names are validated (NoiselabError naming scoring)", () => {
  assert.deepEqual([...SCORING_RULES], ["argmax-numpy", "nonfinite-wrong"]);
  assert.equal(resolveScoringRule(undefined), "argmax-numpy");
  assert.equal(resolveScoringRule("nonfinite-wrong"), "nonfinite-wrong");
  assert.throws(
    () => resolveScoringRule("numpy"),
    (e: unknown) =>
      e instanceof NoiselabError && e.subject === "scoring" && /^scoring: unknown/.test(e.message),
  );
  assert.throws(() => scoreLogits(new Float32Array(2), [0], 2, "x" as never), NoiselabError);
});
