/**
 * The code version of lib/: a hash of every source file under lib/ (excluding
 * notebooks, tests and docs). It is part of every model id, so a change to the
 * training or model code never silently reuses a stale stored model.
 * @module
 */
import { join, relative } from "node:path";
import { projectRoot } from "./paths.ts";
import { sha256Hex } from "./hash.ts";

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

/** 12-hex hash of the lib/ sources (cached per process). `NOISELAB_LIB_VERSION` overrides it. */
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
