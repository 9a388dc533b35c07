/**
 * `noiselab worker --plan plan.json --index I` runs one job of a plan into the store (lib/study/worker.ts);
 * `noiselab worker --plan plan.json --parallel N` runs every unfinished job on this machine with N
 * worker processes (NOISELAB_THREADS = cores / N each).
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { readPlan } from "../study/plan.ts";
import { runJob, runPool } from "../study/worker.ts";
import { parseStudyArgs, positiveInt } from "./study_args.ts";

/** The command's name. */
export const name = "worker";
/** One line for `noiselab help`. */
export const summary = "run one job of a plan (--index) or the whole plan on a local pool (--parallel N)";
/** Help text. */
export const usage =
  `usage: noiselab worker --plan plan.json (--index I [--no-wait] | --parallel N [--threads T])
  --index     run job I of the plan, or jobs I,J,K one after the other (resumes from checkpoints;
              exit 0 when done or already done,
              1 failed (see <results>/jobs/<id>.log and .failed.json), 3 a dependency is missing,
              75 busy with --no-wait)
  --no-wait   when another live worker holds the job's lock, exit 75 instead of waiting for it
  --parallel  run every unfinished job with N worker processes at once, dependencies first
  --threads   threads per worker with --parallel (default: cores / N, at least 1)
The store is results/ or $NOISELAB_RESULTS_DIR; progress lines every $NOISELAB_PROGRESS_SECONDS (60).`;

/** Run `worker`. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(usage);
    return 0;
  }
  const a = parseStudyArgs("worker", argv, ["plan", "index", "parallel", "threads"], ["no-wait"], usage);
  if (!a.values.plan) throw new NoiselabError(`worker: --plan is required\n${usage}`, "--plan");
  const plan = await readPlan(a.values.plan);
  if (a.values.parallel !== undefined) {
    if (a.values.index !== undefined) {
      throw new NoiselabError("worker: give --index or --parallel, not both", "--index");
    }
    const parallel = positiveInt("worker", "parallel", a.values.parallel);
    const threads = a.values.threads !== undefined
      ? positiveInt("worker", "threads", a.values.threads)
      : undefined;
    const r = await runPool(a.values.plan, plan, { parallel, threads });
    console.error(`pool: ${r.ran} job(s) run in ${r.seconds.toFixed(1)} s, ${r.failed} failed or skipped`);
    return r.failed ? 1 : 0;
  }
  if (a.values.index === undefined) {
    throw new NoiselabError(`worker: --index or --parallel is required\n${usage}`, "--index");
  }
  const indices = a.values.index.split(",").map((x) => Number(x.trim()));
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= plan.jobs.length) {
      throw new NoiselabError(
        `worker: --index must be 0..${plan.jobs.length - 1} (or a comma list), got "${a.values.index}"`,
        "--index",
      );
    }
  }
  // several jobs (a packed Slurm array task) run one after the other in this process; the worst exit code wins
  let code = 0;
  for (const index of indices) {
    const r = await runJob(plan, index, { wait: !a.flags.has("no-wait") });
    code = Math.max(code, r.exitCode);
  }
  return code;
}

// `deno run -A lib/cli/worker.ts ...` = `noiselab worker ...`: the entry the local pool and the Slurm
// batch scripts start (it loads only what a worker needs).
if (import.meta.main) {
  let code: number;
  try {
    code = await run(Deno.args);
  } catch (e) {
    console.error(`noiselab worker: ${e instanceof NoiselabError ? e.message : (e as Error)?.stack ?? e}`);
    code = e instanceof NoiselabError ? 2 : 1;
  }
  Deno.exit(code);
}
