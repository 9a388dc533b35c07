/**
 * Weight noise: injection (noise types × targets, always restored), BN folding,
 * BN recalibration, Monte Carlo sweeps and their statistics. A sweep's knobs
 * are one object, `SweepConfig` (config.ts: defaults, `resolveSweepConfig`,
 * `sweepConfigHash`); the images it reads come from inputs.ts (`sweepData`:
 * the model's test subset and the one rule for BN calibration images).
 *
 * ```ts
 * const cfg = resolveSweepConfig({ etas: [0, 0.05, 0.1], draws: 5, seed: 1, targets: ["kernels"] });
 * const { test, calibration } = sweepData(cfg, dataset, trained);   // trained: lib/train TrainedModel
 * const res = await noiseSweep(trained.model, test, sweepOptionsFor(cfg, { modelId: id, calibration }));
 * ```
 *
 * or, without a config, the options directly:
 *
 * ```ts
 * const res = await noiseSweep(model, { x, labels }, {
 *   etas: [0, 0.05, 0.1], draws: 5, seed: 1, modelId: id,
 *   spec: { form: "additive-std", targets: ["kernels"] },
 * });
 * res.averageNormalizedAccuracy;   // the paper's metric (mean over eta > 0)
 * res.rows[0].nonFiniteShare;      // share of images with NaN/Inf logits in that draw
 * ```
 *
 * A sweep is resumable (finished draws saved to a partial file, skipped on
 * re-run: `partial` option, lib/noise/partial.ts) and stops between draws on
 * Kernel > Interrupt (lib/util/interrupt.ts).
 *
 * Noise models (lib/noise/models: one `NoiseModel` interface): the Gaussian
 * forms and PCM-like inference noise (`noiseType: "pcm"`, `inferenceTime`,
 * `driftCompensation`, `pcmMapping`), clipping before mapping (`clipSigma`) and where BN
 * lives (`bnPlacement`: analog / digital / folded) are `SweepConfig` fields.
 *
 * Intervals (Student t, n = 1 → undefined, accuracies clipped to [0, 1],
 * training seeds combined) come from lib/stats/mod.ts, re-exported here.
 * @module
 */
export * from "./inject.ts";
export * from "./models/mod.ts";
export * from "./mitigations.ts";
export * from "./fold.ts";
export * from "./recalibrate.ts";
export * from "./stats.ts";
export * from "./sweep.ts";
export * from "./partial.ts";
export * from "./config.ts";
export * from "./inputs.ts";
