/**
 * Resumable sweeps: a noise sweep saves each finished noise draw (per eta, per
 * draw) to a partial file as soon as it finishes, atomically, and a re-run of
 * the same sweep skips the draws found there. Draw k of eta e uses its own
 * seeded streams (`${seed}:${e}:${k}:<layer>/<weight>`) and the model's
 * weights are restored bitwise after every draw, so the rows of a resumed
 * sweep equal those of an uninterrupted one bitwise.
 *
 * The partial file (JSON, written with {@link stringifyExact}):
 * `{ kind: "noiseSweepPartial", version: 1, identity, clean, done: [{ i, k, row }], updatedAt }`
 * where `identity` is the sweep's own {@link sweepKey}-style record (checked on
 * resume: a file of another sweep is ignored and overwritten), `clean` the
 * clean evaluation, and `i`/`k` the indices of the noise level in `etas` and
 * of the draw.
 *
 * Where the file lives: {@link SweepOptions.partial} of `noiseSweep`, or the
 * path an enclosing {@link withSweepPartial} provides (lib/notebook/cache.ts
 * `cachedSweep` puts `<cache entry>.partial.json` beside the final cache entry).
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { writeFileAtomic } from "../util/fs.ts";
import { stableStringify } from "../util/hash.ts";
import type { SweepRow } from "./stats.ts";

/** One finished draw: `i` = index of its noise level in `etas`, `k` = draw index. */
export interface PartialDraw {
  i: number;
  k: number;
  row: SweepRow;
}

/** The content of a partial sweep file. */
export interface PartialSweep {
  kind: "noiseSweepPartial";
  version: 1;
  /** What the sweep is (model id, data fingerprint, every sweep parameter, numerics version). */
  identity: Record<string, unknown>;
  /** The clean (noise-free, possibly folded) evaluation: accuracy and non-finite share, 0..1. */
  clean: { accuracy: number; nonFiniteShare: number } | null;
  done: PartialDraw[];
  updatedAt: string;
}

const NON_FINITE = "$nonFinite";

/**
 * `JSON.stringify` that keeps NaN, Infinity and -Infinity (as `{"$nonFinite": "NaN"}`
 * etc.; plain JSON turns them into null). Read back with {@link parseExact}.
 * Finite numbers round-trip bitwise (shortest round-trip form), except -0 (written as 0).
 */
export function stringifyExact(value: unknown, space?: number): string {
  return JSON.stringify(
    value,
    (_k, v) => typeof v === "number" && !Number.isFinite(v) ? { [NON_FINITE]: String(v) } : v,
    space,
  );
}

/** `JSON.parse` that restores the non-finite numbers written by {@link stringifyExact}. */
export function parseExact<T = unknown>(text: string): T {
  return JSON.parse(text, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === NON_FINITE && typeof v[NON_FINITE] === "string") {
        return Number(v[NON_FINITE]);
      }
    }
    return v;
  }) as T;
}

/**
 * Read a partial sweep file. Returns undefined when it does not exist, cannot
 * be parsed, or belongs to another sweep (`identity` differs): the sweep then
 * starts from scratch and overwrites it.
 */
export async function readPartialSweep(
  path: string,
  identity: Record<string, unknown>,
): Promise<PartialSweep | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const p = parseExact<PartialSweep>(text);
    if (p?.kind !== "noiseSweepPartial" || p.version !== 1 || !Array.isArray(p.done)) return undefined;
    if (stableStringify(p.identity) !== stableStringify(identity)) return undefined;
    return p;
  } catch {
    return undefined; // written atomically, so only a foreign or hand-edited file gets here
  }
}

/** Write a partial sweep file atomically (temp file + rename). */
export async function writePartialSweep(path: string, p: PartialSweep): Promise<void> {
  await writeFileAtomic(path, stringifyExact(p) + "\n");
}

/** Delete a partial sweep file (no error when it is not there). */
export async function removePartialSweep(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

const ambient = new AsyncLocalStorage<{ path: string }>();

/**
 * Run `fn` with `path` as the partial file of the noise sweep(s) it runs (the
 * ones that do not name their own {@link SweepOptions.partial}): lets a cache
 * layer make a sweep resumable without its callers passing the path along.
 * The file belongs to one sweep at a time: a second sweep inside `fn` finds
 * the first one's identity, ignores its draws and overwrites the file.
 */
export function withSweepPartial<T>(path: string, fn: () => T): T {
  return ambient.run({ path }, fn);
}

/** The partial file an enclosing {@link withSweepPartial} provides, if any. */
export function ambientSweepPartial(): string | undefined {
  return ambient.getStore()?.path;
}
