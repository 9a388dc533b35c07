/**
 * Learning-rate schedules, evaluated per optimizer step.
 *
 * Written by hand: tfjs has no learning-rate schedulers at all, and these are a
 * few lines of arithmetic each. The formulas follow PyTorch's `MultiStepLR`,
 * `CosineAnnealingLR` (eta_min = 0) and `OneCycleLR` (cosine annealing,
 * pct_start 0.3, div_factor 25, final_div_factor 1e4) so that numbers can be
 * compared with the usual recipes.
 * @module
 */

/** The schedule families. */
export type ScheduleName = "constant" | "step" | "cosine" | "onecycle";

/** Everything a schedule needs to know. */
export interface ScheduleSpec {
  /** Which family. */
  schedule: ScheduleName;
  /** Peak (base) learning rate. */
  lr: number;
  /** Total optimizer steps of the run (epochs * stepsPerEpoch). */
  totalSteps: number;
  /** Steps per epoch (used to convert epochs to steps). */
  stepsPerEpoch: number;
  /** Linear warm-up length in epochs (may be fractional); 0 = none. */
  warmupEpochs: number;
  /** `step` schedule: epochs at which the lr is multiplied by `stepGamma`. */
  stepMilestones: number[];
  /** `step` schedule: the multiplier. */
  stepGamma: number;
}

/** One-cycle constants (PyTorch's defaults). */
export const ONECYCLE = { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 } as const;

/**
 * The learning rate used by optimizer step `step` (0-based).
 *
 * Warm-up: during the first `warmupEpochs * stepsPerEpoch` steps the lr rises
 * linearly, `lr * (step + 1) / warmupSteps`; the chosen schedule then runs over
 * the remaining steps (its clock starts at the end of the warm-up).
 *
 * - `constant`: `lr`.
 * - `step`: `lr * stepGamma ** (number of milestones <= current epoch)` where the
 *   current epoch is `floor(step / stepsPerEpoch)` (milestones count from the
 *   start of training, warm-up included).
 * - `cosine`: `lr * (1 + cos(pi * t)) / 2`, `t` = fraction of the post-warm-up
 *   steps done, so it is `lr` at the start, `lr / 2` half way, `~0` at the end.
 * - `onecycle`: cosine rise from `lr / 25` to `lr` over the first 30% of the
 *   steps, then cosine decay to `lr / 25 / 1e4`.
 */
export function learningRateAt(spec: ScheduleSpec, step: number): number {
  const { lr, totalSteps } = spec;
  const warmupSteps = Math.round(spec.warmupEpochs * spec.stepsPerEpoch);
  if (warmupSteps > 0 && step < warmupSteps) {
    return (lr * (step + 1)) / warmupSteps;
  }
  const span = Math.max(1, totalSteps - warmupSteps);
  const t = Math.min(1, Math.max(0, (step - warmupSteps) / span));
  switch (spec.schedule) {
    case "constant":
      return lr;
    case "step": {
      const epoch = Math.floor(step / spec.stepsPerEpoch);
      const passed = spec.stepMilestones.filter((m) => m <= epoch).length;
      return lr * Math.pow(spec.stepGamma, passed);
    }
    case "cosine":
      return (lr * (1 + Math.cos(Math.PI * t))) / 2;
    case "onecycle": {
      const start = lr / ONECYCLE.divFactor;
      const end = start / ONECYCLE.finalDivFactor;
      const p = ONECYCLE.pctStart;
      if (t < p) return cosAnneal(start, lr, t / p);
      return cosAnneal(lr, end, (t - p) / (1 - p));
    }
  }
}

/** Cosine interpolation from `a` (frac 0) to `b` (frac 1). */
function cosAnneal(a: number, b: number, frac: number): number {
  return b + ((a - b) * (1 + Math.cos(Math.PI * frac))) / 2;
}
