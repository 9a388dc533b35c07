/**
 * Code identity.
 *
 * - {@link NUMERICS_VERSION}: the explicit version of the code that computes
 *   stored numbers (model building, training, noise, evaluation, the engine's
 *   kernels). It is part of every model id and sweep key, so stored work
 *   survives unrelated edits (a comment, a notebook helper, the CLI) and is
 *   recomputed only when a person bumps it. `test/numerics_version.test.ts`
 *   fails when a fixed training run or noise sweep changes its numbers while
 *   the version stays the same.
 * - {@link libVersion}: a hash of the lib/ sources, recorded in provenance only
 *   (which exact code produced a result), never part of a key.
 * @module
 */
import { join, relative } from "node:path";
import { projectRoot } from "./paths.ts";
import { sha256Hex } from "./hash.ts";

/**
 * Version of everything that can change a stored number. Bump it (and update
 * `lib/util/numerics_fingerprint.json` with `NOISELAB_UPDATE_FINGERPRINT=1 deno test -A
 * test/numerics_version.test.ts`) whenever a change alters trained weights, noisy
 * weights, logits or scores. History:
 * - `2`: 2026-11-30 — NaN/Inf propagate through the engine's kernels like tfjs `cpu`; scoring rule
 *   for non-finite logits; label smoothing, ResNet shortcut and BN epsilon/momentum in the config.
 */
export const NUMERICS_VERSION = "2";

let cached: string | undefined;

function walk(dir: string, out: string[]): void {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) {
      if (e.name === "build" || e.name === "node_modules") continue;
      walk(p, out);
    } else if (/\.(ts|cc|c|h|sh)$/.test(e.name)) out.push(p);
  }
}

/**
 * 12-hex hash of the lib/ sources (cached per process), for provenance only.
 * `NOISELAB_LIB_VERSION` overrides it.
 */
export function libVersion(): string {
  const forced = Deno.env.get("NOISELAB_LIB_VERSION");
  if (forced) return forced;
  if (cached) return cached;
  const files: string[] = [];
  walk(join(projectRoot, "lib"), files);
  files.sort();
  const parts: string[] = [];
  for (const f of files) {
    // the CLI, notebook helpers and analysis code do not change trained weights
    const rel = relative(projectRoot, f);
    if (/^lib\/(cli|analysis|notebook)\//.test(rel)) continue;
    parts.push(rel + "\0" + sha256Hex(Deno.readFileSync(f)));
  }
  cached = sha256Hex(parts.join("\n")).slice(0, 12);
  return cached;
}
