/**
 * A trained model, trained or loaded from the store: {@link trainOrLoad}
 * resolves the config, finds the model's id, loads it when stored, else builds
 * it, resumes or starts the training loop (loop.ts), and stores the model with
 * its metadata and provenance. Also loading and listing stored models by id.
 *
 * ```ts
 * const t = await trainOrLoad({ model: "resnet20", bn: "none", epochs: 30, trainSize: 5000 });
 * console.log(t.id, t.cleanAccuracy, t.path);
 * ```
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { bnSlotCount, buildModel, loadModel, modelInfo, resolveBN, saveModel } from "../models/mod.ts";
import type { Dataset } from "../data/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { backendInfo } from "../backend/mod.ts";
import { resolveTrainPrecision } from "./precision.ts";
import { exists, writeJsonAtomic } from "../util/fs.ts";
import { hashObject } from "../util/hash.ts";
import { libVersion, NUMERICS_VERSION } from "../util/version.ts";
import { cpuName } from "../util/machine.ts";
import { resolveTrainConfig, type TrainConfig } from "./config.ts";
import { type FloatSplit, loadConfigDataset, prepareData, testData } from "./data.ts";
import { trainModel } from "./loop.ts";
import type { TrainProgress } from "./progress.ts";
import {
  type EpochRecord,
  loadCheckpoint,
  modelId,
  type ModelMeta,
  modelsDir,
  type Provenance,
  readMeta,
} from "./store.ts";

/** A trained (or loaded) model with everything needed to use and cite it. */
export interface TrainedModel {
  id: string;
  model: LayersModel;
  /** Test accuracy of the stored model on the config's test subset. */
  cleanAccuracy: number;
  /** The model folder (`results/models/<id>`). */
  path: string;
  config: TrainConfig;
  provenance: Provenance;
  history: EpochRecord[];
  normalization: { mean: number[]; std: number[] };
  /** True when the model came from the store without training. */
  loaded: boolean;
  /** The normalised test subset the clean accuracy was measured on (for noise sweeps). */
  test: FloatSplit;
}

/** Options of {@link trainOrLoad}. */
export interface TrainOrLoadOptions {
  /** Results folder (default `results/` or `$NOISELAB_RESULTS_DIR`). */
  resultsDir?: string;
  /** Data folder (default `data/` or `$NOISELAB_DATA_DIR`). */
  dataDir?: string;
  onProgress?: (p: TrainProgress) => void;
  /**
   * Abort between steps; the last epoch's checkpoint stays and a rerun resumes from it.
   * Kernel > Interrupt in the notebook UI does the same (lib/util/interrupt.ts: `InterruptedError`).
   */
  signal?: AbortSignal;
  /** Stop after this many epochs (checkpoint kept, returns `undefined`): simulates a killed run. */
  stopAfterEpoch?: number;
  /** An already loaded data set (must match the config's dataset/source). */
  dataset?: Dataset;
  /** Never train: fail with a NoiselabError when the model is not stored. */
  loadOnly?: boolean;
  /** Trajectory snapshots to keep (lib/train/loop `snapshotSteps`; default 7, 0 = none). */
  snapshots?: number;
}

/** Describe the active compute backend for provenance (lib/backend's `backendInfo()`). */
export function describeBackend(): Provenance["backend"] {
  try {
    return backendInfo();
  } catch {
    // no backend chosen through initBackend(): report tfjs's own
    return { name: tf.getBackend(), threads: 1, detail: "tfjs " + tf.version_core };
  }
}

/**
 * Train the model of `partial` (merged onto the defaults and validated first),
 * or load it from the store when `results/models/<id>/meta.json` exists. A
 * checkpoint from an interrupted run is resumed. Returns `undefined` only when
 * `stopAfterEpoch` stopped the run early.
 */
