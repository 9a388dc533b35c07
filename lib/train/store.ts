/**
 * The model store: `results/models/<id>/` holds a finished model
 * (`model.json`, `weights.bin`, `meta.json`) or, while training, a checkpoint
 * (`checkpoint/ckpt.bin`). `meta.json` is written last, so its presence marks
 * a complete model. Every write is atomic (temp file + rename).
 * @module
 */
import { storeBackendName } from "../backend/mod.ts";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { hashObject } from "../util/hash.ts";
import { NUMERICS_VERSION } from "../util/version.ts";
import { resultsDir } from "../util/paths.ts";
import { readJsonIfExists, writeFileAtomic } from "../util/fs.ts";
import { NoiselabError } from "../util/errors.ts";
import type { TrainConfig } from "./config.ts";
import type { OptimizerState } from "./optim.ts";

/** One epoch of the training history. */
export interface EpochRecord {
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch (augmented batches, training-mode BN). */
  trainAccuracy: number;
  /** Test accuracy after the epoch (inference mode). */
  testAccuracy: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Wall seconds of the epoch (training + evaluation). */
  seconds: number;
  /** Training throughput (images/s). */
  imagesPerSec: number;
}

/** Where every number of a stored model came from. */
export interface Provenance {
  modelId: string;
  /** `hashObject(config)`: the training configuration alone. */
  configHash: string;
  dataset: string;
  /** The data set copy (`cifar10-jpeg`, `cifar10-binary`, ...). */
  source: string;
  /** Human label of the copy, e.g. "CIFAR-10, JPEG q75 copy". */
  sourceLabel: string;
  /** lib/data's id of the exact bytes used. */
  dataId: string;
  model: string;
  bn: TrainConfig["bn"];
  /** BN layers actually present in the trained model. */
  bnLayers: number;
  params: number;
  seed: number;
  trainSize: number;
  testSize: number;
  backend: { name: string; threads?: number; detail?: string };
  libVersion: string;
  denoVersion: string;
  /** CPU model of the machine that trained it (lib/util/machine `cpuName()`; absent in older stores). */
  cpu?: string;
  /** `NUMERICS_VERSION` of the code that trained it (part of the model id; absent in older stores). */
  numericsVersion?: string;
  startedAt: string;
  finishedAt: string;
  /** Wall seconds of training, summed over resumed runs. */
  wallSeconds: number;
  /** Epochs that came from a checkpoint of an earlier (interrupted) run. */
  resumedFromEpoch: number;
}

/** The contents of `meta.json`. */
export interface ModelMeta {
  id: string;
  config: TrainConfig;
  cleanAccuracy: number;
  /** Per-channel mean/std (0..1 pixel scale) of the training subset, used to normalise inputs. */
  normalization: { mean: number[]; std: number[] };
  history: EpochRecord[];
  provenance: Provenance;
}

/** Folder of all stored models (`<resultsDir>/models`). */
export function modelsDir(base?: string): string {
  return join(base ?? resultsDir(), "models");
}

/**
 * The id of a model: 12 hex of a hash over what determines its weights: the
 * full (resolved) config, the data identity (lib/data's `dataId`: source + file
 * checksums), the compute backend that trains it (backends differ in the last
 * bits, and in NaN handling before numerics version 2) and {@link NUMERICS_VERSION}.
 * Editing a comment or any code that does not change numbers keeps every id.
 * Fields added later are left out while at their "off" value (`trainNoise` 0,
 * `precision` "fp32"),
 * so the ids of models stored before them hold.
 */
export function modelId(cfg: TrainConfig, dataId: string, backend: string): string {
  const config: Record<string, unknown> = { ...cfg };
  if (!cfg.trainNoise) delete config.trainNoise;
  if (cfg.precision !== "bf16") delete config.precision;
  return hashObject({ config, dataId, backend: storeBackendName(backend), numerics: NUMERICS_VERSION });
}

