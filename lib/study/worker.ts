/**
 * Workers of a plan (lib/study/plan.ts): {@link runJob} runs one job into the
 * store — under the job's lock (lib/study/lock.ts), resuming from the last
 * training checkpoint or the finished noise draws, writing results atomically
 * through the store's own code (lib/train `trainOrLoad`, lib/notebook
 * `sweepVariant` / `matchedComparison`, exactly the calls the notebooks make)
 * — and {@link runPool} runs a whole plan on one machine with N worker
 * processes, each with its share of the cores.
 *
 * Per job, `<results>/jobs/` holds `<id>.log` (appended by every attempt),
 * `<id>.lock` while a worker runs it, `<id>.failed.json` after a failure
 * (error, host, pid, time; removed by the next success) and `<id>.done.json`.
 * @module
 */
import { join } from "node:path";
import { hostname } from "node:os";
import { backendInfo, initBackend } from "../backend/mod.ts";
import { bnSlotCount } from "../models/mod.ts";
import { resolveParams } from "../notebook/profiles.ts";
import { sweepVariant, type TrainedVariant } from "../notebook/study.ts";
import { matchedComparison } from "../notebook/trajectory.ts";
import { loadConfigDataset, trainOrLoad } from "../train/mod.ts";
import { formatProgressLine, type TrainProgress } from "../train/progress.ts";
import { listSnapshots } from "../train/store.ts";
import { NoiselabError } from "../util/errors.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { projectRoot, resultsDir } from "../util/paths.ts";
import { acquireLock, jobsDir } from "./lock.ts";
import { jobDone, type ModelRef, type Plan, type PlanJob } from "./plan.ts";

/** Outcome of {@link runJob}; `exitCode` is what `noiselab worker` exits with. */
export interface JobOutcome {
  status: "done" | "already-done" | "busy" | "blocked" | "failed";
  exitCode: number;
  message: string;
  seconds: number;
}

/** Options of {@link runJob}. */
export interface RunJobOptions {
  /** Results folder (default `resultsDir()`, i.e. `$NOISELAB_RESULTS_DIR`). */
  results?: string;
  /** When a live worker holds the job's lock: wait for it (default) or return `busy` (exit 75). */
  wait?: boolean;
  /** Seconds between plain progress lines while training (default 60, env `NOISELAB_PROGRESS_SECONDS`). */
  progressSeconds?: number;
  /** Where log lines go besides the job's log file (default stderr). */
  echo?: (line: string) => void;
}

/**
 * A training progress callback printing plain lines (no terminal control), for logs of batch jobs: one
 * line at every epoch end and at most one every `seconds` in between.
 */
export function plainTrainProgress(log: (s: string) => void, seconds: number): (p: TrainProgress) => void {
  let last = performance.now();
  return (p) => {
    const now = performance.now();
    if (p.phase === "epoch-end" || p.phase === "done" || now - last >= seconds * 1000) {
      last = now;
      log(`${p.phase === "train" ? "progress" : p.phase} ${formatProgressLine(p)}`);
    }
  };
}

