/**
 * The plan of a study: every training and sweep job the notebooks of a profile
 * need, each under the id the store itself uses (a trained model's
 * `modelId`, a sweep's cache-file hash), with its dependencies, a cost
 * estimate and whether the store already holds it. Workers
 * (lib/study/worker.ts) run the jobs one by one, on one machine or a cluster;
 * the notebooks then only read the store.
 *
 * The enumeration mirrors the notebooks' code cells (notebooks/*.ipynb):
 * 01 and 04 train `bnVariants(models)` per seed and sweep each final model
 * under `defaultCondition`, then compare the first seed's BN model with its
 * twin at matched clean accuracy; 02 trains `bnCountVariants(models[0],
 * bnCountsFor(...))` and sweeps them; 03 trains `bnVariants` per seed, sweeps
 * the first seed's BN models under every `attributionConditions` and their
 * twins under `referenceConditions`, and a kernels-only matched comparison;
 * 05 trains the first seed's `bnVariants` and sweeps every trajectory snapshot
 * and the final model; 06 trains the first seed's `bnVariants` (and, with `trainNoise` > 0, a
 * noise-trained twin of each BN model) and sweeps each under `analogConditions` of its role. A change
 * to a notebook's calls must be mirrored here;
 * test/study_plan.test.ts checks the plan against a real `reproduce` run.
 *
 * Matched-accuracy sweeps depend on numbers (which snapshot of the better
 * model is closest to its twin's clean accuracy), so they are jobs of their
 * own (kind `matched`, phase 2) whose snapshot the worker resolves with the
 * notebooks' own `matchedComparison` once both final sweeps are stored.
 * @module
 */
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import type { Dataset } from "../data/mod.ts";
import { bnSlotCount } from "../models/mod.ts";
import { sweepConfigHash } from "../noise/config.ts";
import { resolveFastPath } from "../noise/sweep.ts";
import { sweepCacheKey, sweepCachePath } from "../notebook/cache.ts";
import {
  NOTEBOOK_IDS,
  type NotebookId,
  type NotebookParams,
  resolveParams,
  sweepConfigFor,
  trainConfigFor,
} from "../notebook/profiles.ts";
import {
  attributionConditions,
  bnCountsFor,
  bnCountVariants,
  bnVariants,
  defaultCondition,
  referenceConditions,
  type SweepCondition,
  type Variant,
} from "../notebook/study.ts";
import { analogConditions } from "../notebook/analog.ts";
import {
  loadConfigDataset,
  resolveTrainConfig,
  resolveTrainPrecision,
  type TrainConfig,
} from "../train/mod.ts";
import { DEFAULT_SNAPSHOTS, snapshotSteps } from "../train/loop.ts";
import { listSnapshots, modelId, modelsDir } from "../train/store.ts";
import { exists } from "../util/fs.ts";
import { hashObject } from "../util/hash.ts";
import { resultsDir } from "../util/paths.ts";
import { NUMERICS_VERSION } from "../util/version.ts";
import { parseExact } from "../noise/partial.ts";

/** Job kinds, in phase order: training (0), sweeps of stored models (1), matched-accuracy sweeps (2). */
export type JobKind = "train" | "sweep" | "matched";

/** A model of the study: the notebook whose parameters train it, its variant and training seed. */
export interface ModelRef {
  notebook: NotebookId;
  variant: Variant;
  seed: number;
  /** Trajectory snapshots kept while training (`snapshots` parameter). */
  snapshots: number;
  /** The resolved lib/train config. */
  config: TrainConfig;
  /** `modelId` of the config (= the train job's id). */
  modelId: string;
}