export async function trainOrLoad(
  partial: Partial<TrainConfig> | Record<string, unknown>,
  opts: TrainOrLoadOptions = {},
): Promise<TrainedModel | undefined> {
  // bf16 asked where it cannot run becomes fp32 (with a notice) before the id is computed
  const cfg = resolveTrainPrecision(resolveTrainConfig(partial));
  const dataset = opts.dataset ?? await loadConfigDataset(cfg, { dataDir: opts.dataDir });
  if (dataset.name !== cfg.dataset) {
    throw new NoiselabError(
      `dataset: the given data set is ${dataset.name}, the config asks for ${cfg.dataset}`,
      "dataset",
    );
  }
  const id = modelId(cfg, dataset.dataId, describeBackend().name);
  const dir = join(modelsDir(opts.resultsDir), id);
  const meta = await readMeta(dir);
  if (meta) {
    const model = await loadModel(dir);
    return {
      id,
      model,
      cleanAccuracy: meta.cleanAccuracy,
      path: dir,
      config: meta.config,
      provenance: meta.provenance,
      history: meta.history,
      normalization: meta.normalization,
      loaded: true,
      test: testData(cfg, dataset, meta.normalization),
    };
  }
  if (opts.loadOnly) throw new NoiselabError(`model ${id} is not in the store (${dir})`, "model");

  const data = prepareData(cfg, dataset);
  const checkpoint = await loadCheckpoint(dir);
  const width = cfg.width ?? undefined;
  const model = buildModel(cfg.model, {
    bn: cfg.bn,
    numClasses: data.numClasses,
    seed: cfg.seed,
    width,
    shortcut: cfg.shortcut,
    residualInit: cfg.residualInit,
    bnEpsilon: cfg.bnEpsilon,
    bnMomentum: cfg.bnMomentum,
  });
  let res;
  try {
    res = await trainModel(model, cfg, data, {
      dir,
      checkpoint,
      onProgress: opts.onProgress,
      signal: opts.signal,
      stopAfterEpoch: opts.stopAfterEpoch,
      snapshots: opts.snapshots,
    });
  } catch (e) {
    // aborted, interrupted (Kernel > Interrupt) or diverged: the checkpoint of the last finished
    // epoch stays for a re-run; free the half-trained model (a notebook kernel lives on)
    model.dispose();
    throw e;
  }
  if (!res.completed) {
    model.dispose();
    return undefined;
  }
  const backend = describeBackend();
  const info = modelInfo(cfg.model);
  const total = bnSlotCount(cfg.model, width === undefined ? {} : { width });
  const provenance: Provenance = {
    modelId: id,
    configHash: hashObject(cfg),
    dataset: dataset.name,
    source: dataset.source,
    sourceLabel: dataset.sourceLabel,
    dataId: dataset.dataId,
    model: cfg.model,
    bn: cfg.bn,
    bnLayers: resolveBN(cfg.bn, total, cfg.model).filter(Boolean).length,
    params: model.countParams(),
    seed: cfg.seed,
    trainSize: data.train.n,
    testSize: data.test.n,
    backend,
    libVersion: libVersion(),
    denoVersion: Deno.version.deno,
    cpu: cpuName(),
    numericsVersion: NUMERICS_VERSION,
    startedAt: res.startedAt,
    finishedAt: new Date().toISOString(),
    wallSeconds: res.wallSeconds,
    resumedFromEpoch: res.resumedFromEpoch,
  };
  void info;
  const metaOut: ModelMeta = {
    id,
    config: cfg,
    cleanAccuracy: res.cleanAccuracy,
    normalization: data.stats,
    history: res.history,
    provenance,
  };
  await saveModel(model, dir);
  await writeJsonAtomic(join(dir, "meta.json"), metaOut); // written last: marks the model complete
  await Deno.remove(join(dir, "checkpoint"), { recursive: true }).catch(() => {});
  return {
    id,
    model,
    cleanAccuracy: res.cleanAccuracy,
    path: dir,
    config: cfg,
    provenance,
    history: res.history,
    normalization: data.stats,
    loaded: false,
    test: data.test,
  };
}

/**
 * Load a stored model by id (or folder path) with its metadata. Raises a
 * NoiselabError naming the id/folder when it is missing or incomplete.
 */
export async function loadStoredModel(
  idOrPath: string,
  opts: { resultsDir?: string } = {},
): Promise<{ id: string; path: string; model: LayersModel; meta: ModelMeta }> {
  const dir = idOrPath.includes("/") ? idOrPath : join(modelsDir(opts.resultsDir), idOrPath);
  if (!(await exists(dir))) {
    throw new NoiselabError(
      `model: no stored model '${idOrPath}' (looked in ${dir}); train one first`,
      "model",
    );
  }
  const meta = await readMeta(dir);
  if (!meta) {
    throw new NoiselabError(
      `model: ${dir} has no meta.json (training not finished? rerun train to resume)`,
      "model",
    );
  }
  let model: LayersModel;
  try {
    model = await loadModel(dir);
  } catch (e) {
    throw new NoiselabError(`${dir}: cannot load the model files (${(e as Error).message})`, dir);
  }
  return { id: meta.id, path: dir, model, meta };
}

/** List the stored (complete) models' metadata. */
export async function listStoredModels(opts: { resultsDir?: string } = {}): Promise<ModelMeta[]> {
  const out: ModelMeta[] = [];
  try {
    for await (const e of Deno.readDir(modelsDir(opts.resultsDir))) {
      if (!e.isDirectory) continue;
      const meta = await readMeta(join(modelsDir(opts.resultsDir), e.name)).catch(() => undefined);
      if (meta) out.push(meta);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

