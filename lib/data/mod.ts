/**
 * Data: CIFAR-10 (vendored JPEG copy or official binary release) and
 * CIFAR-100 (official binary release, or its vendored offline copy in data/cifar100/) as NHWC uint8 splits, plus subsets,
 * normalisation, augmentation and batching helpers.
 *
 * ```ts
 * const ds = await loadDataset({ dataset: "cifar10" });
 * const train = stratifiedSubset(ds.train, 5000, 1);
 * const stats = channelStats(ds.train);
 * const x = normalize(train, stats);
 * ```
 * @module
 */
export * from "./types.ts";
export * from "./load.ts";
export * from "./transforms.ts";
export {
  CIFAR100_RECORD_BYTES,
  cifar100MissingHelp,
  CIFAR10_RECORD_BYTES,
  cifar10MissingHelp,
  hasCifar100Binary,
  hasCifar10Binary,
  loadCifar100Binary,
  loadCifar10Binary,
} from "./binary.ts";
export type { BinaryLoadOptions } from "./binary.ts";
export {
  hasCifar10Jpeg,
  JPEG_ARCHIVES,
  JPEG_SOURCE_LABEL,
  loadCifar10Jpeg,
  parseSha256Sums,
} from "./jpeg.ts";
export type { JpegDataset, JpegLoadOptions } from "./jpeg.ts";
export { CIFAR100_VENDORED, hasVendoredCifar100, unpackVendoredCifar100 } from "./vendored.ts";
export { downloadVerified } from "./download.ts";
export type { DownloadOptions } from "./download.ts";
export { readTarGz } from "./archive.ts";
export type { TarEntry } from "./archive.ts";
