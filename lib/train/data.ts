/**
 * The data a training run (and any later evaluation of its model) uses: the
 * stratified train/test subsets of a config, normalised with the train
 * subset's per-channel statistics.
 * @module
 */
import { channelStats, type Dataset, loadDataset, normalize, stratifiedSubset } from "../data/mod.ts";
import type { ProgressFn } from "../data/mod.ts";
import type { TrainConfig } from "./config.ts";

/** Normalised float images + labels. */
export interface FloatSplit {
  /** NHWC float32, 3072 values per image. */
  x: Float32Array;
  labels: Uint8Array;
  n: number;
}

/** Everything the loop needs from the data set. */
export interface PreparedData {
  dataset: Dataset;
  train: FloatSplit;
  test: FloatSplit;
  /** Per-channel mean/std of the training subset (0..1 scale). */
  stats: { mean: number[]; std: number[] };
  numClasses: number;
}

/** Seeds of the subsets: fixed by `subsetSeed` only, so runs with other seeds see the same images. */
export function subsetSeeds(cfg: Pick<TrainConfig, "subsetSeed">): { train: string; test: string } {
  return { train: `subset:${cfg.subsetSeed}:train`, test: `subset:${cfg.subsetSeed}:test` };
}

/** Load the data set of a config (lib/data `loadDataset`). */
export function loadConfigDataset(
  cfg: Pick<TrainConfig, "dataset" | "source">,
  opts: { dataDir?: string; onProgress?: ProgressFn } = {},
): Promise<Dataset> {
  return loadDataset({
    dataset: cfg.dataset,
    source: cfg.source,
    dataDir: opts.dataDir,
    onProgress: opts.onProgress,
  });
}

/** Subset and normalise the training and test images of a config. */
export function prepareData(cfg: TrainConfig, dataset: Dataset): PreparedData {
  const seeds = subsetSeeds(cfg);
  const trainSplit = stratifiedSubset(dataset.train, cfg.trainSize, seeds.train);
  const stats = channelStats(trainSplit);
  const train = { x: normalize(trainSplit, stats), labels: trainSplit.labels, n: trainSplit.n };
  const test = testData(cfg, dataset, stats);
  return {
    dataset,
    train,
    test,
    stats: { mean: [...stats.mean], std: [...stats.std] },
    numClasses: dataset.numClasses,
  };
}

/** The test subset of a config, normalised with `stats` (those stored with the model). */
export function testData(
  cfg: Pick<TrainConfig, "testSize" | "subsetSeed">,
  dataset: Dataset,
  stats: { mean: number[]; std: number[] },
): FloatSplit {
  const split = stratifiedSubset(dataset.test, cfg.testSize, subsetSeeds(cfg).test);
  return { x: normalize(split, stats), labels: split.labels, n: split.n };
}

/** The training subset of a config, normalised with `stats` (e.g. calibration images for BN recalibration). */
export function trainData(
  cfg: Pick<TrainConfig, "trainSize" | "subsetSeed">,
  dataset: Dataset,
  stats: { mean: number[]; std: number[] },
): FloatSplit {
  const split = stratifiedSubset(dataset.train, cfg.trainSize, subsetSeeds(cfg).train);
  return { x: normalize(split, stats), labels: split.labels, n: split.n };
}
