/**
 * The sweep fast paths against the unfused evaluation on stored trained models
 * (README "The sweep fast path"): for each model and target, the same sweep
 * (same seed, so the same noise draws) runs with `fastPath` "off", "fp32" and
 * "bf16" (lib/noise `SweepConfig`), and per path the rows (η × draw) are
 * compared with the unfused ones: how many are bitwise equal in accuracy, the
 * largest |accuracy difference| in points, the clean-accuracy difference in
 * points, the difference of the average normalized accuracy, and the wall time
 * of each sweep. Rows differing by more than 0.5 points are listed by η and draw.
 *
 * The sweeps are called directly (lib/noise `noiseSweep`, `partial: false`):
 * nothing is read from or written to the notebook sweep cache (results/sweeps),
 * and no partial file is written. The model, its data and its test subset are
 * loaded as `noiselab noise` does (lib/train `loadStoredModel`, lib/noise
 * `resolveFastPath` / `sweepData` / `sweepOptionsFor`; the data copy is checked
 * against the model's `dataId`).
 *
 * Usage: deno run -A tools/fastpath_rows.ts [--models id1,id2,...] [--test-size 1000]
 *   [--etas 0.02,0.05,0.1,0.2] [--draws 3] [--targets kernels,all] [--seed 0]
 *   [--backend auto] [--data-dir DIR] [--no-write]
 * Default models: notebook 01's quick profile (ResNet-20 and VGG-11, with and without BN, seed 0).
 * Writes results/bench/fastpath-rows-<timestamp>.md (the table, with the command line and CPU).
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { backendInfo, type BackendName, initBackend } from "../lib/backend/mod.ts";
import type { Dataset } from "../lib/data/mod.ts";
import {
  type FastPath,
  NOISE_TARGETS,
  noiseSweep,
  type NoiseTarget,
  resolveFastPath,
  resolveSweepConfig,
  sweepData,
  sweepOptionsFor,
  type SweepResult,
} from "../lib/noise/mod.ts";
import { loadConfigDataset, loadStoredModel } from "../lib/train/mod.ts";
import { cpuName } from "../lib/util/machine.ts";
import { NoiselabError, resultsDir, writeFileAtomic } from "../lib/util/mod.ts";

/** Notebook 01, quick profile, seed 0 (results/notebooks/01-bn-vs-no-bn.ipynb): R20+BN, R20, VGG11+BN, VGG11. */
const QUICK_01_MODELS = ["854c7d607c2c", "79a6043151a7", "f89255fe0dd5", "479e8dcdb4dd"];
/** A row differing from the unfused one by more than this (points) is listed. */
const LIST_ABOVE_POINTS = 0.5;
const PATHS: readonly FastPath[] = ["off", "fp32", "bf16"];

const USAGE = `usage: deno run -A tools/fastpath_rows.ts [--models id1,id2,...] [--test-size 1000]
  [--etas 0.02,0.05,0.1,0.2] [--draws 3] [--targets kernels,all] [--seed 0]
  [--backend auto|onednn|wasm|cpu] [--data-dir DIR] [--no-write]
Compares the sweep fast paths (fp32, bf16) with the unfused sweep row by row on stored models
(default: ${QUICK_01_MODELS.join(",")}, notebook 01 quick) and writes
results/bench/fastpath-rows-<timestamp>.md.`;

