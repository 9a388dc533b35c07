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
