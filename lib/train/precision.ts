/**
 * Which arithmetic a training run can use here: {@link resolveTrainPrecision}
 * turns a requested `precision: "bf16"` into `"fp32"` where bf16 training
 * cannot run (another backend than the `onednn` engine, or a CPU without bf16
 * dot products), with a one-line notice, before a model id is computed.
 * @module
 */
import { backendInfo } from "../backend/mod.ts";
import { ENGINE_NAME } from "../backend/engine/name.ts";
import { bf16Available } from "../backend/engine/precision.ts";
import type { TrainConfig } from "./config.ts";

let noticed = false;

/** Why bf16 training cannot run here, or null when it can. */
export function bf16TrainingUnavailable(): string | null {
  let name: string;
  try {
    name = backendInfo().name;
  } catch {
    return "no compute backend selected";
  }
  if (name !== ENGINE_NAME) return `the ${name} backend has no bf16 kernels (only ${ENGINE_NAME})`;
  if (!bf16Available()) return "the CPU has no bf16 dot products (avx512_core_bf16 / AMX) per oneDNN";
  return null;
}

/**
 * The config with the precision that will actually be used: `cfg` itself
 * unless it asks for bf16 where bf16 cannot run; then a copy with
 * `precision: "fp32"` (and a one-line notice on stderr, once per process).
 * @param cfg a resolved training config (lib/train `resolveTrainConfig`)
 */
export function resolveTrainPrecision(cfg: TrainConfig): TrainConfig {
  if (cfg.precision !== "bf16") return cfg;
  const why = bf16TrainingUnavailable();
  if (why === null) return cfg;
  if (!noticed) {
    noticed = true;
    console.error(`[train] precision bf16 unavailable (${why}); training in fp32`);
  }
  return { ...cfg, precision: "fp32" };
}
