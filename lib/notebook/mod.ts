/**
 * noiselab notebook support: in-place progress bars, parameter profiles
 * (smoke | quick | standard | paper), the sweep result cache, and the headless
 * `reproduce` runner (executes notebooks/ on the Deno Jupyter kernel), its index page (the study's front
 * page) and the run manifest each notebook run writes for it (`showFinding`, `recordArtifact`).
 * @module
 */
export * from "./progress.ts";
export * from "./profiles.ts";
export * from "./cache.ts";
export {
  DEFAULT_CELL_TIMEOUT,
  listNotebooks,
  parameterNames,
  parseParamValue,
  parseReproduceArgs,
  processAlive,
  reproduce,
  REPRODUCE_USAGE,
  runNotebook,
} from "./reproduce.ts";
export type { NotebookFile, ReproduceOptions, RunRecord, RunStatus } from "./reproduce.ts";
export * from "./index_page.ts";
export * from "./manifest.ts";
export * from "./study.ts";
export * from "./interpret.ts";
export * from "./trajectory.ts";
export { parameters, withParameters } from "./params.ts";