function fail(msg: string): never {
  console.error(`fastpath_rows: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    models: { type: "string", default: QUICK_01_MODELS.join(",") },
    "test-size": { type: "string", default: "1000" },
    etas: { type: "string", default: "0.02,0.05,0.1,0.2" },
    draws: { type: "string", default: "3" },
    targets: { type: "string", default: "kernels,all" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "auto" },
    "data-dir": { type: "string" },
    "no-write": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (a.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const modelIds = list(a.models!);
if (!modelIds.length) fail("--models: expected at least one model id");
const targets = list(a.targets!) as NoiseTarget[];
for (const t of targets) {
  if (!(NOISE_TARGETS as readonly string[]).includes(t)) {
    fail(`--targets: unknown target "${t}" (use ${NOISE_TARGETS.join(", ")})`);
  }
}
const base = {
  etas: list(a.etas!).map(Number),
  draws: Number(a.draws),
  seed: Number(a.seed),
  testSize: Number(a["test-size"]),
};
// every config is validated before any work (a NoiselabError names the field)
try {
  for (const t of targets) for (const p of PATHS) resolveSweepConfig({ ...base, targets: [t], fastPath: p });
} catch (e) {
  if (e instanceof NoiselabError) fail(e.message);
  throw e;
}

const started = new Date();
const backendName = await initBackend(a.backend as BackendName | "auto");
const be = backendInfo();
const cpu = cpuName();
// the path that actually runs for "bf16" (fp32 where the engine cannot: lib/noise resolveFastPath)
const bf16Runs = resolveFastPath(resolveSweepConfig({ ...base, fastPath: "bf16" })).fastPath;
const command = `deno run -A tools/fastpath_rows.ts ${Deno.args.join(" ")}`.trimEnd();
console.error(`fastpath_rows: CPU ${cpu}; backend ${be.detail}; bf16 runs as ${bf16Runs}`);

interface Run {
  result: SweepResult;
  seconds: number;
}
interface Line {
  modelId: string;
  arch: string;
  bn: string;
  target: string;
  runs: Record<FastPath, Run>;
}

const datasets = new Map<string, Dataset>();
const lines: Line[] = [];
const t0 = performance.now();
for (const id of modelIds) {
  const stored = await loadStoredModel(id);
  try {
    const cfg = stored.meta.config;
    const prov = stored.meta.provenance;
    const dsKey = `${cfg.dataset}:${cfg.source}`;
    let ds = datasets.get(dsKey);
    if (!ds) {
      ds = await loadConfigDataset(cfg, { dataDir: a["data-dir"] });
      datasets.set(dsKey, ds);
    }
    if (ds.dataId !== prov.dataId) {
      throw new NoiselabError(
        `data: model ${id} was trained on data ${prov.dataId} but the data folder now holds ${ds.dataId}`,
        "data",
      );
    }
    const modelData = { config: cfg, normalization: stored.meta.normalization };
    for (const target of targets) {
      const runs = {} as Record<FastPath, Run>;
      for (const path of PATHS) {
        const config = resolveFastPath(resolveSweepConfig({ ...base, targets: [target], fastPath: path }));
        const { test } = sweepData(config, ds, modelData);
        const t = performance.now();
        const result = await noiseSweep(stored.model, test, {
          ...sweepOptionsFor(config, { modelId: stored.id }),
          partial: false,
        });
        const seconds = (performance.now() - t) / 1000;
        runs[path] = { result, seconds };
        console.error(
          `fastpath_rows: ${id} ${cfg.model} bn ${cfg.bn} ${target} ${path}${
            config.fastPath !== path ? ` (ran ${config.fastPath})` : ""
          }: clean ${(100 * result.cleanAccuracy).toFixed(1)}%, ${seconds.toFixed(1)} s`,
        );
      }
      lines.push({ modelId: id, arch: cfg.model, bn: String(cfg.bn), target, runs });
    }
  } finally {
    stored.model.dispose();
  }
}
const totalSeconds = (performance.now() - t0) / 1000;

/** Row-by-row comparison of a fast-path sweep with the unfused one. */
function compare(off: SweepResult, fast: SweepResult) {
  if (off.rows.length !== fast.rows.length) throw new Error("the sweeps have different numbers of rows");
  let equal = 0, maxDiff = 0;
  const far: string[] = [];
  off.rows.forEach((r, i) => {
    const f = fast.rows[i];
    if (r.eta !== f.eta || r.draw !== f.draw) throw new Error(`row ${i}: η/draw differ`);
    if (Object.is(r.accuracy, f.accuracy)) equal++;
    const d = 100 * Math.abs(f.accuracy - r.accuracy);
    maxDiff = Math.max(maxDiff, d);
    if (d > LIST_ABOVE_POINTS) {
      far.push(
        `η ${r.eta} draw ${r.draw}: ${(100 * r.accuracy).toFixed(1)}% → ${(100 * f.accuracy).toFixed(1)}% ` +
          `(non-finite ${(100 * r.nonFiniteShare).toFixed(1)}% → ${(100 * f.nonFiniteShare).toFixed(1)}%)`,
      );
    }
  });
  return {
    equal,
    n: off.rows.length,
    maxDiff,
    cleanDiff: 100 * (fast.cleanAccuracy - off.cleanAccuracy),
    anaDiff: fast.averageNormalizedAccuracy - off.averageNormalizedAccuracy,
    far,
  };
}

const name = (arch: string) => arch === "resnet20" ? "ResNet-20" : arch === "vgg11" ? "VGG-11" : arch;
const bnText = (bn: string) => bn === "none" ? "no" : bn === "all" ? "yes" : bn;
const signed = (x: number, digits: number) =>
  x === 0 ? (0).toFixed(digits) : (x > 0 ? "+" : "−") + Math.abs(x).toFixed(digits);
const pathLabel = (p: FastPath) => p === "bf16" && bf16Runs !== "bf16" ? `bf16 (ran ${bf16Runs})` : p;

const table = [
  "| model | arch | BN | target | path | rows bitwise equal | max \\|Δacc\\| (pts) | Δclean (pts) | ΔANA | " +
  "clean | ANA | time (s) | speed-up |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
];
const farLines: string[] = [];
const totals: Record<
  string,
  { equal: number; n: number; maxDiff: number; maxClean: number; maxAna: number }
> = {};
const pathSeconds: Record<string, number> = { off: 0, fp32: 0, bf16: 0 };
for (const l of lines) {
  const off = l.runs.off;
  for (const p of PATHS) {
    const run = l.runs[p];
    pathSeconds[p] += run.seconds;
    const lead = `| ${l.modelId} | ${name(l.arch)} | ${bnText(l.bn)} | ${l.target} | ${pathLabel(p)} |`;
    const tail = `${(100 * run.result.cleanAccuracy).toFixed(1)}% | ${
      run.result.averageNormalizedAccuracy.toFixed(4)
    } | ${run.seconds.toFixed(1)} | ${
      p === "off" ? "1.00x" : `${(off.seconds / run.seconds).toFixed(2)}x`
    } |`;
    if (p === "off") {
      table.push(`${lead} (reference) | | | | ${tail}`);
      continue;
    }
    const c = compare(off.result, run.result);
    const t = totals[p] ??= { equal: 0, n: 0, maxDiff: 0, maxClean: 0, maxAna: 0 };
    t.equal += c.equal;
    t.n += c.n;
    t.maxDiff = Math.max(t.maxDiff, c.maxDiff);
    t.maxClean = Math.max(t.maxClean, Math.abs(c.cleanDiff));
    t.maxAna = Math.max(t.maxAna, Math.abs(c.anaDiff));
    table.push(
      `${lead} ${c.equal}/${c.n} | ${c.maxDiff.toFixed(1)} | ${signed(c.cleanDiff, 1)} | ${
        signed(c.anaDiff, 4)
      } | ${tail}`,
    );
    for (const f of c.far) {
      farLines.push(`- ${l.modelId} (${name(l.arch)}, BN ${bnText(l.bn)}), ${l.target}, ${p}: ${f}`);
    }
  }
}

const nImages = lines[0]?.runs.off.result.provenance.images ?? 0;
const out = [
  `# Sweep fast paths vs the unfused sweep, row by row ${started.toISOString()}`,
  "",
  `Command: ${command}`,
  `CPU: ${cpu}`,
  `Backend: ${backendName} (${be.detail}), ${be.threads} threads`,
  `Sweeps: η ${base.etas.join(", ")} × ${base.draws} draws, seed ${base.seed}, ${nImages} test images ` +
  `(${lines[0]?.runs.off.result.provenance.data ?? "-"}), additive-std, argmax-numpy, batch 500; ` +
  `each sweep once per path (off, fp32, bf16 in that order), lib/noise noiseSweep with partial: false ` +
  `(no sweep cache, no partial file).`,
  bf16Runs === "bf16"
    ? 'bf16: the engine\'s bf16 native plans (fastPath "bf16") ran.'
    : `bf16: NOT available here (backend or CPU): the bf16 column ran ${bf16Runs}.`,
  "",
  'Δ = path − off; "rows bitwise equal": rows (η × draw) whose accuracy equals the unfused one exactly; ' +
  "ANA = average normalized accuracy (mean over η > 0); speed-up = off time / path time of that sweep.",
  "",
  ...table,
  "",
  "Totals:",
  ...Object.entries(totals).map(([p, t]) =>
    `- ${pathLabel(p as FastPath)}: ${t.equal}/${t.n} rows bitwise equal, max |Δacc| ${
      t.maxDiff.toFixed(1)
    } points, max |Δclean| ${t.maxClean.toFixed(1)} points, max |ΔANA| ${t.maxAna.toFixed(4)}`
  ),
  `- wall time of all sweeps: off ${pathSeconds.off.toFixed(1)} s, fp32 ${pathSeconds.fp32.toFixed(1)} s ` +
  `(${(pathSeconds.off / pathSeconds.fp32).toFixed(2)}x), bf16 ${pathSeconds.bf16.toFixed(1)} s ` +
  `(${(pathSeconds.off / pathSeconds.bf16).toFixed(2)}x); whole run ${totalSeconds.toFixed(0)} s ` +
  "(model and data loading included)",
  "",
  `Rows differing from the unfused row by more than ${LIST_ABOVE_POINTS} points:`,
  ...(farLines.length ? farLines : ["- none"]),
].join("\n") + "\n";

console.log(out);
if (!a["no-write"]) {
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const file = join(resultsDir(), "bench", `fastpath-rows-${stamp}.md`);
  await writeFileAtomic(file, out);
  console.error(`fastpath_rows: wrote ${file}`);
}
Deno.exit(0);
