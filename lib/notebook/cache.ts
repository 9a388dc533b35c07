/**
 * Result cache for noise sweeps: `results/sweeps/<hash>.json`, keyed by
 * everything that can change the numbers (lib/noise `sweepKey`: model id, data
 * fingerprint and copy, every sweep parameter, scoring rule, backend and
 * `NUMERICS_VERSION`), so re-running an unchanged notebook takes seconds, any
 * change recomputes, and edits that do not change numbers (comments, prose,
 * charts) keep every stored sweep. The source hash `libVersion()` is recorded
 * in each file for provenance only.
 * @module
 */
import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic } from "../util/fs.ts";
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
  /** Ignore a stored result and recompute (the new one replaces it). */
  refresh?: boolean;
}

/** Path of the cache file for a key (a hash of the key alone: the key names the numerics version). */
export function sweepCachePath(key: Record<string, unknown>, opts: SweepCacheOptions = {}): string {
  return join(opts.resultsDir ?? resultsDir(), "sweeps", `${hashObject(key, 16)}.json`);
}

/**
 * Return the stored result for `key` (must include the model id and every sweep
 * parameter), or run `compute`, store its result atomically and return it.
 * `fromCache` tells which happened (shown in the notebooks' provenance).
 */
export async function cachedSweep<T>(
  key: Record<string, unknown>,
  compute: () => Promise<T>,
  opts: SweepCacheOptions = {},
): Promise<{ result: T; fromCache: boolean; path: string; seconds: number }> {
  const path = sweepCachePath(key, opts);
  if (!opts.refresh) {
    const hit = await readJsonIfExists<CachedSweep<T>>(path).catch(() => undefined);
    if (hit && hit.result !== undefined) {
      return { result: hit.result, fromCache: true, path, seconds: hit.seconds };
    }
  }
  const t0 = performance.now();
  const result = await compute();
  const seconds = (performance.now() - t0) / 1000;
  const entry: CachedSweep<T> = {
    key,
    hash: path.split("/").pop()!.replace(/\.json$/, ""),
    libVersion: libVersion(),
    createdAt: new Date().toISOString(),
    seconds,
    result,
  };
  await writeJsonAtomic(path, entry);
  return { result, fromCache: false, path, seconds };
}
