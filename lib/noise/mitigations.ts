/**
 * The mitigations against analog weight noise that this workspace compares
 * (issue #13), each a named knob of the pipeline that trains or sweeps — not
 * a separate code path:
 * - `noise-training`: hardware-aware (noise-injection) training, lib/train
 *   `TrainConfig.trainNoise` (Gaussian kernel noise σ = trainNoise·max|W|,
 *   resampled every step);
 * - `bn-reestimation`: BN moving statistics re-estimated after programming,
 *   per draw, from `SweepConfig.recalibrateBatches` × `recalibrateBatchSize`
 *   calibration images (lib/noise/inputs.ts `calibrationImages`);
 * - `drift-compensation`: global drift compensation per tensor
 *   (`SweepConfig.driftCompensation`, PCM noise; lib/noise/models/pcm.ts);
 * - `clipping`: weights clipped at ±k·std(W) before mapping (`SweepConfig.clipSigma`);
 * - `digital-bn`: BN kept out of the analog arrays (`SweepConfig.bnPlacement: "digital"`).
 * @module
 */

/** One mitigation: its name, the config field that turns it on, where it acts, and what it does. */
export interface Mitigation {
  name: "noise-training" | "bn-reestimation" | "drift-compensation" | "clipping" | "digital-bn";
  config: "TrainConfig" | "SweepConfig";
  field: string;
  /** Its parameter as a sentence. */
  parameter: string;
}

/** Every mitigation (see the module JSDoc). */
export const MITIGATIONS: readonly Mitigation[] = Object.freeze([
  {
    name: "noise-training",
    config: "TrainConfig",
    field: "trainNoise",
    parameter: "σ relative to max|W| per kernel (0 = off)",
  },
  {
    name: "bn-reestimation",
    config: "SweepConfig",
    field: "recalibrateBatches",
    parameter: "calibration batches of recalibrateBatchSize training images (0 = off)",
  },
  {
    name: "drift-compensation",
    config: "SweepConfig",
    field: "driftCompensation",
    parameter: "on/off (pcm noise)",
  },
  { name: "clipping", config: "SweepConfig", field: "clipSigma", parameter: "k of ±k·std(W) (0 = off)" },
  { name: "digital-bn", config: "SweepConfig", field: "bnPlacement", parameter: '"digital"' },
] as Mitigation[]);
