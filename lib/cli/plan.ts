/**
 * `noiselab plan --profile P [-p name=value ...] [--only 01,03] [--json] [--out plan.json]`: every
 * training and sweep job the notebooks of a profile need (lib/study/plan.ts), with ids, dependencies,
 * estimated CPU-hours and whether the store (`$NOISELAB_RESULTS_DIR`) already holds each.
 * @module
 */
import { buildPlan, type Plan, planTotals } from "../study/plan.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { parseStudyArgs } from "./study_args.ts";

/** The command's name. */
export const name = "plan";
/** One line for `noiselab help`. */
export const summary = "list every training and sweep job of a profile, with cost and store state";
/** Help text. */
export const usage =
  `usage: noiselab plan [--profile smoke|quick|standard|paper] [-p name=value ...] [--only 01,03]
                    [--json] [--out plan.json]
  --profile  parameter profile (default quick); -p overrides a notebook parameter as in reproduce
  --only     plan only these notebooks
  --json     print the plan as JSON on stdout (the input of noiselab worker / slurm)
  --out      also write the plan JSON to this file
The store checked is results/ or $NOISELAB_RESULTS_DIR. Costs are CPU-seconds estimated from the
README's benchmark throughputs (2 threads on an AMD EPYC; lib/study/plan.ts THROUGHPUT).`;

/** The plan as a text table plus totals. */
export function formatPlan(plan: Plan): string {
  const rows = plan.jobs.map((j) => [
    String(j.index),
    j.kind,
    j.id,
    (j.cpuSeconds / 3600).toFixed(j.cpuSeconds < 36 ? 4 : 2),
    j.done ? "done" : "todo",
    j.deps.length ? j.deps.map((d) => plan.jobs.find((x) => x.id === d)?.index ?? "?").join(",") : "-",
    j.notebooks.join(","),
    j.label,
  ]);
  const head = ["#", "kind", "id", "CPU-h", "state", "needs", "notebooks", "job"];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(widths[c]))).join("  ");
  const t = planTotals(plan);
  return [
    line(head),
    ...rows.map(line),
    "",
    `profile ${plan.profile}${
      Object.keys(plan.overrides).length ? ` ${JSON.stringify(plan.overrides)}` : ""
    }, ` +
    `backend ${plan.backend}, numerics v${plan.numerics}, store ${plan.resultsDir}`,
    `${t.jobs} jobs (${t.byKind.train} train, ${t.byKind.sweep} sweep, ${t.byKind.matched} matched-accuracy sweep), ` +
    `${t.done} done; estimated ${t.cpuHours.toFixed(t.cpuHours < 1 ? 3 : 1)} CPU-hours in all, ` +
    `${t.cpuHoursLeft.toFixed(t.cpuHoursLeft < 1 ? 3 : 1)} left; longest job ${
      t.longestJobHours.toFixed(t.longestJobHours < 1 ? 3 : 1)
    } CPU-hours`,
  ].join("\n");
}

/** Run `plan`. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(usage);
    return 0;
  }
  const a = parseStudyArgs("plan", argv, ["profile", "only", "out"], ["json"], usage);
  const plan = await buildPlan({
    profile: a.values.profile ?? "quick",
    overrides: a.params,
    only: a.values.only ? a.values.only.split(",").map((s) => s.trim()).filter(Boolean) : null,
  });
  const json = JSON.stringify(plan, null, 1) + "\n";
  if (a.values.out) await writeFileAtomic(a.values.out, json);
  if (a.flags.has("json")) console.log(json.trimEnd());
  else console.log(formatPlan(plan));
  return 0;
}