/** Run job `index` of `plan` (see the module doc). Never throws for a failing job: returns `failed`. */
export async function runJob(plan: Plan, index: number, opts: RunJobOptions = {}): Promise<JobOutcome> {
  const t0 = performance.now();
  const results = opts.results ?? resultsDir();
  const job = plan.jobs[index];
  if (!job) {
    throw new NoiselabError(
      `--index: ${index} is not a job of the plan (0..${plan.jobs.length - 1})`,
      "--index",
    );
  }
  const dir = jobsDir(results);
  await Deno.mkdir(dir, { recursive: true });
  const logPath = join(dir, `${job.id}.log`);
  const logFile = await Deno.open(logPath, { append: true, create: true });
  const enc = new TextEncoder();
  const echo = opts.echo ?? ((s: string) => console.error(s));
  const log = (s: string) => {
    const line = `${new Date().toISOString()} ${hostname()}:${Deno.pid} [${job.index} ${job.id}] ${s}`;
    logFile.writeSync(enc.encode(line + "\n"));
    echo(line);
  };
  const secs = () => (performance.now() - t0) / 1000;
  const out = (status: JobOutcome["status"], exitCode: number, message: string): JobOutcome => {
    log(message);
    return { status, exitCode, message, seconds: secs() };
  };
  try {
    for (;;) {
      if (await jobDone(job, results)) {
        return out("already-done", 0, `already in the store: ${job.label}`);
      }
      const missing = [];
      for (const d of job.deps) {
        const dj = plan.jobs.find((j) => j.id === d);
        if (dj && !(await jobDone(dj, results))) missing.push(`${dj.index} ${dj.label}`);
      }
      if (missing.length) return out("blocked", 3, `blocked: needs ${missing.join("; ")}`);
      const lock = await acquireLock(results, job.id, {
        onStale: (why) => log(`breaking a stale lock: ${why}`),
      });
      if ("heldBy" in lock) {
        const h = lock.heldBy;
        if (opts.wait === false) {
          return out("busy", 75, `busy: ${h.host}:${h.pid} runs it since ${h.startedAt}`);
        }
        log(`waiting: ${h.host}:${h.pid} runs it since ${h.startedAt}`);
        await new Promise((r) => setTimeout(r, 5000));
        continue;
      }
      const onTerm = () => {
        log("SIGTERM: stopping (the last checkpoint / finished draws are kept; re-run resumes)");
        writeJsonAtomic(join(dir, `${job.id}.failed.json`), failure(job, "killed by SIGTERM", logPath))
          .finally(() => lock.release()).finally(() => Deno.exit(143));
      };
      Deno.addSignalListener("SIGTERM", onTerm);
      try {
        if (await jobDone(job, results)) {
          return out("already-done", 0, `already in the store: ${job.label}`);
        }
        log(`start ${job.label} (est. ${Math.round(job.cpuSeconds)} CPU-s)`);
        await execute(plan, job, results, log, opts.progressSeconds ?? envSeconds());
        if (!(await jobDone(job, results))) {
          throw new Error(
            `the job ran but its result is not in the store under ${job.id}: the plan is out of date ` +
              `(code, data or backend changed since it was written); write it again with noiselab plan`,
          );
        }
        await Deno.remove(join(dir, `${job.id}.failed.json`)).catch(() => {});
        await writeJsonAtomic(join(dir, `${job.id}.done.json`), {
          id: job.id,
          label: job.label,
          host: hostname(),
          pid: Deno.pid,
          finishedAt: new Date().toISOString(),
          seconds: secs(),
          threads: backendInfo().threads,
        });
        return out("done", 0, `done in ${secs().toFixed(1)} s: ${job.label}`);
      } catch (e) {
        const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
        await writeJsonAtomic(join(dir, `${job.id}.failed.json`), failure(job, msg, logPath));
        return out("failed", 1, `FAILED: ${msg}`);
      } finally {
        Deno.removeSignalListener("SIGTERM", onTerm);
        await lock.release();
      }
    }
  } finally {
    logFile.close();
  }
}

function envSeconds(): number {
  const v = Number(Deno.env.get("NOISELAB_PROGRESS_SECONDS"));
  return Number.isFinite(v) && v > 0 ? v : 60;
}

function failure(job: PlanJob, error: string, log: string) {
  return {
    id: job.id,
    index: job.index,
    label: job.label,
    error,
    host: hostname(),
    pid: Deno.pid,
    at: new Date().toISOString(),
    log,
  };
}

async function execute(
  plan: Plan,
  job: PlanJob,
  results: string,
  log: (s: string) => void,
  progressSeconds: number,
): Promise<void> {
  const p = resolveParams(job.model.notebook, plan.profile, plan.overrides);
  const backend = await initBackend(p.backend);
  if (backend !== plan.backend) {
    throw new NoiselabError(
      `backend: this worker runs ${backend}, the plan's ids are for ${plan.backend} (write the plan on a machine like the workers')`,
      "backend",
    );
  }
  log(`backend ${backend}, ${backendInfo().threads} thread(s), results ${results}`);
  const dataset = await loadConfigDataset(job.model.config);
  const load = async (ref: ModelRef): Promise<TrainedVariant> => {
    const trained = await trainOrLoad(ref.config, { dataset, resultsDir: results, loadOnly: true });
    return {
      ...ref.variant,
      seed: ref.seed,
      trained: trained!,
      bnLayers: trained!.provenance.bnLayers,
      bnSlots: bnSlotCount(ref.variant.model),
    };
  };
  if (job.kind === "train") {
    const ref = job.model;
    const trained = await trainOrLoad(ref.config, {
      dataset,
      resultsDir: results,
      snapshots: ref.snapshots,
      onProgress: plainTrainProgress(log, progressSeconds),
    });
    if (!trained) throw new Error("training stopped early");
    if (trained.id !== job.id) {
      throw new Error(`trained model id ${trained.id} differs from the plan's ${job.id}`);
    }
    log(`model ${trained.id}: clean accuracy ${(100 * trained.cleanAccuracy).toFixed(2)}%`);
    trained.model.dispose();
    return;
  }
  if (job.kind === "sweep") {
    const tv = await load(job.model);
    const snap = job.snapshotStep == null
      ? undefined
      : (await listSnapshots(tv.trained.path)).find((s) => s.step === job.snapshotStep);
    if (job.snapshotStep != null && !snap) {
      throw new Error(`model ${tv.trained.id} has no trajectory snapshot at step ${job.snapshotStep}`);
    }
    const sw = await sweepVariant(p, tv, job.condition!, dataset, { snapshot: snap });
    log(
      `sweep ${
        sw.fromCache ? "loaded" : "computed"
      }: average normalized accuracy ${sw.result.averageNormalizedAccuracy}`,
    );
    tv.trained.model.dispose();
    return;
  }
  // matched: the notebooks' own rule, on the two final sweeps (cache hits)
  const bn = await load(job.model), noBn = await load(job.twin!);
  const pair = {
    bn: await sweepVariant(p, bn, job.condition!, dataset),
    noBn: await sweepVariant(p, noBn, job.condition!, dataset),
  };
  const m = await matchedComparison(p, pair, job.condition!, dataset);
  log(
    `matched: leader ${m.matched.leader}, gap ${(100 * m.endGap).toFixed(2)} → ${
      (100 * m.matchedGap).toFixed(2)
    } points`,
  );
  bn.trained.model.dispose();
  noBn.trained.model.dispose();
}

