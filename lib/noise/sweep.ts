/**
 * Monte Carlo noise sweeps: for each noise level eta and draw k, perturb the
 * model, evaluate, restore. Draw k of eta e uses the random streams seeded
 * `${seed}:${e}:${k}:<layer>/<weight>` for every model, so models that share
 * layer names see the same noise (paired comparisons).
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { libVersion } from "../util/version.ts";
import { backendInfo } from "../backend/mod.ts";
import { accuracy, countImages } from "../models/predict.ts";
import {
  checkEta,
  listWeights,
  type NoiseSpec,
  resolveNoiseSpec,
  selectWeights,
  snapshotWeights,
  withNoise,
} from "./inject.ts";
import { foldBatchNorm } from "./fold.ts";
import { recalibrateBatchNorm } from "./recalibrate.ts";
import { averageNormalizedAccuracy, summarizeRows, type SweepRow, type SweepSummary } from "./stats.ts";

/** Evaluation data: NHWC Float32Array images and their labels. */
export interface SweepData {
  x: Float32Array;
  labels: ArrayLike<number>;
  /** Where the data came from (goes into provenance), e.g. "CIFAR-10 test, JPEG copy, 1000 images". */
  label?: string;
}

/**
 * Accuracy (0..1) of `model` on `x`: THE single place where the sweep
 * evaluates a model, so a faster engine can be swapped in via
 * {@link SweepOptions.evaluate}.
 */
export type Evaluator = (
  model: tfl.LayersModel,
  x: Float32Array,
  labels: ArrayLike<number>,
  batchSize: number,
) => Promise<number>;

/** Progress report after each draw. */
export interface SweepProgress {
  done: number;
  total: number;
  eta: number;
  draw: number;
  accuracy: number;
  cleanAccuracy: number;
}

/** Options of {@link noiseSweep}. */
export interface SweepOptions {
  /** Noise levels (each finite, >= 0). */
  etas: number[];
  /** Monte Carlo draws per level (>= 1). */
  draws: number;
  /** Noise configuration (defaults: additive-std on kernels, no folding). */
  spec?: Partial<NoiseSpec>;
  /** Base seed of the noise streams. */
  seed: string | number;
  /** Id of the model (goes into every row). */
  modelId: string;
  onProgress?: (p: SweepProgress) => void;
  /** Inference batch size (default 500). */
  batchSize?: number;
  /** Replaces the default evaluator (`accuracy` from lib/models). */
  evaluate?: Evaluator;
  /**
   * BN recalibration after noise (per draw): moving statistics re-estimated
   * from `batches` × `batchSize` (default 128) images of `x` (training images),
   * layer by layer with the noisy weights. `spec.recalibrateBN` (a number of
   * batches) is an alternative way to give `batches`.
   */
  recalibrateBN?: { x: Float32Array; batches?: number; batchSize?: number; label?: string };
}

/** Result of a sweep. */
export interface SweepResult {
  rows: SweepRow[];
  summary: SweepSummary[];
  /** Mean over etas of the mean normalised accuracy (the paper's metric). */
  averageNormalizedAccuracy: number;
  cleanAccuracy: number;
  provenance: {
    modelId: string;
    seed: string;
    etas: number[];
    draws: number;
    spec: NoiseSpec;
    streams: string;
    data: string;
    images: number;
    /** What the targets selected in the (possibly folded) model: 0 tensors means the sweep is a no-op. */
    perturbed: { tensors: number; elements: number; names: string[] };
    recalibrateBN: { batches: number; batchSize: number; data: string } | null;
    /** Backend name (cpu, wasm, noiselab, tensorflow). */
    backend: string;
    backendThreads: number;
    backendDetail: string;
    libVersion: string;
    date: string;
  };
}

/** The default evaluator: batched top-1 accuracy (NaN logits count as wrong). */
export const defaultEvaluate: Evaluator = (model, x, labels, batchSize) =>
  accuracy(model, x, labels, batchSize);

/**
 * Run a Monte Carlo sweep over `etas` × `draws`. The model's weights are
 * restored bitwise after every draw (also on errors). All parameters are
 * validated before any work.
 */
