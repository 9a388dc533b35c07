/**
 * Slurm batch scripts for a plan (lib/study/plan.ts): one job array per phase
 * (training; sweeps, `--dependency=afterok` on the training array; the
 * matched-accuracy sweeps, afterok on the sweeps), then one job that executes
 * the notebooks (`reproduce`), which only read the store. Array task k runs
 * the k-th line of the phase's index list (`<phase>.idx`: the plan indices
 * not yet in the store when the scripts were written), so a re-submission
 * runs only what is missing and array ids stay below Slurm's MaxArraySize.
 * @module
 */
import { join, resolve } from "node:path";
import { type JobKind, type Plan, planTotals } from "./plan.ts";
import { projectRoot } from "../util/paths.ts";

/** Options of {@link writeSlurmScripts}. */
export interface SlurmOptions {
  /** The plan file (absolute path goes into the scripts). */
  planPath: string;
  /** Folder for the scripts, index lists and Slurm logs. */
  dir: string;
  /** The shared store (`NOISELAB_RESULTS_DIR` of every job). */
  results: string;
  partition?: string;
  /** Time limit per array task (Slurm syntax); default from the plan's longest job. */
  time?: string;
  /** Time limit of the notebook job (default 2:00:00). */
  notebookTime?: string;
  cpusPerTask: number;
  /** Memory per task, e.g. "8G". */
  mem: string;
  /** Lines run before the worker (module loads, PATH), e.g. "module load deno". */
  setup: string[];
  /** Extra `#SBATCH` lines, e.g. "--account=abc". */
  extra: string[];
  /** The deno executable (default this one). */
  deno?: string;
  /** Max array tasks running at once (`%N`), 0 = no limit. */
  maxRunning?: number;
  /** Also plan every job, not only the unfinished ones. */
  all?: boolean;
  /**
   * Pack consecutive jobs of a phase into one array task while their estimated CPU-seconds add up to at
   * most this (default 900): a worker process starts in seconds, so tiny sweeps share one (0 = one job per task).
   */
  packSeconds?: number;
}