/** One job of a plan. */
export interface PlanJob {
  /** Position in `Plan.jobs` (the worker's `--index`). */
  index: number;
  /** The store's id: model id (train), sweep cache hash (sweep), hash of the pair (matched). */
  id: string;
  kind: JobKind;
  /** 0 train, 1 sweep, 2 matched: a job depends only on jobs of earlier phases. */
  phase: 0 | 1 | 2;
  /** Human label, e.g. "train ResNet-8 + BN (seed 0)". */
  label: string;
  /** Notebooks that use the result. */
  notebooks: NotebookId[];
  /** Ids of the jobs this one needs. */
  deps: string[];
  /** Estimated CPU-seconds (threads × wall seconds) on the reference machine (see {@link THROUGHPUT}). */
  cpuSeconds: number;
  /** The store already holds the result (at the time of planning). */
  done: boolean;
  /** The model (train), the model swept (sweep), or the BN model of the pair (matched). */
  model: ModelRef;
  /** sweep/matched: the noise condition (as the notebook builds it). */
  condition?: SweepCondition;
  /** sweep: optimizer step of the trajectory snapshot swept, or null for the final model. */
  snapshotStep?: number | null;
  /** matched: the BN-free twin, and the ids of the two final-model sweeps compared. */
  twin?: ModelRef;
  pairSweeps?: [string, string];
}

/** A plan (`noiselab plan --json` writes it; `noiselab worker --plan` reads it). */
export interface Plan {
  kind: "noiselab-plan";
  version: 1;
  profile: string;
  overrides: Record<string, unknown>;
  /** The notebooks planned for (`--only`), or null for all: the notebook job runs these. */
  only: NotebookId[] | null;
  /** Backend name the ids were computed for: workers must run on the same one. */
  backend: string;
  numerics: string;
  /** Results folder the plan was checked against (workers use their own `NOISELAB_RESULTS_DIR`). */
  resultsDir: string;
  createdAt: string;
  jobs: PlanJob[];
}

/**
 * Training throughput (images/s) and inference throughput on the reference machine: AMD EPYC, 2 cores,
 * 2 threads, `noiselab` engine, batch 128 training / 500 inference — the README's `tools/noiselab bench`
 * table (ResNet-20, ResNet-44, VGG-16 at their default widths). Other architectures are scaled: ResNet by
 * depth (cost ∝ 6n+2 layers, relative to ResNet-44), VGG by its multiply-adds relative to VGG-16 (VGG-11
 * 0.49, VGG-13 0.73, VGG-19 1.27), and both by (width / default width)², never faster than ResNet-20 —
 * an estimate, not a measurement.
 */
export const THROUGHPUT = {
  threads: 2,
  resnet20: { bn: { train: 1018, infer: 3372 }, nobn: { train: 1244, infer: 3634 } },
  resnet44: { bn: { train: 482, infer: 1514 }, nobn: { train: 561, infer: 1622 } },
  vgg16: { bn: { train: 192, infer: 585 }, nobn: { train: 207, infer: 649 } },
} as const;

const VGG_RELATIVE: Record<number, number> = { 11: 0.49, 13: 0.73, 16: 1, 19: 1.27 };

/** Estimated images/s of one model on the reference machine ({@link THROUGHPUT}). */
export function throughputOf(
  model: string,
  width: number | null,
  hasBN: boolean,
): { train: number; infer: number } {
  const bnKey = hasBN ? "bn" : "nobn";
  const m = /^(resnet|vgg)(\d+)$/.exec(model);
  const arch = m?.[1] ?? "resnet";
  const depth = Number(m?.[2] ?? 20);
  let base: { train: number; infer: number };
  let rel: number;
  let defWidth: number;
  if (arch === "vgg") {
    base = THROUGHPUT.vgg16[bnKey];
    rel = VGG_RELATIVE[depth] ?? depth / 16;
    defWidth = 64;
  } else if (depth === 20) {
    base = THROUGHPUT.resnet20[bnKey];
    rel = 1;
    defWidth = 16;
  } else {
    base = THROUGHPUT.resnet44[bnKey];
    rel = depth / 44;
    defWidth = 16;
  }
  const w = width ?? defWidth;
  const scale = rel * (w / defWidth) ** 2;
  // models smaller than ResNet-20 are bound by per-layer overhead, not multiply-adds (measured: ResNet-8
  // at width 8 trains at ~700 img/s on one thread): never faster than ResNet-20
  const cap = THROUGHPUT.resnet20[bnKey];
  return { train: Math.min(cap.train, base.train / scale), infer: Math.min(cap.infer, base.infer / scale) };
}

