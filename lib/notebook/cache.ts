/**
 * Result cache for noise sweeps: `results/sweeps/<hash>.json`, keyed by
 * everything that can change the numbers (lib/noise `sweepKey`: model id, data
 * fingerprint and copy, every sweep parameter, scoring rule, backend and
 * `NUMERICS_VERSION`), so re-running an unchanged notebook takes seconds, any
 * change recomputes, and edits that do not change numbers (comments, prose,
 * charts) keep every stored sweep. The source hash `libVersion()` is recorded
 * in each file for provenance only. An unfinished sweep keeps its finished
 * noise draws in `<hash>.partial.json` beside the entry and resumes from it.
 * @module
 */
import { join } from "node:path";
import { parseExact, removePartialSweep, stringifyExact, withSweepPartial } from "../noise/partial.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { hashObject } from "../util/hash.ts";
import { resultsDir } from "../util/paths.ts";
import { libVersion } from "../util/version.ts";

/** What a cache file holds. */
export interface CachedSweep<T> {
  key: Record<string, unknown>;
  hash: string;
  libVersion: string;
  createdAt: string;
  seconds: number;
  result: T;
}

/** Options of {@link cachedSweep}. */
export interface SweepCacheOptions {
  /** Results folder (default `resultsDir()`). */
  resultsDir?: string;
  /** Ignore a stored result and recompute (the new one replaces it); a partial file is discarded too. */
  refresh?: boolean;
}

/** What `compute` of {@link cachedSweep} is given. */
export interface SweepComputeContext {
  /** The partial file of this entry ({@link sweepPartialPath}), for lib/noise `noiseSweep`'s `partial`. */
  partialPath: string;
}

/** Path of the cache file for a key (a hash of the key alone: the key names the numerics version). */
export function sweepCachePath(key: Record<string, unknown>, opts: SweepCacheOptions = {}): string {
  return join(opts.resultsDir ?? resultsDir(), "sweeps", `${hashObject(key, 16)}.json`);
}

/**
 * Path of the partial file of a key: `<hash>.partial.json` beside the cache
 * entry, holding the finished noise draws of an unfinished sweep
 * (lib/noise/partial.ts).
 */
export function sweepPartialPath(key: Record<string, unknown>, opts: SweepCacheOptions = {}): string {
  return sweepCachePath(key, opts).replace(/\.json$/, ".partial.json");
}

async function readEntry<T>(path: string): Promise<CachedSweep<T> | undefined> {
  try {
    return parseExact<CachedSweep<T>>(await Deno.readTextFile(path));
  } catch {
    return undefined; // missing or unreadable: recompute (the entry is rewritten atomically)
  }
}

/**
 * Return the stored result for `key` (must include the model id and every sweep
 * parameter), or run `compute`, store its result atomically and return it.
 * `fromCache` tells which happened (shown in the notebooks' provenance).
 *
 * Resumable: `compute` runs with {@link sweepPartialPath} as the partial file
 * of the noise sweep inside it (lib/noise `withSweepPartial`: `noiseSweep`
 * picks it up without being told; it is also passed as
 * `ctx.partialPath`), so the draws an interrupted or killed computation
 * finished are kept and a re-run computes only the rest. The partial file is
 * removed once the entry is written. Non-finite numbers (NaN bounds, NaN
 * shares) are stored as such, not as null (lib/noise `stringifyExact`).
 * @throws whatever `compute` throws (e.g. InterruptedError); nothing is stored then.
 */
export async function cachedSweep<T>(
  key: Record<string, unknown>,
  compute: (ctx: SweepComputeContext) => Promise<T>,
  opts: SweepCacheOptions = {},
): Promise<{ result: T; fromCache: boolean; path: string; seconds: number }> {
  const path = sweepCachePath(key, opts);
  const partialPath = sweepPartialPath(key, opts);
  if (!opts.refresh) {
    const hit = await readEntry<T>(path);
    if (hit && hit.result !== undefined) {
      return { result: hit.result, fromCache: true, path, seconds: hit.seconds };
    }
  } else {
    await removePartialSweep(partialPath);
  }
  const t0 = performance.now();
  const result = await withSweepPartial(partialPath, () => compute({ partialPath }));
  const seconds = (performance.now() - t0) / 1000;
  const entry: CachedSweep<T> = {
    key,
    hash: path.split("/").pop()!.replace(/\.json$/, ""),
    libVersion: libVersion(),
    createdAt: new Date().toISOString(),
    seconds,
    result,
  };
  await writeFileAtomic(path, stringifyExact(entry, 2) + "\n");
  await removePartialSweep(partialPath);
  return { result, fromCache: false, path, seconds };
}
