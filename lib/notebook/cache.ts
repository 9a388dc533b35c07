/**
 * Result cache for noise sweeps: `results/sweeps/<hash>.json`, keyed by
 * {@link sweepCacheKey}: the hash of the resolved lib/noise `SweepConfig`
 * (`sweepConfigHash`: every knob of the sweep), the model id, the trajectory
 * snapshot step, the data copy and test subset, the backend and
 * `NUMERICS_VERSION` — everything that can change the numbers — so re-running
 * an unchanged notebook takes seconds, any change recomputes, and edits that
 * do not change numbers (comments, prose, charts) keep every stored sweep. The
 * source hash `libVersion()` is recorded in each file for provenance only. An
 * unfinished sweep keeps its finished noise draws in `<hash>.partial.json`
 * beside the entry and resumes from it.
 *
 * Entries stored before the SweepConfig change (under lib/noise `sweepKey` +
 * snapshot step, {@link legacySweepKey}) are still found: `cachedSweep`'s
 * `legacyKeys` looks them up on a miss and copies a hit (and an old partial
 * file) to the new key, so nothing is recomputed.
 * @module
 */
import { join } from "node:path";
import { backendInfo, storeBackendName } from "../backend/mod.ts";
import { parseExact, removePartialSweep, stringifyExact, withSweepPartial } from "../noise/partial.ts";
import {
  noiseSpecOf,
  resolveSweepConfig,
  type SweepConfig,
  sweepConfigHash,
  sweepKeyView,
} from "../noise/config.ts";
import type { CalibrationImages } from "../noise/config.ts";
import { sweepKey } from "../noise/sweep.ts";
import { exists, writeFileAtomic } from "../util/fs.ts";
import { hashObject } from "../util/hash.ts";
import { resultsDir } from "../util/paths.ts";
import { libVersion, NUMERICS_VERSION } from "../util/version.ts";

/** Inputs of {@link sweepCacheKey}. */
export interface SweepCacheKeyInput {
  /** The sweep's configuration (resolved here; `testSize` is bound to `testSubset.size`). */
  config: SweepConfig | Partial<SweepConfig>;
  /** Id of the trained model (lib/train `modelId`). */
  modelId: string;
  /** Trajectory snapshot swept (its optimizer step), or null/undefined for the final model. */
  snapshotStep?: number | null;
  /** Id of the data copy (lib/data `Dataset.dataId`). */
  dataId: string;
  /** The test subset scored (lib/noise `sweepData(...).testSubset`): stratified, `size` images, subset seed. */
  testSubset: { size: number; subsetSeed: number };
  /** Backend name; default the current one (`backendInfo().name`). */
  backend?: string;
}

/**
 * The cache key of a sweep: the resolved `SweepConfig` and its
 * `sweepConfigHash`, the model id, the snapshot step, the data copy id, the
 * test subset, the backend and `NUMERICS_VERSION`. The calibration images of
 * BN re-estimation need no entry of their own: one rule picks them from the
 * data copy and the config (lib/noise `calibrationImages`), and the model id
 * fixes the normalisation. `testSize` is bound to the subset actually scored
 * (null, "the model's own", and the same number spelled out give one key).
 * Hash it with {@link sweepCachePath}.
 * @throws NoiselabError naming a bad config field (lib/noise `resolveSweepConfig`)
 */
export function sweepCacheKey(input: SweepCacheKeyInput): Record<string, unknown> {
  const config = resolveSweepConfig({ ...input.config, testSize: input.testSubset.size });
  return {
    kind: "noiseSweep/config",
    // later fields at their defaults left out: older sweeps keep their keys (lib/noise sweepKeyView)
    config: sweepKeyView(config),
    configHash: sweepConfigHash(config),
    modelId: input.modelId,
    snapshotStep: input.snapshotStep ?? null,
    dataId: input.dataId,
    testSubset: { size: input.testSubset.size, subsetSeed: input.testSubset.subsetSeed },
    backend: storeBackendName(input.backend ?? backendInfo().name),
    numerics: NUMERICS_VERSION,
  };
}