/** What {@link writeSlurmScripts} wrote. */
export interface SlurmScripts {
  dir: string;
  worker: string;
  notebooks: string;
  submit: string;
  /** Plan indices per phase array (empty phases are not submitted), and the array tasks (packs of indices). */
  phases: { kind: JobKind; indices: number[]; tasks: number[][]; list: string }[];
  time: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Slurm time "D-HH:MM:SS" for seconds. */
export function slurmTime(seconds: number): string {
  const s = Math.ceil(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, "0");
  return `${d}-${pad(h)}:${pad(m)}:${pad(s % 60)}`;
}

/**
 * The default time limit of an array task: the plan's longest job or pack (CPU-seconds on the
 * reference machine) spread over the task's CPUs, doubled, plus 15 minutes for start-up and data loading.
 */
export function defaultTime(plan: Plan, cpus: number, packSeconds = 900): string {
  const longest = Math.max(planTotals(plan).longestJobHours * 3600, packSeconds);
  return slurmTime(2 * longest / Math.max(1, cpus) + 900);
}

/** Write the scripts (worker array script, notebook script, index lists, submit.sh). */
export async function writeSlurmScripts(plan: Plan, o: SlurmOptions): Promise<SlurmScripts> {
  const dir = resolve(o.dir);
  await Deno.mkdir(join(dir, "logs"), { recursive: true });
  const planPath = resolve(o.planPath);
  const deno = o.deno ?? Deno.execPath();
  const time = o.time ?? defaultTime(plan, o.cpusPerTask, o.packSeconds ?? 900);
  const head = (name: string, t: string) =>
    [
      "#!/bin/bash",
      `#SBATCH --job-name=${name}`,
      `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
      `#SBATCH --mem=${o.mem}`,
      `#SBATCH --time=${t}`,
      ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
      ...o.extra.map((x) => `#SBATCH ${x}`),
    ].join("\n");
  const env = [
    "set -euo pipefail",
    ...o.setup,
    `cd ${q(projectRoot)}`,
    `export NOISELAB_RESULTS_DIR=${q(resolve(o.results))}`,
    `export NOISELAB_THREADS=\${SLURM_CPUS_PER_TASK:-${o.cpusPerTask}}`,
    `export NOISELAB_PROGRESS_SECONDS=\${NOISELAB_PROGRESS_SECONDS:-60}`,
  ].join("\n");
  const worker = join(dir, "worker.sbatch");
  await Deno.writeTextFile(
    worker,
    `${head("noiselab-worker", time)}
#SBATCH --output=${join(dir, "logs", "%x-%A_%a.out")}
# The jobs of one array task: line SLURM_ARRAY_TASK_ID+1 of the index list given as $1 (plan indices, comma-separated).
${env}
index=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
echo "noiselab worker: plan index $index on $(hostname), $NOISELAB_THREADS thread(s)"
exec ${q(deno)} run -A --v8-flags=--max-old-space-size=16384 lib/cli/worker.ts --plan ${
      q(planPath)
    } --index "$index"
`,
  );
  const params = Object.entries(plan.overrides).flatMap(([k, v]) => ["-p", q(`${k}=${JSON.stringify(v)}`)]);
  if (plan.only) params.push("--only", plan.only.join(","));
  const notebooks = join(dir, "notebooks.sbatch");
  await Deno.writeTextFile(
    notebooks,
    `${head("noiselab-notebooks", o.notebookTime ?? "2:00:00")}
#SBATCH --output=${join(dir, "logs", "%x-%j.out")}
# The notebooks, reading the store the arrays filled (no training, no sweeps left to compute).
${env}
exec ${
      q(deno)
    } run -A --v8-flags=--max-old-space-size=16384 lib/cli/main.ts reproduce --profile ${plan.profile} ${
      params.join(" ")
    } --out "$NOISELAB_RESULTS_DIR/notebooks"
`,
  );
  const phases: SlurmScripts["phases"] = [];
  for (const kind of ["train", "sweep", "matched"] as JobKind[]) {
    const jobs = plan.jobs.filter((j) => j.kind === kind && (o.all || !j.done));
    const tasks: number[][] = [];
    let sum = Infinity;
    for (const j of jobs) {
      if (sum + j.cpuSeconds > (o.packSeconds ?? 900)) {
        tasks.push([]);
        sum = 0;
      }
      tasks[tasks.length - 1].push(j.index);
      sum += j.cpuSeconds;
    }
    const list = join(dir, `${kind}.idx`);
    await Deno.writeTextFile(list, tasks.map((t) => `${t.join(",")}\n`).join(""));
    phases.push({ kind, indices: jobs.map((j) => j.index), tasks, list });
  }
  const throttle = o.maxRunning ? `%${o.maxRunning}` : "";
  const lines = [
    "#!/bin/bash",
    `# Submits the plan ${planPath}: one array per phase, each afterok on the previous, then the notebooks.`,
    "set -euo pipefail",
    `cd ${q(dir)}`,
    'dep=""',
  ];
  for (const ph of phases) {
    if (!ph.indices.length) continue;
    lines.push(
      `jid=$(sbatch --parsable $dep --job-name=noiselab-${ph.kind} --array=0-${
        ph.tasks.length - 1
      }${throttle} ` +
        `worker.sbatch ${q(ph.list)})`,
      `echo "${ph.kind}: job $jid (${ph.indices.length} job(s) in ${ph.tasks.length} task(s))"`,
      'dep="--dependency=afterok:${jid%%;*}"',
    );
  }
  lines.push("jid=$(sbatch --parsable $dep notebooks.sbatch)", 'echo "notebooks: job $jid"');
  const submit = join(dir, "submit.sh");
  await Deno.writeTextFile(submit, lines.join("\n") + "\n");
  await Deno.chmod(submit, 0o755);
  return { dir, worker, notebooks, submit, phases, time };
}
