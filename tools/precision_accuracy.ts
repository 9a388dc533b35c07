/**
 * bf16 vs fp32 training accuracy on a profile's model (issue #11): trains the
 * notebook's config once per seed in each precision (lib/train `trainOrLoad`,
 * so stored models are reused) and prints clean accuracies, paired differences
 * and their mean ± standard error. The README's table (quick ResNet-20 + BN,
 * seeds 0-2) came from `deno run -A tools/precision_accuracy.ts --seeds 0,1,2`.
 *
 * Usage: deno run -A tools/precision_accuracy.ts [--notebook 01] [--profile quick]
 *   [--model resnet20] [--bn all|none] [--seeds 0,1,2] [--results DIR]
 * Each model costs what the profile's training does (quick ResNet-20: ~2.5 min fp32 on 2 cores).
 * @module
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/mod.ts";
import {
  type NotebookId,
  type ProfileName,
  profileParams,
  trainConfigFor,
} from "../lib/notebook/profiles.ts";
import { bf16TrainingUnavailable, trainOrLoad } from "../lib/train/mod.ts";
import { cpuName } from "../lib/util/machine.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    notebook: { type: "string", default: "01" },
    profile: { type: "string", default: "quick" },
    model: { type: "string", default: "resnet20" },
    bn: { type: "string", default: "all" },
    seeds: { type: "string", default: "0,1,2" },
    results: { type: "string" },
  },
});
const seeds = a.seeds!.split(",").map(Number);
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
  console.error(`precision_accuracy: --seeds must be integers >= 0, got "${a.seeds}"`);
  Deno.exit(2);
}
if (!["all", "none"].includes(a.bn!)) {
  console.error(`precision_accuracy: --bn must be all or none, got "${a.bn}"`);
  Deno.exit(2);
}
const backend = await initBackend("auto");
const why = bf16TrainingUnavailable();
if (why) {
  console.error(`precision_accuracy: bf16 training unavailable here (${why}); nothing to compare`);
  Deno.exit(1);
}
const p = profileParams(a.notebook as NotebookId, a.profile as ProfileName);
console.log(`CPU ${cpuName()}, backend ${backend}; ${a.profile} ${a.notebook} ${a.model} bn ${a.bn}`);
console.log("| seed | fp32 | bf16 | bf16 − fp32 | seconds fp32 / bf16 |\n| --- | --- | --- | --- | --- |");
const diffs: number[] = [];
for (const seed of seeds) {
  const acc: number[] = [], secs: string[] = [];
  for (const precision of ["fp32", "bf16"] as const) {
    const t = (await trainOrLoad(
      { ...trainConfigFor(p, a.model!, a.bn as "all" | "none", seed), precision },
      { resultsDir: a.results },
    ))!;
    acc.push(t.cleanAccuracy);
    secs.push(
      t.loaded ? `${t.provenance.wallSeconds.toFixed(0)} (stored)` : t.provenance.wallSeconds.toFixed(0),
    );
    t.model.dispose();
  }
  diffs.push(acc[1] - acc[0]);
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(
    `| ${seed} | ${pc(acc[0])} | ${pc(acc[1])} | ${(100 * (acc[1] - acc[0])).toFixed(1)} | ${
      secs.join(" / ")
    } |`,
  );
}
const mean = diffs.reduce((s, d) => s + d, 0) / diffs.length;
const sd = Math.sqrt(diffs.reduce((s, d) => s + (d - mean) ** 2, 0) / Math.max(1, diffs.length - 1));
console.log(
  `mean bf16 − fp32: ${(100 * mean).toFixed(1)} points` +
    (diffs.length > 1
      ? ` ± ${(100 * sd / Math.sqrt(diffs.length)).toFixed(1)} (SE, ${diffs.length} seeds)`
      : ""),
);