function trainCost(cfg: TrainConfig, nTrain: number, hasBN: boolean, snapshots: number): number {
  const t = throughputOf(cfg.model, cfg.width ?? null, hasBN);
  const seconds = (nTrain * cfg.epochs) / t.train + (cfg.testSize * (cfg.epochs + snapshots)) / t.infer;
  return seconds * THROUGHPUT.threads;
}

function sweepCost(p: NotebookParams, ref: ModelRef, condition: SweepCondition): number {
  const cfg = sweepConfigFor(p, condition);
  const t = throughputOf(
    ref.config.model,
    ref.config.width ?? null,
    ref.variant.bn !== "none" && ref.variant.bn !== 0,
  );
  const evals = 1 + cfg.etas.filter((e) => e > 0).length * cfg.draws;
  const recal = cfg.recalibrateBatches * cfg.recalibrateBatchSize;
  const images = cfg.testSize ?? ref.config.testSize;
  return (evals * (images + recal) / t.infer) * THROUGHPUT.threads;
}

/** The train/test split sizes of a data set: from the loaded data set. */
function nTrainOf(cfg: TrainConfig, ds: Dataset): number {
  return Math.min(cfg.trainSize, ds.train.n);
}

/** Options of {@link buildPlan}. */
export interface PlanOptions {
  profile: string;
  overrides?: Record<string, unknown>;
  /** Notebooks to plan for (default all). */
  only?: string[] | null;
  /** Results folder to check (default `resultsDir()`). */
  resultsDir?: string;
}

/**
 * Build the plan of a profile: resolves every notebook's parameters (NoiselabError naming a bad
 * override, before any work), selects the backend, loads the data sets (for their `dataId`), and
 * enumerates the jobs as the notebooks would compute them, deduplicated by id.
 */