/**
 * The key the notebooks stored sweeps under before the SweepConfig change
 * (lib/notebook `sweepVariant` then: lib/noise `sweepKey` of the sweep's
 * options plus the snapshot step), rebuilt from a config, so that
 * `cachedSweep`'s `legacyKeys` finds those entries.
 */
export function legacySweepKey(input: {
  config: SweepConfig;
  modelId: string;
  snapshotStep?: number | null;
  dataId: string;
  test: { x: Float32Array; labels: ArrayLike<number> };
  calibration?: CalibrationImages;
  backend?: string;
}): Record<string, unknown> {
  const c = input.config;
  return {
    ...sweepKey({
      modelId: input.modelId,
      data: { x: input.test.x, labels: input.test.labels },
      dataId: input.dataId,
      etas: c.etas,
      draws: c.draws,
      seed: c.seed,
      spec: noiseSpecOf(c),
      scoring: c.scoring,
      batchSize: c.batchSize,
      recalibrateBN: c.recalibrateBatches > 0 && input.calibration
        ? { x: input.calibration.x, batches: c.recalibrateBatches, batchSize: c.recalibrateBatchSize }
        : null,
      backend: input.backend === undefined ? undefined : storeBackendName(input.backend),
      // legacy entries were all computed unfused: a fast-path config never matches one
      fastPath: c.fastPath === "bf16" ? "bf16" : c.fastPath === "fp32" ? true : undefined,
    }),
    snapshotStep: input.snapshotStep ?? null,
  };
}

/** What a cache file holds. */
export interface CachedSweep<T> {
  key: Record<string, unknown>;
  hash: string;
  /** Hash of the legacy key this entry was copied from ({@link SweepCacheOptions.legacyKeys}). */
  migratedFrom?: string;
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
  /**
   * Keys the same sweep was stored under before (e.g. {@link legacySweepKey}), called only on a miss:
   * an entry found under one is copied to `key` (with `migratedFrom`) and served; an unfinished
   * sweep's partial file under one is moved to `key`'s and resumed.
   */
  legacyKeys?: () => Record<string, unknown>[];
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
 * On a miss: look for the sweep under its legacy keys. An entry found is
 * written under `key` (atomically, `migratedFrom` naming the old hash; the old
 * file stays) and returned; else an old partial file is moved to `partialPath`
 * (when there is none) so the computation resumes its finished draws.
 */
async function migrateLegacy<T>(
  key: Record<string, unknown>,
  path: string,
  partialPath: string,
  opts: SweepCacheOptions,
): Promise<CachedSweep<T> | undefined> {
  const legacy = opts.legacyKeys?.() ?? [];
  for (const old of legacy) {
    const oldPath = sweepCachePath(old, opts);
    const hit = await readEntry<T>(oldPath);
    if (hit && hit.result !== undefined) {
      const entry: CachedSweep<T> = {
        ...hit,
        key,
        hash: path.split("/").pop()!.replace(/\.json$/, ""),
        migratedFrom: hit.hash,
      };
      await writeFileAtomic(path, stringifyExact(entry, 2) + "\n");
      return entry;
    }
  }
  if (await exists(partialPath)) return undefined; // a partial file of the new key: resume that one
  for (const old of legacy) {
    try {
      await Deno.rename(sweepPartialPath(old, opts), partialPath);
      break;
    } catch {
      // no partial file under this legacy key
    }
  }
  return undefined;
}

/**
 * Return the stored result for `key` ({@link sweepCacheKey}, or any record of
 * everything that determines the result), or run `compute`, store its result atomically and return it.
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
    const migrated = await migrateLegacy<T>(key, path, partialPath, opts);
    if (migrated) return { result: migrated.result, fromCache: true, path, seconds: migrated.seconds };
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