/** Read `meta.json` of a stored model, or undefined when the model is not (completely) stored. */
export async function readMeta(dir: string): Promise<ModelMeta | undefined> {
  try {
    return await readJsonIfExists<ModelMeta>(join(dir, "meta.json"));
  } catch (e) {
    throw new NoiselabError(`${join(dir, "meta.json")}: unreadable model metadata (${(e as Error).message})`);
  }
}

/** What a checkpoint holds besides the tensors. */
export interface CheckpointInfo {
  /** Completed epochs. */
  epoch: number;
  /** Optimizer steps done. */
  globalStep: number;
  history: EpochRecord[];
  /** Wall seconds spent so far. */
  wallSeconds: number;
  startedAt: string;
  /**
   * The random streams: every epoch's shuffling and augmentation use streams
   * seeded by `(seed, epoch)`, so the RNG state at an epoch boundary is fully
   * given by the epoch number; recorded for the record.
   */
  rng: { shuffle: string; augment: string };
}

/** A checkpoint read back from disk. */
export interface Checkpoint extends CheckpointInfo {
  weights: { name: string; shape: number[]; values: Float32Array }[];
  optimizer: OptimizerState;
}

const MAGIC = 0x4b434c4e; // "NLCK" little-endian

/** Path of the checkpoint file of a model folder. */
export function checkpointPath(dir: string): string {
  return join(dir, "checkpoint", "ckpt.bin");
}

/**
 * Write a checkpoint (all model weights incl. BN moving statistics, the
 * optimizer state, epoch and history) as one file, atomically.
 * Format: u32 magic, u32 header length, JSON header, zero padding to 4 bytes,
 * then the float32 tensors back to back.
 */
export async function saveCheckpoint(
  dir: string,
  model: LayersModel,
  opt: OptimizerState,
  info: CheckpointInfo,
): Promise<void> {
  await writeCheckpointFile(checkpointPath(dir), model, opt, info);
}

async function writeCheckpointFile(
  path: string,
  model: LayersModel,
  opt: OptimizerState,
  info: Record<string, unknown> | CheckpointInfo,
): Promise<void> {
  const tensors: { shape: number[]; values: Float32Array }[] = [];
  const weightsMeta: { name: string; shape: number[]; offset: number; length: number }[] = [];
  let offset = 0;
  for (const w of model.weights) {
    const t = w.read();
    if (t.dtype !== "float32") throw new Error(`checkpoint: weight ${w.name} has dtype ${t.dtype}`);
    const values = t.dataSync() as Float32Array;
    weightsMeta.push({
      name: w.originalName ?? w.name,
      shape: t.shape.slice(),
      offset,
      length: values.length,
    });
    tensors.push({ shape: t.shape.slice(), values });
    offset += values.length;
  }
  const slotsMeta = opt.slots.map((s) => {
    const m = { shape: s.shape, offset, length: s.values.length };
    tensors.push(s);
    offset += s.values.length;
    return m;
  });
  const header = new TextEncoder().encode(JSON.stringify({
    version: 1,
    ...info,
    weights: weightsMeta,
    optimizer: { step: opt.step, slots: slotsMeta },
  }));
  const headerPadded = Math.ceil((8 + header.length) / 4) * 4;
  const bytes = new Uint8Array(headerPadded + offset * 4);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, header.length, true);
  bytes.set(header, 8);
  const floats = new Float32Array(bytes.buffer, headerPadded, offset);
  let at = 0;
  for (const t of tensors) {
    floats.set(t.values, at);
    at += t.values.length;
  }
  await writeFileAtomic(path, bytes);
}

function readHeader(bytes: Uint8Array, path: string): Record<string, unknown> {
  try {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 8 || dv.getUint32(0, true) !== MAGIC) throw new Error("bad magic");
    const hlen = dv.getUint32(4, true);
    return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new NoiselabError(
      `${path}: corrupt checkpoint (${(e as Error).message}); delete it to start over`,
      path,
    );
  }
}

