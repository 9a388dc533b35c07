/**
 * Where things live. The project root is found from this file's location, so
 * notebooks (whose working directory is `notebooks/`) and the CLI agree.
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the project root. */
export const projectRoot: string = resolve(fileURLToPath(new URL("../../", import.meta.url)));

/** Data folder (`data/`, or `$NOISELAB_DATA_DIR`). */
export function dataDir(): string {
  return Deno.env.get("NOISELAB_DATA_DIR") ?? join(projectRoot, "data");
}

/** Results folder (`results/`, or `$NOISELAB_RESULTS_DIR`). */
export function resultsDir(): string {
  return Deno.env.get("NOISELAB_RESULTS_DIR") ?? join(projectRoot, "results");
}

/**
 * True when figures and tables are published to the committed results
 * (`results/figures`, `results/tables`): only `reproduce` sets
 * `NOISELAB_PUBLISH=1` for the kernels it starts. Interactive work (the
 * Jupyter UI, the CLI, scripts) writes to the scratch area instead, so that it
 * never overwrites the files committed beside the executed notebooks.
 */
export function publishing(): boolean {
  return Deno.env.get("NOISELAB_PUBLISH") === "1";
}

/**
 * Folder for exported artefacts of one kind (`"figures"`, `"tables"`):
 * `results/<kind>` when {@link publishing}, else `results/scratch/<kind>`
 * (git-ignored).
 */
export function outputDir(kind: "figures" | "tables"): string {
  return publishing() ? join(resultsDir(), kind) : join(resultsDir(), "scratch", kind);
}
