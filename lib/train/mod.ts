/**
 * Training: configuration (config.ts), hand-written optimizers and schedules
 * (optim.ts, schedule.ts), the data subsets (data.ts), the training step and
 * loop (loop.ts), the model store and checkpoints (store.ts), progress
 * rendering (progress.ts), and training or loading a model (train_or_load.ts).
 * This file only re-exports.
 *
 * ```ts
 * const t = await trainOrLoad({ model: "resnet20", bn: "none", epochs: 30, trainSize: 5000 });
 * console.log(t.id, t.cleanAccuracy, t.path);
 * ```
 * @module
 */
export * from "./config.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./progress.ts";
export * from "./data.ts";
export * from "./store.ts";
export {
  crossEntropy,
  decayMask,
  DEFAULT_SNAPSHOTS,
  outputsProbabilities,
  perturbKernels,
  snapshotSteps,
  TRAIN_EVAL_BATCH,
  TrainingAborted,
  trainModel,
  trainStep,
  trainStepState,
} from "./loop.ts";
export type { TrainLoopOptions, TrainLoopResult, TrainNoise, TrainStepState } from "./loop.ts";
export * from "./train_or_load.ts";
export { bf16TrainingUnavailable, resolveTrainPrecision } from "./precision.ts";