function parseCheckpoint(bytes: Uint8Array, path: string): Checkpoint {
  const header = readHeader(bytes, path) as any;
  try {
    const hlen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
    const start = Math.ceil((8 + hlen) / 4) * 4;
    const buf = bytes.slice(start).buffer;
    const floats = new Float32Array(buf);
    const take = (m: { offset: number; length: number }) => {
      if (m.offset + m.length > floats.length) throw new Error("truncated");
      return floats.slice(m.offset, m.offset + m.length);
    };
    return {
      epoch: header.epoch,
      globalStep: header.globalStep,
      history: header.history,
      wallSeconds: header.wallSeconds,
      startedAt: header.startedAt,
      rng: header.rng,
      weights: header.weights.map((w: { name: string; shape: number[]; offset: number; length: number }) => ({
        name: w.name,
        shape: w.shape,
        values: take(w),
      })),
      optimizer: {
        step: header.optimizer.step,
        slots: header.optimizer.slots.map((s: { shape: number[]; offset: number; length: number }) => ({
          shape: s.shape,
          values: take(s),
        })),
      },
    };
  } catch (e) {
    throw new NoiselabError(
      `${path}: corrupt checkpoint (${(e as Error).message}); delete it to start over`,
      path,
    );
  }
}

/** Read a checkpoint, or undefined when there is none. A corrupt file raises a NoiselabError naming it. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  const path = checkpointPath(dir);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return parseCheckpoint(bytes, path);
}

/**
 * A snapshot of the weights along the training trajectory (for robustness-over-training
 * studies, notebook 05). Snapshots do not change training: they are written after
 * optimizer step `step`, evaluated on the config's test subset, and a resumed run
 * rewrites the ones of the replayed epochs bitwise identically.
 */
export interface SnapshotInfo {
  /** Optimizer steps done when it was taken. */
  step: number;
  /** Training images seen (step × batch, the last batch of an epoch may be smaller). */
  imagesSeen: number;
  /** Fractional epochs done (step / steps per epoch). */
  epochs: number;
  /** Clean accuracy on the config's test subset (0..1). */
  testAccuracy: number;
  /** The snapshot file. */
  path: string;
}

/** Folder of a model's trajectory snapshots. */
export function snapshotsDir(dir: string): string {
  return join(dir, "snapshots");
}

/** Write one snapshot (weights incl. BN moving statistics; no optimizer state), atomically. */
export async function saveSnapshot(
  dir: string,
  model: LayersModel,
  info: Omit<SnapshotInfo, "path">,
): Promise<string> {
  const path = join(snapshotsDir(dir), `step-${String(info.step).padStart(7, "0")}.bin`);
  await writeCheckpointFile(path, model, { step: 0, slots: [] }, { snapshot: info });
  return path;
}

/** The snapshots of a model folder, by step (empty when there are none). */
export async function listSnapshots(dir: string): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  try {
    for await (const e of Deno.readDir(snapshotsDir(dir))) {
      if (!/^step-\d+\.bin$/.test(e.name)) continue;
      const path = join(snapshotsDir(dir), e.name);
      const header = readHeader(await Deno.readFile(path), path) as { snapshot: Omit<SnapshotInfo, "path"> };
      out.push({ ...header.snapshot, path });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return out.sort((a, b) => a.step - b.step);
}

/** Load a snapshot's weights into a model of the same architecture. */
export async function loadSnapshotInto(model: LayersModel, path: string): Promise<void> {
  const ck = parseCheckpoint(await Deno.readFile(path), path);
  restoreWeights(model, ck.weights);
}

/** Copy checkpoint weights into a model built with the same architecture (matched by order and shape). */
export function restoreWeights(model: LayersModel, weights: Checkpoint["weights"]): void {
  const ws = model.weights;
  if (ws.length !== weights.length) {
    throw new Error(`checkpoint has ${weights.length} weights, model has ${ws.length}`);
  }
  ws.forEach((w, i) => {
    const s = weights[i];
    if (s.shape.join(",") !== w.shape.join(",")) {
      throw new Error(`checkpoint weight ${s.name} shape [${s.shape}] does not match ${w.name} [${w.shape}]`);
    }
    tf.tidy(() => {
      w.write(tf.tensor(s.values, s.shape, "float32"));
    });
  });
}
