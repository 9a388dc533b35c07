/**
 * `noiselab slurm --plan plan.json [--dir D] [--submit] [--partition P] [--time T] [--cpus-per-task C]
 * [--mem M] [--setup "line"]...`: write (and with --submit, submit) the Slurm batch scripts of a plan
 * (lib/study/slurm.ts): training array, sweep array afterok on it, matched-accuracy array, notebooks.
 * @module
 */
import { join, resolve } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { resultsDir } from "../util/paths.ts";
import { readPlan, refreshDone } from "../study/plan.ts";
import { writeSlurmScripts } from "../study/slurm.ts";
import { positiveInt } from "./study_args.ts";

/** The command's name. */
export const name = "slurm";
/** One line for `noiselab help`. */
export const summary = "write (--submit: submit) Slurm job arrays for a plan, then the notebook job";
/** Help text. */
export const usage = `usage: noiselab slurm --plan plan.json [--dir DIR] [--submit] [--partition P] [--time T]
                     [--cpus-per-task C] [--mem M] [--setup "line"]... [--sbatch "--flag"]...
                     [--max-running N] [--notebook-time T] [--pack-seconds S] [--all]
  --dir            where scripts, index lists and logs go (default <plan dir>/slurm)
  --submit         run the written submit.sh (sbatch must be on PATH)
  --partition      Slurm partition (default: the cluster's default)
  --time           time limit per array task (default: 2 x the plan's longest job / C + 15 min)
  --cpus-per-task  CPUs per worker, also its NOISELAB_THREADS (default 4)
  --mem            memory per worker (default 16G)
  --setup          a shell line run before each worker (repeatable), e.g. "module load deno"
  --sbatch         an extra #SBATCH line (repeatable), e.g. "--account=abc"
  --max-running    at most N tasks of an array at once
  --pack-seconds   pack consecutive jobs into one array task up to this many estimated CPU-seconds
                   (default 900; 0: one job per task): tiny sweeps share a worker process
  --all            include jobs the store already holds (they exit at once)
The store is $NOISELAB_RESULTS_DIR (or results/) at the time of this command, written into the
scripts: put it on storage every node sees. Re-submitting runs only what is missing.`;

/** Run `slurm`. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(usage);
    return 0;
  }
  const values: Record<string, string> = {};
  const setup: string[] = [], extra: string[] = [];
  let submit = false, all = false;
  const valued = [
    "plan",
    "dir",
    "partition",
    "time",
    "cpus-per-task",
    "mem",
    "max-running",
    "notebook-time",
    "pack-seconds",
  ];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = (eq > 0 ? a.slice(0, eq) : a).slice(2);
    const value = () => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new NoiselabError(`slurm: --${flag} needs a value\n${usage}`, `--${flag}`);
      return v;
    };
    if (!a.startsWith("--")) throw new NoiselabError(`slurm: unknown argument "${a}"\n${usage}`, a);
    if (flag === "submit") submit = true;
    else if (flag === "all") all = true;
    else if (flag === "setup") setup.push(value());
    else if (flag === "sbatch") extra.push(value());
    else if (valued.includes(flag)) values[flag] = value();
    else throw new NoiselabError(`slurm: unknown argument "${a}"\n${usage}`, a);
  }
  if (!values.plan) throw new NoiselabError(`slurm: --plan is required\n${usage}`, "--plan");
  const cpus = positiveInt("slurm", "cpus-per-task", values["cpus-per-task"] ?? "4");
  const maxRunning = values["max-running"] ? positiveInt("slurm", "max-running", values["max-running"]) : 0;
  for (const k of ["time", "notebook-time"]) {
    if (values[k] && !/^(\d+-)?\d+(:\d+){0,2}$/.test(values[k])) {
      throw new NoiselabError(
        `slurm: --${k} expects a Slurm time (e.g. 12:00:00 or 2-00:00:00), got "${values[k]}"`,
        `--${k}`,
      );
    }
  }
  if (values.mem && !/^\d+[KMGT]?$/.test(values.mem)) {
    throw new NoiselabError(`slurm: --mem expects e.g. 16G, got "${values.mem}"`, "--mem");
  }
  const pack = values["pack-seconds"] ?? "900";
  if (!/^\d+(\.\d+)?$/.test(pack)) {
    throw new NoiselabError(`slurm: --pack-seconds expects seconds >= 0, got "${pack}"`, "--pack-seconds");
  }
  const plan = await readPlan(values.plan);
  const results = resultsDir();
  await refreshDone(plan, results);
  const s = await writeSlurmScripts(plan, {
    planPath: values.plan,
    dir: values.dir ?? join(resolve(values.plan, ".."), "slurm"),
    results,
    partition: values.partition,
    time: values.time,
    notebookTime: values["notebook-time"],
    cpusPerTask: cpus,
    mem: values.mem ?? "16G",
    setup,
    extra,
    maxRunning,
    all,
    packSeconds: Number(pack),
  });
  for (const p of s.phases) {
    console.error(`${p.kind}: ${p.indices.length} job(s) in ${p.tasks.length} array task(s) (${p.list})`);
  }
  console.error(`scripts in ${s.dir} (time limit per task ${s.time}; store ${results})`);
  if (!submit) {
    console.log(s.submit);
    return 0;
  }
  const out = await new Deno.Command("bash", { args: [s.submit], stdout: "piped", stderr: "inherit" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  console.log(text.trimEnd());
  return out.code === 0 ? 0 : 1;
}