export async function noiseSweep(
  model: tfl.LayersModel,
  data: SweepData,
  opts: SweepOptions,
): Promise<SweepResult> {
  const spec = resolveNoiseSpec(opts.spec);
  if (!Array.isArray(opts.etas) || opts.etas.length === 0) {
    throw new NoiselabError("etas: expected a non-empty list of noise levels", "etas");
  }
  opts.etas.forEach(checkEta);
  if (!Number.isInteger(opts.draws) || opts.draws < 1) {
    throw new NoiselabError(`draws: expected a positive integer, got ${opts.draws}`, "draws");
  }
  if (opts.seed === undefined || opts.seed === null || opts.seed === "") {
    throw new NoiselabError("seed: required (noise streams are seeded)", "seed");
  }
  if (typeof opts.modelId !== "string" || !opts.modelId) {
    throw new NoiselabError("modelId: required (it labels every row)", "modelId");
  }
  const batchSize = opts.batchSize ?? 500;
  const n = countImages(model, data.x);
  if (data.labels.length !== n) {
    throw new NoiselabError(`labels: ${data.labels.length} labels for ${n} images`, "labels");
  }
  if (n === 0) throw new NoiselabError("x: no images to evaluate", "x");
  const recalBatches = opts.recalibrateBN?.batches ?? spec.recalibrateBN ?? 0;
  if (recalBatches > 0 || opts.recalibrateBN) {
    if (!opts.recalibrateBN?.x) {
      throw new NoiselabError("recalibrateBN: needs calibration images (recalibrateBN.x)", "recalibrateBN");
    }
    if (!(recalBatches >= 1)) throw new NoiselabError("recalibrateBN: batches must be >= 1", "recalibrateBN");
    if (spec.foldBN) {
      throw new NoiselabError(
        "recalibrateBN: cannot be combined with foldBN (the folded model has no BN)",
        "recalibrateBN",
      );
    }
    countImages(model, opts.recalibrateBN.x);
  }
  const evaluate = opts.evaluate ?? defaultEvaluate;

  const target = spec.targets.join("+");
  const seed = String(opts.seed);
  const m = spec.foldBN ? foldBatchNorm(model) : model;
  try {
    const cleanAccuracy = await evaluate(m, data.x, data.labels, batchSize);
    const selected = selectWeights(m, spec.targets);
    const bnStats = listWeights(m).filter((w) => w.category === "bn-mean" || w.category === "bn-var");
    const rows: SweepRow[] = [];
    const total = opts.etas.length * opts.draws;
    for (const eta of opts.etas) {
      for (let k = 0; k < opts.draws; k++) {
        const acc = await withNoise(m, spec, eta, `${seed}:${eta}:${k}`, async (noisy) => {
          if (recalBatches < 1) return await evaluate(noisy, data.x, data.labels, batchSize);
          const restoreStats = snapshotWeights(bnStats);
          try {
            await recalibrateBatchNorm(noisy, opts.recalibrateBN!.x, {
              batches: recalBatches,
              batchSize: opts.recalibrateBN!.batchSize ?? 128,
            });
            return await evaluate(noisy, data.x, data.labels, batchSize);
          } finally {
            restoreStats();
          }
        });
        rows.push({
          modelId: opts.modelId,
          eta,
          target,
          form: spec.form,
          draw: k,
          accuracy: acc,
          cleanAccuracy,
          normalizedAccuracy: acc / cleanAccuracy,
        });
        opts.onProgress?.({ done: rows.length, total, eta, draw: k, accuracy: acc, cleanAccuracy });
      }
    }
    return {
      rows,
      summary: summarizeRows(rows),
      averageNormalizedAccuracy: averageNormalizedAccuracy(rows),
      cleanAccuracy,
      provenance: {
        modelId: opts.modelId,
        seed,
        etas: [...opts.etas],
        draws: opts.draws,
        spec: recalBatches > 0 ? { ...spec, recalibrateBN: recalBatches } : spec,
        streams: `seedrandom alea, per tensor: "${seed}:<eta>:<draw>:<layer>/<weight>"`,
        data: data.label ?? "unlabelled data",
        images: n,
        perturbed: {
          tensors: selected.length,
          elements: selected.reduce(
            (a, w) => a + (w.variable.shape as number[]).reduce((p, d) => p * d, 1),
            0,
          ),
          names: selected.map((w) => w.name),
        },
        recalibrateBN: recalBatches > 0
          ? {
            batches: recalBatches,
            batchSize: opts.recalibrateBN!.batchSize ?? 128,
            data: opts.recalibrateBN!.label ?? "unlabelled data",
          }
          : null,
        backend: backendInfo().name,
        backendThreads: backendInfo().threads,
        backendDetail: backendInfo().detail,
        libVersion: libVersion(),
        date: new Date().toISOString(),
      },
    };
  } finally {
    if (m !== model) m.dispose();
  }
}