export async function buildPlan(opts: PlanOptions): Promise<Plan> {
  const overrides = opts.overrides ?? {};
  const results = opts.resultsDir ?? resultsDir();
  const ids = NOTEBOOK_IDS.filter((id) =>
    !opts.only || opts.only.some((o) => id.startsWith(o) || o.startsWith(id))
  );
  const params = ids.map((id) => ({ id, p: resolveParams(id, opts.profile, overrides) }));
  const backend = await initBackend(params[0]?.p.backend ?? "auto");
  const datasets = new Map<string, Dataset>();
  const datasetOf = async (cfg: TrainConfig): Promise<Dataset> => {
    const k = `${cfg.dataset}:${cfg.source}`;
    if (!datasets.has(k)) datasets.set(k, await loadConfigDataset(cfg));
    return datasets.get(k)!;
  };

  const jobs: PlanJob[] = [];
  const byId = new Map<string, PlanJob>();
  const add = (job: Omit<PlanJob, "index" | "done">): PlanJob => {
    const have = byId.get(job.id);
    if (have) {
      for (const n of job.notebooks) if (!have.notebooks.includes(n)) have.notebooks.push(n);
      return have;
    }
    const j = { ...job, index: -1, done: false };
    byId.set(j.id, j);
    jobs.push(j);
    return j;
  };

  const modelRef = async (nb: NotebookId, p: NotebookParams, v: Variant, seed: number) => {
    // as lib/notebook trainVariants: the variant's hardware-aware training noise on top (notebook 06's twins)
    const config = resolveTrainPrecision(resolveTrainConfig({
      ...trainConfigFor(p, v.model, v.bn, seed),
      ...(v.trainNoise ? { trainNoise: v.trainNoise } : {}),
    }));
    const ds = await datasetOf(config);
    const ref: ModelRef = {
      notebook: nb,
      variant: v,
      seed,
      snapshots: p.snapshots,
      config,
      modelId: modelId(config, ds.dataId, backend),
    };
    const hasBN = v.bn !== "none" && v.bn !== 0;
    add({
      id: ref.modelId,
      kind: "train",
      phase: 0,
      label: `train ${v.label}${p.seeds.length > 1 ? ` (seed ${seed})` : ""} [${config.dataset}]`,
      notebooks: [nb],
      deps: [],
      cpuSeconds: trainCost(config, nTrainOf(config, ds), hasBN, p.snapshots),
      model: ref,
    });
    return { ref, ds };
  };

  const sweepId = (p: NotebookParams, ref: ModelRef, ds: Dataset, c: SweepCondition, step: number | null) => {
    // as lib/notebook sweepVariant: the bf16 fast path where it cannot run is keyed as fp32
    const config = resolveFastPath(sweepConfigFor(p, c));
    const size = config.testSize ?? ref.config.testSize;
    const key = sweepCacheKey({
      config,
      modelId: ref.modelId,
      snapshotStep: step,
      dataId: ds.dataId,
      testSubset: { size, subsetSeed: ref.config.subsetSeed },
      backend,
    });
    return sweepCachePath(key, { resultsDir: results }).split("/").pop()!.replace(/\.json$/, "");
  };

  const sweep = (
    nb: NotebookId,
    p: NotebookParams,
    m: { ref: ModelRef; ds: Dataset },
    c: SweepCondition,
    step: number | null = null,
  ) => {
    const id = sweepId(p, m.ref, m.ds, c, step);
    const time = (c as { time?: number }).time;
    const what = step === null ? (time === undefined ? "" : ` @ t = ${time} s`) : ` @ step ${step}`;
    return add({
      id,
      kind: "sweep",
      phase: 1,
      label: `sweep ${m.ref.variant.label}${
        p.seeds.length > 1 ? ` (seed ${m.ref.seed})` : ""
      }${what}: ${c.label}`,
      notebooks: [nb],
      deps: [m.ref.modelId],
      cpuSeconds: sweepCost(p, m.ref, c),
      model: m.ref,
      condition: c,
      snapshotStep: step,
    });
  };

  const matched = (
    nb: NotebookId,
    p: NotebookParams,
    bn: { ref: ModelRef; ds: Dataset },
    no: { ref: ModelRef; ds: Dataset },
    c: SweepCondition,
    finals: [PlanJob, PlanJob],
  ) => {
    const id = hashObject({
      kind: "matched",
      configHash: sweepConfigHash(resolveFastPath(sweepConfigFor(p, c))),
      sweeps: [finals[0].id, finals[1].id],
      numerics: NUMERICS_VERSION,
    }, 16);
    return add({
      id,
      kind: "matched",
      phase: 2,
      label: `matched-accuracy sweep ${bn.ref.variant.label} vs ${no.ref.variant.label}: ${c.label}`,
      notebooks: [nb],
      deps: [bn.ref.modelId, no.ref.modelId, finals[0].id, finals[1].id],
      // at most one snapshot sweep of the better-trained model
      cpuSeconds: Math.max(finals[0].cpuSeconds, finals[1].cpuSeconds),
      model: bn.ref,
      twin: no.ref,
      condition: c,
      pairSweeps: [finals[0].id, finals[1].id],
    });
  };

  const snapshotStepsOf = (ref: ModelRef, ds: Dataset) => {
    const n = nTrainOf(ref.config, ds);
    const total = Math.ceil(n / ref.config.batchSize) * ref.config.epochs;
    return snapshotSteps(total, ref.snapshots ?? DEFAULT_SNAPSHOTS);
  };

  for (const { id: nb, p } of params) {
    if (nb === "01" || nb === "04") {
      const trained = [];
      for (const v of bnVariants(p.models)) {
        for (const s of p.seeds) trained.push(await modelRef(nb, p, v, s));
      }
      const cond = defaultCondition(p);
      const finals = trained.map((m) => ({ m, job: sweep(nb, p, m, cond) }));
      for (const model of p.models) {
        const f = (bn: boolean) =>
          finals.find((x) =>
            x.m.ref.variant.model === model && x.m.ref.seed === p.seeds[0] &&
            (x.m.ref.variant.bn === "all") === bn
          )!;
        const bn = f(true), no = f(false);
        if (bnSlotCount(model) > 0) matched(nb, p, bn.m, no.m, cond, [bn.job, no.job]);
      }
    } else if (nb === "02") {
      const model = p.models[0];
      const variants = bnCountVariants(model, bnCountsFor(model, p.bnCounts));
      for (const v of variants) {
        for (const s of p.seeds) sweep(nb, p, await modelRef(nb, p, v, s), defaultCondition(p));
      }
    } else if (nb === "03") {
      const all = [];
      for (const v of bnVariants(p.models)) for (const s of p.seeds) all.push(await modelRef(nb, p, v, s));
      const first = all.filter((m) => m.ref.seed === p.seeds[0]);
      const conditions = attributionConditions(p);
      const kernels: { m: { ref: ModelRef; ds: Dataset }; job: PlanJob }[] = [];
      for (
        const m of first.filter((m) => m.ref.variant.bn === "all" && bnSlotCount(m.ref.variant.model) > 0)
      ) {
        for (const c of conditions) {
          const job = sweep(nb, p, m, c);
          if (c.key === "kernels") kernels.push({ m, job });
        }
      }
      const refs: typeof kernels = [];
      for (const m of first.filter((m) => m.ref.variant.bn === "none")) {
        for (const c of referenceConditions(p)) {
          const job = sweep(nb, p, m, c);
          if (c.key === "kernels") refs.push({ m, job });
        }
      }
      for (const b of kernels) {
        const twin = refs.find((r) => r.m.ref.variant.model === b.m.ref.variant.model);
        if (twin) matched(nb, p, b.m, twin.m, conditions[0], [b.job, twin.job]);
      }
    } else if (nb === "06") {
      const q = { ...p, seeds: [p.seeds[0]] };
      const base = bnVariants(q.models);
      const twins: Variant[] = base.filter((v) => q.trainNoise > 0 && v.bn === "all").map((v) => ({
        ...v,
        key: `${v.key}-hwa`,
        label: `${v.label}, noise-trained`,
        trainNoise: q.trainNoise,
      }));
      for (const v of [...base, ...twins]) {
        const m = await modelRef(nb, q, v, q.seeds[0]);
        const role = v.trainNoise ? "twin" : v.bn === "none" ? "noBn" : "bn";
        for (const c of analogConditions(q, role)) sweep(nb, q, m, c);
      }
    } else if (nb === "05") {
      const q = { ...p, seeds: [p.seeds[0]] };
      const cond = defaultCondition(p);
      for (const v of bnVariants(p.models)) {
        const m = await modelRef(nb, q, v, p.seeds[0]);
        for (const step of snapshotStepsOf(m.ref, m.ds)) sweep(nb, q, m, cond, step);
        sweep(nb, q, m, cond);
      }
    }
  }

  jobs.sort((a, b) => a.phase - b.phase);
  jobs.forEach((j, i) => (j.index = i));
  const plan: Plan = {
    kind: "noiselab-plan",
    version: 1,
    profile: opts.profile,
    overrides,
    only: opts.only ? ids : null,
    backend,
    numerics: NUMERICS_VERSION,
    resultsDir: results,
    createdAt: new Date().toISOString(),
    jobs,
  };
  await refreshDone(plan, results);
  return plan;
}

