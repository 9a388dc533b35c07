/**
 * Types and constants shared by the data loaders.
 * @module
 */

/** Data sets noiselab knows. */
export type DatasetName = "cifar10" | "cifar100";

/** Where a data set's images come from. */
export type SourceName = "cifar10-jpeg" | "cifar10-binary" | "cifar100-binary";

/** One split (train or test): NHWC uint8 pixels (32x32x3 per image) and labels. */
export interface Split {
  /** `n * 32 * 32 * 3` bytes, NHWC, RGB. */
  images: Uint8Array;
  /** `n` labels (CIFAR-100: fine labels). */
  labels: Uint8Array;
  /** CIFAR-100 only: `n` coarse (super-class) labels. */
  coarseLabels?: Uint8Array;
  /** Number of images. */
  n: number;
}

/** A file the data set was read from, with its checksum (provenance). */
export interface SourceFile {
  /** Path relative to the data folder where possible. */
  path: string;
  /** sha256 of the file's bytes, hex. */
  sha256: string;
}

/** A loaded data set. */
export interface Dataset {
  name: DatasetName;
  source: SourceName | string;
  /** Human label for provenance, e.g. "CIFAR-10, JPEG q75 copy". */
  sourceLabel: string;
  /** Short stable id of the exact bytes (source + file checksums); part of model ids. */
  dataId: string;
  numClasses: number;
  classNames: string[];
  /** CIFAR-100 only: the 20 super-class names. */
  coarseClassNames?: string[];
  train: Split;
  test: Split;
  /** The files the pixels came from, with sha256s. */
  files: SourceFile[];
}

/** Progress report while loading / downloading / decoding. */
export interface DataProgress {
  phase: string;
  done: number;
  total: number;
}

/** Callback for {@link DataProgress}. */
export type ProgressFn = (p: DataProgress) => void;

/** Image side length. */
export const IMAGE_SIZE = 32;
/** Channels per pixel (RGB). */
export const CHANNELS = 3;
/** Bytes per image (32*32*3). */
export const IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;

/** CIFAR-10 class names in label order. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** CIFAR-100 fine class names in label order (as in `fine_label_names.txt`). */
export const CIFAR100_FINE_CLASSES: readonly string[] = [
  "apple",
  "aquarium_fish",
  "baby",
  "bear",
  "beaver",
  "bed",
  "bee",
  "beetle",
  "bicycle",
  "bottle",
  "bowl",
  "boy",
  "bridge",
  "bus",
  "butterfly",
  "camel",
  "can",
  "castle",
  "caterpillar",
  "cattle",
  "chair",
  "chimpanzee",
  "clock",
  "cloud",
  "cockroach",
  "couch",
  "crab",
  "crocodile",
  "cup",
  "dinosaur",
  "dolphin",
  "elephant",
  "flatfish",
  "forest",
  "fox",
  "girl",
  "hamster",
  "house",
  "kangaroo",
  "keyboard",
  "lamp",
  "lawn_mower",
  "leopard",
  "lion",
  "lizard",
  "lobster",
  "man",
  "maple_tree",
  "motorcycle",
  "mountain",
  "mouse",
  "mushroom",
  "oak_tree",
  "orange",
  "orchid",
  "otter",
  "palm_tree",
  "pear",
  "pickup_truck",
  "pine_tree",
  "plain",
  "plate",
  "poppy",
  "porcupine",
  "possum",
  "rabbit",
  "raccoon",
  "ray",
  "road",
  "rocket",
  "rose",
  "sea",
  "seal",
  "shark",
  "shrew",
  "skunk",
  "skyscraper",
  "snail",
  "snake",
  "spider",
  "squirrel",
  "streetcar",
  "sunflower",
  "sweet_pepper",
  "table",
  "tank",
  "telephone",
  "television",
  "tiger",
  "tractor",
  "train",
  "trout",
  "tulip",
  "turtle",
  "wardrobe",
  "whale",
  "willow_tree",
  "wolf",
  "woman",
  "worm",
];

/** CIFAR-100 coarse (super-class) names in label order (as in `coarse_label_names.txt`). */
export const CIFAR100_COARSE_CLASSES: readonly string[] = [
  "aquatic_mammals",
  "fish",
  "flowers",
  "food_containers",
  "fruit_and_vegetables",
  "household_electrical_devices",
  "household_furniture",
  "insects",
  "large_carnivores",
  "large_man-made_outdoor_things",
  "large_natural_outdoor_scenes",
  "large_omnivores_and_herbivores",
  "medium_mammals",
  "non-insect_invertebrates",
  "people",
  "reptiles",
  "small_mammals",
  "trees",
  "vehicles_1",
  "vehicles_2",
];

/** Official binary release of CIFAR-10 (URL and published md5). */
export const CIFAR10_BINARY_URL = {
  url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
  md5: "c32a1d4ab5d03f1284b67883e8d87530",
  archive: "cifar-10-binary.tar.gz",
  folder: "cifar-10-batches-bin",
} as const;

/** Official binary release of CIFAR-100 (URL and published md5). */
export const CIFAR100_BINARY_URL = {
  url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
  md5: "03b5dce01913d631647c71ecec9e9cb8",
  archive: "cifar-100-binary.tar.gz",
  folder: "cifar-100-binary",
} as const;

/** A download location with the md5 the file must have. */
export interface DownloadSource {
  url: string;
  md5: string;
}
