/**
 * `loadDataset`: one entry point for every data source, plus `describeDataset`.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { hashObject } from "../util/hash.ts";
import { dataDir as defaultDataDir } from "../util/paths.ts";
import { hasCifar10Binary, loadCifar100Binary, loadCifar10Binary } from "./binary.ts";
import { loadCifar10Jpeg } from "./jpeg.ts";
import { type ChannelStats, channelStats } from "./transforms.ts";
import type { Dataset, DatasetName, DownloadSource, ProgressFn, SourceFile, Split } from "./types.ts";

/** Known data set names. */
export const DATASET_NAMES: readonly DatasetName[] = ["cifar10", "cifar100"];
/** Accepted `source` values. */
export const SOURCE_CHOICES = ["auto", "jpeg", "binary"] as const;

/** Options for {@link loadDataset}. */
export interface LoadDatasetOptions {
  dataset: DatasetName;
  /**
   * "auto" (default): CIFAR-10 from the official binary release when it is in
   * the data folder (or `download` is set), else the vendored JPEG copy;
   * CIFAR-100 from its binary release. "jpeg": the JPEG copy (CIFAR-10 only).
   * "binary": the official binary release.
   */
  source?: "auto" | "jpeg" | "binary";
  /** Data folder (default `data/` or `$NOISELAB_DATA_DIR`). */
  dataDir?: string;
  /** Download the official binary release when missing (md5-verified). */
  download?: boolean;
  onProgress?: ProgressFn;
  /** Override the binary release URL/md5 (tests, mirrors). */
  downloadSource?: DownloadSource;
  /** Expected binary record counts (default 50000/10000; tests only). */
  records?: { train: number; test: number };
  /** Use the decoded-image cache of the JPEG copy (default true). */
  cache?: boolean;
}

/** Stable short id of the exact data: source + the sha256 of every file read. */
export function dataIdOf(source: string, files: SourceFile[]): string {
  return `${source}-${hashObject(files.map((f) => [f.path, f.sha256]))}`;
}

/**
 * Load a data set (train and test splits, NHWC uint8). Unknown `dataset` or
 * `source` values raise a NoiselabError naming the parameter; missing or
 * corrupt files raise one naming the file.
 */
export async function loadDataset(
  opts: LoadDatasetOptions,
): Promise<Dataset & { cache?: { path: string; hit: boolean } }> {
  const { dataset } = opts;
  const source = opts.source ?? "auto";
  if (!DATASET_NAMES.includes(dataset)) {
    throw new NoiselabError(
      `dataset: unknown data set "${dataset}" (expected one of ${DATASET_NAMES.join(", ")})`,
      "dataset",
    );
  }
  if (!(SOURCE_CHOICES as readonly string[]).includes(source)) {
    throw new NoiselabError(
      `source: unknown source "${source}" (expected one of ${SOURCE_CHOICES.join(", ")})`,
      "source",
    );
  }
  const dir = opts.dataDir ?? defaultDataDir();
  const binOpts = {
    dataDir: dir,
    download: opts.download,
    downloadSource: opts.downloadSource,
    onProgress: opts.onProgress,
    records: opts.records,
  };
  let ds: Omit<Dataset, "dataId"> & { cache?: { path: string; hit: boolean } };
  if (dataset === "cifar100") {
    if (source === "jpeg") {
      throw new NoiselabError(
        `source: "jpeg" exists only for cifar10; CIFAR-100 loads from its binary release`,
        "source",
      );
    }
    ds = await loadCifar100Binary(binOpts);
  } else {
    const binary = source === "binary" ||
      (source === "auto" && (opts.download || await hasCifar10Binary(dir)));
    ds = binary
      ? await loadCifar10Binary(binOpts)
      : await loadCifar10Jpeg({ dataDir: dir, onProgress: opts.onProgress, cache: opts.cache });
  }
  return { ...ds, dataId: dataIdOf(ds.source, ds.files) };
}

/** Summary of one split. */
export interface SplitSummary {
  n: number;
  /** Images per class, in label order. */
  perClass: number[];
}

/** What `describeDataset` reports (the CLI `data` command prints it). */
export interface DatasetDescription {
  name: DatasetName;
  source: string;
  sourceLabel: string;
  dataId: string;
  numClasses: number;
  classNames: string[];
  train: SplitSummary;
  test: SplitSummary;
  /** Per-channel mean/std of the TRAIN split, 0..1 scale. */
  stats: ChannelStats;
  files: SourceFile[];
}

function summarize(split: Split, numClasses: number): SplitSummary {
  const perClass = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < split.n; i++) perClass[split.labels[i]]++;
  return { n: split.n, perClass };
}

/** Counts per class, channel statistics of the train split, source and checksums. */
export function describeDataset(ds: Dataset): DatasetDescription {
  return {
    name: ds.name,
    source: ds.source,
    sourceLabel: ds.sourceLabel,
    dataId: ds.dataId,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    train: summarize(ds.train, ds.numClasses),
    test: summarize(ds.test, ds.numClasses),
    stats: channelStats(ds.train),
    files: ds.files,
  };
}