/** Options of {@link runPool}. */
export interface PoolOptions {
  /** Worker processes at once. */
  parallel: number;
  /** Threads per worker (default: cores / parallel, at least 1). */
  threads?: number;
  results?: string;
  /** One line per started / finished job (default stderr). */
  echo?: (line: string) => void;
  /** Only these job indices (default every job not done). */
  indices?: number[];
}

/**
 * Run every unfinished job of the plan file on this machine: at most `parallel` `noiselab worker`
 * processes at once, each with `NOISELAB_THREADS` = its share of the cores, a job starting once the
 * jobs it depends on are in the store. A failed job's dependants are skipped. Returns the number of
 * failed (or skipped) jobs.
 */
export async function runPool(
  planPath: string,
  plan: Plan,
  opts: PoolOptions,
): Promise<{ failed: number; ran: number; seconds: number }> {
  const t0 = performance.now();
  const results = opts.results ?? resultsDir();
  const cores = navigator.hardwareConcurrency || 1;
  const threads = opts.threads ?? Math.max(1, Math.floor(cores / opts.parallel));
  const echo = opts.echo ?? ((s: string) => console.error(s));
  const finished = new Set<string>();
  const failed = new Set<string>();
  const todo: PlanJob[] = [];
  for (const j of plan.jobs) {
    if (opts.indices && !opts.indices.includes(j.index)) continue;
    if (await jobDone(j, results)) finished.add(j.id);
    else todo.push(j);
  }
  for (const j of plan.jobs) if (!todo.includes(j)) finished.add(j.id);
  echo(
    `pool: ${todo.length} job(s) to run, ${opts.parallel} worker(s) × ${threads} thread(s) (${cores} cores)`,
  );
  const running = new Map<string, Promise<void>>();
  let ran = 0;
  const start = (j: PlanJob) => {
    ran++;
    echo(`pool: start [${j.index}] ${j.label}`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--max-old-space-size=16384",
        join(projectRoot, "lib/cli/worker.ts"),
        "--plan",
        planPath,
        "--index",
        String(j.index),
      ],
      env: { NOISELAB_THREADS: String(threads), NOISELAB_RESULTS_DIR: results },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const t = performance.now();
    running.set(
      j.id,
      child.status.then((st) => {
        running.delete(j.id);
        const s = ((performance.now() - t) / 1000).toFixed(1);
        if (st.code === 0) {
          finished.add(j.id);
          echo(`pool: done  [${j.index}] ${j.label} (${s} s)`);
        } else {
          failed.add(j.id);
          echo(
            `pool: FAILED [${j.index}] ${j.label} (exit ${st.code}; log ${
              join(results, "jobs", j.id + ".log")
            })`,
          );
        }
      }),
    );
  };
  while (todo.length || running.size) {
    // jobs whose dependencies failed can never run
    for (let i = todo.length - 1; i >= 0; i--) {
      if (todo[i].deps.some((d) => failed.has(d))) {
        failed.add(todo[i].id);
        echo(`pool: skip  [${todo[i].index}] ${todo[i].label} (a dependency failed)`);
        todo.splice(i, 1);
      }
    }
    let started = false;
    for (let i = 0; i < todo.length && running.size < opts.parallel; i++) {
      if (todo[i].deps.every((d) => finished.has(d))) {
        start(todo.splice(i, 1)[0]);
        i--;
        started = true;
      }
    }
    if (running.size) await Promise.race(running.values());
    else if (!started && todo.length) {
      for (const j of todo) {
        echo(`pool: skip  [${j.index}] ${j.label} (dependencies not in the plan's reach)`);
      }
      for (const j of todo) failed.add(j.id);
      todo.length = 0;
    }
  }
  return { failed: failed.size, ran, seconds: (performance.now() - t0) / 1000 };
}
