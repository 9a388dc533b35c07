/**
 * noiselab: everything notebooks and the CLI need, from one import.
 *
 * ```ts
 * import { initBackend, trainOrLoad, noiseSweep } from "../lib/mod.ts";
 * await initBackend();
 * const t = await trainOrLoad({ model: "resnet20", bn: "none", epochs: 30, trainSize: 5000 });
 * const sweep = await noiseSweep(t.model, t.test, { etas: [0.1, 0.2], draws: 10, seed: 0, modelId: t.id });
 * ```
 *
 * Each module is also re-exported as a namespace (`util`, `data`, `models`,
 * `train`, `noise`, `backend`, `analysis`) for names that would otherwise clash.
 * @module
 */
export * from "./util/mod.ts";
export * from "./data/mod.ts";
export * from "./models/mod.ts";
export * from "./train/mod.ts";
export * from "./noise/mod.ts";
export * from "./backend/mod.ts";
export * from "./analysis/mod.ts";
export * as util from "./util/mod.ts";
export * as data from "./data/mod.ts";
export * as models from "./models/mod.ts";
export * as train from "./train/mod.ts";
export * as noise from "./noise/mod.ts";
export * as backend from "./backend/mod.ts";
export * as analysis from "./analysis/mod.ts";
