/**
 * Save / load models in the TensorFlow.js "layers-model" format
 * (`model.json` + `weights.bin`), the files `tfjs-node`'s `file://` handler
 * would write (that handler is not available under Deno).
 *
 * Writes are atomic: `weights.bin` first, then `model.json` (each via a temp
 * file + rename), so a folder with a `model.json` always has its weights.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs.ts";
import { NoiselabError } from "../util/errors.ts";

/** Name of the topology file. */
export const MODEL_JSON = "model.json";
/** Name of the weights file. */
export const WEIGHTS_BIN = "weights.bin";

function joinWeightData(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (Array.isArray(data)) {
    const total = data.reduce((s, b) => s + b.byteLength, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const b of data) {
      out.set(new Uint8Array(b), off);
      off += b.byteLength;
    }
    return out;
  }
  return new Uint8Array(data as ArrayBuffer);
}

/** Save `model` to `dir/model.json` + `dir/weights.bin` (folder created if needed). */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (a: tf.io.ModelArtifacts) => {
    const weights = joinWeightData(a.weightData);
    const json: Record<string, unknown> = {
      format: a.format ?? "layers-model",
      generatedBy: a.generatedBy,
      convertedBy: a.convertedBy ?? null,
      modelTopology: a.modelTopology,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: a.weightSpecs ?? [] }],
    };
    if (a.userDefinedMetadata) json.userDefinedMetadata = a.userDefinedMetadata;
    await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
    await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(json));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: "JSON",
        weightDataBytes: weights.byteLength,
      },
    };
  }));
}

/**
 * Load a model saved by {@link saveModel} (or any tfjs layers-model with one
 * weights file). Missing or corrupt files raise a NoiselabError naming the file.
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  let json: {
    modelTopology?: unknown;
    weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    format?: string;
    generatedBy?: string;
    convertedBy?: string | null;
    userDefinedMetadata?: Record<string, unknown>;
  };
  try {
    json = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new NoiselabError(`${jsonPath}: no such file`, jsonPath);
    throw new NoiselabError(`${jsonPath}: not a valid model.json (${(e as Error).message})`, jsonPath);
  }
  if (!json || typeof json !== "object" || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new NoiselabError(
      `${jsonPath}: not a tfjs layers-model (modelTopology/weightsManifest missing)`,
      jsonPath,
    );
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const wpath = join(dir, p);
      try {
        parts.push(await Deno.readFile(wpath));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) throw new NoiselabError(`${wpath}: no such file`, wpath);
        throw e;
      }
    }
  }
  const total = parts.reduce((s, b) => s + b.byteLength, 0);
  const expected = specs.reduce((s, w) => {
    const bytes = w.dtype === "float32" || w.dtype === "int32" ? 4 : w.dtype === "bool" ? 1 : 4;
    return s + w.shape.reduce((a, b) => a * b, 1) * bytes;
  }, 0);
  if (specs.every((w) => !w.quantization) && total !== expected) {
    throw new NoiselabError(
      `${
        join(dir, WEIGHTS_BIN)
      }: ${total} bytes, but ${MODEL_JSON} describes ${expected} (truncated or mismatched)`,
      join(dir, WEIGHTS_BIN),
    );
  }
  const weightData = new Uint8Array(total);
  let off = 0;
  for (const b of parts) {
    weightData.set(b, off);
    off += b.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
    weightSpecs: specs,
    weightData: weightData.buffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? null,
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts["userDefinedMetadata"],
  };
  return await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}
