/**
 * The images a sweep of a trained model sees — its test subset and the
 * calibration images of BN re-estimation — chosen by ONE rule for the CLI
 * (`noiselab noise`) and the notebooks (lib/notebook `sweepVariant`).
 * @module
 */
import { type Dataset, normalize, stratifiedSubset } from "../data/mod.ts";
import type { TrainConfig } from "../train/config.ts";
import { type FloatSplit, testData } from "../train/data.ts";
import { NoiselabError } from "../util/errors.ts";
import type { CalibrationImages, SweepConfig } from "./config.ts";

/** Per-channel normalisation statistics stored with a model (0..1 pixel scale). */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** What {@link sweepData} needs to know about the trained model. */
export interface SweepModelData {
  /** The model's training config: its test subset (`testSize`, `subsetSeed`). */
  config: Pick<TrainConfig, "testSize" | "subsetSeed">;
  /** The normalisation stored with the model. */
  normalization: Normalization;
  /** Its already normalised test subset (lib/train `TrainedModel.test`), reused when the size matches. */
  test?: FloatSplit;
}

/** The test images of a sweep with where they came from. */
export interface SweepTestData extends FloatSplit {
  /** Provenance, e.g. "CIFAR-10, JPEG q75 copy test subset, 1000 images (subset seed 0)". */
  label: string;
}

/** The inputs of one sweep of one model. */
export interface SweepInputs {
  test: SweepTestData;
  /** Which test subset (part of the sweep cache key): stratified, `size` images, the model's subset seed. */
  testSubset: { size: number; subsetSeed: number };
  /** Calibration images of BN re-estimation, or undefined when `recalibrateBatches` is 0. */
  calibration?: CalibrationImages;
}

/** The seed of the calibration subset: `recal:<noise seed>` (see {@link calibrationImages}). */
export function calibrationSeed(config: Pick<SweepConfig, "seed">): string {
  return `recal:${config.seed}`;
}

/**
 * THE rule that picks the calibration images of BN re-estimation, used by the
 * CLI and the notebooks alike: a class-stratified subset (lib/data
 * `stratifiedSubset`, images in the split's order) of
 * `recalibrateBatches × recalibrateBatchSize` images of the FULL training split
 * of the model's data set, drawn with the seed `recal:<noise seed>`
 * ({@link calibrationSeed}), normalised with the model's stored statistics.
 * Returns undefined when `recalibrateBatches` is 0.
 *
 * Why this rule: training images, never the test images the sweep scores;
 * independent of the model's own training subset (`trainSize`), so a BN model,
 * its BN-free twin, their trajectory snapshots and models trained on different
 * subsets are re-estimated on the same images; fixed before the sweep, so every
 * draw uses the same images (re-estimation takes the first
 * `recalibrateBatches × recalibrateBatchSize` of them: all of them).
 *
 * History: the notebooks always used this rule. Until the SweepConfig change
 * (issue #10 item 3) `noiselab noise --recalibrate-bn K` took instead the first
 * K × 128 images of the model's own (stratified) training subset, so CLI sweeps
 * with `--recalibrate-bn` give other numbers than before; notebook sweeps are
 * unchanged.
 */
export function calibrationImages(
  config: Pick<SweepConfig, "seed" | "recalibrateBatches" | "recalibrateBatchSize">,
  dataset: Pick<Dataset, "train" | "sourceLabel">,
  normalization: Normalization,
): CalibrationImages | undefined {
  if (!(config.recalibrateBatches > 0)) return undefined;
  const sub = stratifiedSubset(
    dataset.train,
    config.recalibrateBatches * config.recalibrateBatchSize,
    calibrationSeed(config),
  );
  return {
    x: normalize(sub, normalization),
    n: sub.n,
    label: `${sub.n} training images (${dataset.sourceLabel})`,
  };
}

/**
 * The test subset a sweep scores: the model's own (`config.testSize` null, or
 * equal to the model's `testSize`: `model.test` is reused when given), else a
 * stratified subset of `config.testSize` images with the model's subset seed
 * (lib/train `testData`), normalised with the model's statistics.
 * @throws NoiselabError naming `testSize` when it exceeds the data set's test split
 */
export function sweepTestData(
  config: Pick<SweepConfig, "testSize">,
  dataset: Dataset,
  model: SweepModelData,
): SweepTestData {
  const size = config.testSize ?? model.config.testSize;
  if (size > dataset.test.n) {
    throw new NoiselabError(
      `testSize: ${size} is larger than the ${dataset.name} test split (${dataset.test.n})`,
      "testSize",
    );
  }
  const subsetSeed = model.config.subsetSeed;
  const split = model.test && size === model.config.testSize
    ? model.test
    : testData({ testSize: size, subsetSeed }, dataset, model.normalization);
  return {
    ...split,
    label: `${dataset.sourceLabel} test subset, ${split.n} images (subset seed ${subsetSeed})`,
  };
}

/**
 * Everything a sweep of one trained model reads: its test images
 * ({@link sweepTestData}) and, with BN re-estimation, the calibration images
 * ({@link calibrationImages}). The one place the CLI and the notebooks get them.
 * @throws NoiselabError naming `testSize` (see {@link sweepTestData})
 */
export function sweepData(config: SweepConfig, dataset: Dataset, model: SweepModelData): SweepInputs {
  const test = sweepTestData(config, dataset, model);
  return {
    test,
    testSubset: { size: test.n, subsetSeed: model.config.subsetSeed },
    calibration: calibrationImages(config, dataset, model.normalization),
  };
}