/** Path of a stored sweep of the given id. */
export function sweepPath(id: string, results = resultsDir()): string {
  return join(results, "sweeps", `${id}.json`);
}

/**
 * Whether the store holds a job's result: a model's `meta.json`, a sweep's cache file; a matched
 * job is done when its snapshot sweep is stored, or when none is needed (both final sweeps stored and
 * no snapshot of the better model is closer to its twin's accuracy: the notebooks' rule).
 */
export async function jobDone(job: PlanJob, results = resultsDir()): Promise<boolean> {
  if (job.kind === "train") return await exists(join(modelsDir(results), job.id, "meta.json"));
  if (job.kind === "sweep") return await exists(sweepPath(job.id, results));
  const m = await matchedSnapshot(job, results);
  if (m === undefined) return false;
  if (m === null) return true;
  return await exists(sweepPath(m.sweepId, results));
}

/**
 * The snapshot a matched job sweeps (the notebooks' `matchedComparison` rule), with the id of that
 * sweep; null when no extra sweep is needed; undefined while the final sweeps are not stored.
 */
export async function matchedSnapshot(
  job: PlanJob,
  results = resultsDir(),
): Promise<{ modelId: string; step: number; sweepId: string } | null | undefined> {
  const [a, b] = job.pairSweeps!;
  const read = async (id: string) => {
    try {
      return parseExact<{ key: Record<string, unknown>; result: { cleanAccuracy: number } }>(
        await Deno.readTextFile(sweepPath(id, results)),
      );
    } catch {
      return undefined;
    }
  };
  const [sa, sb] = [await read(a), await read(b)];
  if (!sa || !sb) return undefined;
  const bnClean = sa.result.cleanAccuracy, noClean = sb.result.cleanAccuracy;
  if (bnClean === noClean) return null;
  const [lead, leadKey] = bnClean > noClean ? [job.model, sa.key] : [job.twin!, sb.key];
  const target = Math.min(bnClean, noClean);
  let best: number | null = null;
  let bestGap = Math.abs(Math.max(bnClean, noClean) - target);
  for (const s of await listSnapshots(join(modelsDir(results), lead.modelId))) {
    const g = Math.abs(s.testAccuracy - target);
    if (g < bestGap) [best, bestGap] = [s.step, g];
  }
  if (best === null) return null;
  const key = { ...leadKey, snapshotStep: best };
  const sweepId = sweepCachePath(key, { resultsDir: results }).split("/").pop()!.replace(/\.json$/, "");
  return { modelId: lead.modelId, step: best, sweepId };
}

/** Re-check every job's `done` against the store. */
export async function refreshDone(plan: Plan, results = resultsDir()): Promise<Plan> {
  for (const j of plan.jobs) j.done = await jobDone(j, results);
  return plan;
}

/** Read a plan file (NoiselabError naming it when it is not a plan). */
export async function readPlan(path: string): Promise<Plan> {
  const { NoiselabError } = await import("../util/errors.ts");
  let plan: Plan;
  try {
    plan = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new NoiselabError(`--plan: cannot read ${path} (${(e as Error).message})`, "--plan");
  }
  if (plan?.kind !== "noiselab-plan" || !Array.isArray(plan.jobs)) {
    throw new NoiselabError(
      `--plan: ${path} is not a noiselab plan (write one with noiselab plan --json)`,
      "--plan",
    );
  }
  return plan;
}

/** Totals of a plan: jobs per kind, done, CPU-hours (all / still to do). */
export function planTotals(plan: Plan): {
  jobs: number;
  byKind: Record<JobKind, number>;
  done: number;
  cpuHours: number;
  cpuHoursLeft: number;
  longestJobHours: number;
} {
  const byKind: Record<JobKind, number> = { train: 0, sweep: 0, matched: 0 };
  let cpu = 0, left = 0, longest = 0;
  for (const j of plan.jobs) {
    byKind[j.kind]++;
    cpu += j.cpuSeconds;
    if (!j.done) left += j.cpuSeconds;
    longest = Math.max(longest, j.cpuSeconds);
  }
  return {
    jobs: plan.jobs.length,
    byKind,
    done: plan.jobs.filter((j) => j.done).length,
    cpuHours: cpu / 3600,
    cpuHoursLeft: left / 3600,
    longestJobHours: longest / 3600,
  };
}
