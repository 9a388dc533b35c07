/**
 * Training / inference throughput of noiselab's compute backend vs PyTorch on
 * the same CPU (`deno task bench`).
 *
 * For each model and BN setting it alternates the two sides — one noiselab
 * measurement, then one PyTorch measurement (tools/bench_torch.py, kept running
 * as a subprocess) — `--reps` times, and reports medians and the ratio
 * noiselab / PyTorch. Alternating keeps the comparison fair when other
 * processes share the cores (their load hits both sides alike).
 *
 * Train: images/s of full training steps at batch 128 on random 32x32x3 inputs
 * (forward in training mode, cross-entropy, gradients, SGD momentum update:
 * lib/train's `trainStep`, the step its training loop runs). Infer: images/s of batch-500 inference.
 *
 * With `--torch-settings` the engine side also measures bf16 (lib/backend/engine
 * `setConvPrecision`): inference with bf16 forward convolutions, and training
 * with the forward and both backward convolutions in bf16 (scope "training";
 * fp32 master weights, optimizer, BN and loss) — PyTorch's counterpart is its
 * `torch.autocast("cpu", dtype=torch.bfloat16)` settings. It also measures
 * inference through the sweep fast path (lib/models `compileFusedInference`, BN
 * folded, conv + bias + ReLU fused, the whole pass one native plan of the shim),
 * in fp32 and in bf16 (bf16 activations between layers).
 *
 * % of peak: the report starts with the CPU (`cpuName()`, and whether
 * /proc/cpuinfo lists avx512_bf16 / AMX) and its peak measured at the
 * benchmark's thread count (the engine shim's `nl_peak_gflops`: register-resident
 * fp32 FMA and bf16 dot-product loops; AMX tiles are not measured), and a table
 * gives every side's images/s x FLOPs per image (Conv2D + Dense of the tfjs model,
 * lib/models `modelFlops`; a training step counts 3x forward: forward, backward
 * data, backward weights) as a share of that peak — fp32 sides against the fp32
 * peak, bf16 ones against the bf16 peak.
 *
 * Sweep (`--sweep`, noiselab side only): images/s over whole noise sweeps (lib/noise
 * `noiseSweep`, noise drawing, weight restore and the clean evaluation included) of
 * the unfused evaluation and the fused fast path (`fastPath: true`: BN folded after
 * the noise, conv + bias + ReLU fused, one native plan per draw on the engine) in
 * fp32 and with bf16 activations and convolutions (`fastPath: "bf16"`), alternating, on `--sweep-images` random
 * images, noise on every tensor (targets "all"), `--steps` draws at each of 2 levels.
 *
 * Usage: deno task bench [--model resnet20,resnet44,vgg16|all] [--bn true|false|both]
 *   [--reps 3] [--steps 5] [--infer-batches 2] [--side both|noiselab|pytorch]
 *   [--backend auto|onednn|wasm|cpu] [--torch-channels-last] [--profile] [--json] [--no-write]
 *   [--torch-settings all|nchw,channels_last,nchw-bf16,channels_last-bf16] (PyTorch sides alternated in each round;
 *   "-bf16": torch.autocast("cpu", dtype=torch.bfloat16); the engine also runs bf16 training and inference;
 *   a second table compares with the fastest)
 *   [--sweep [--sweep-images 1000]]
 * Output: tables (or one JSON object per line with --json, the first a header with the
 * CPU, the measured peaks and the FLOPs per image); the run is saved to
 * results/bench/<timestamp>.jsonl (the same lines) and .md unless --no-write.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { backendInfo, initBackend } from "../lib/backend/mod.ts";
import {
  engineStats,
  engineThreads,
  loadNative,
  measurePeakGflops,
  type PeakGflops,
  setConvPrecision,
  setEngineProfiling,
} from "../lib/backend/engine/mod.ts";
import { nativeLoadError } from "../lib/backend/engine/ffi.ts";
import { withLayerFusion } from "../lib/backend/engine/grads.ts";
import { buildModel, modelFlops, parseModelName } from "../lib/models/mod.ts";
import { compileFusedInference } from "../lib/models/fused.ts";
import { noiseSweep } from "../lib/noise/sweep.ts";
import { DEFAULT_TRAIN_CONFIG, trainStep, type TrainStepState, trainStepState } from "../lib/train/mod.ts";
import { NoiselabError, projectRoot, writeFileAtomic } from "../lib/util/mod.ts";
import { cpuName } from "../lib/util/machine.ts";
import { FP32_GOAL_RATIO, GOAL_RATIO, judgeGoal, median, taskMedians } from "./bench_goal.ts";

interface Row {
  model: string;
  bn: boolean;
  side: "noiselab" | "pytorch";
  /** PyTorch side only: nchw | channels_last, with "-bf16" under torch.autocast("cpu", bfloat16). */
  setting?: string;
  /** Engine side with --torch-settings: inference with bf16 forward convolutions (setConvPrecision), if the CPU has bf16. */
  infer_bf16_img_s?: number;
  /** Engine side with --torch-settings: training with forward and backward convolutions in bf16 (scope "training"). */
  train_bf16_img_s?: number;
  /**
   * Engine side with --torch-settings: inference through the sweep fast path (lib/models
   * `compileFusedInference`: BN folded, conv + bias + ReLU fused, one native plan per model), fp32.
   */
  infer_fused_img_s?: number;
  /** The same with a bf16 native plan (bf16 activations and convolutions), if the CPU has bf16. */
  infer_fused_bf16_img_s?: number;
  train_img_s: number;
  infer_img_s: number;
  backend: string;
  threads: number;
  rep: number;
}

const USAGE = `usage: deno task bench [--model resnet20,resnet44,vgg16|all] [--bn true|false|both]
  [--reps 3] [--steps 5] [--infer-batches 2] [--side both|noiselab|pytorch]
  [--backend auto|onednn|wasm|cpu] [--torch-channels-last] [--torch-settings all|nchw,channels_last,nchw-bf16,channels_last-bf16]
      (PyTorch settings alternated each round; the engine then also measures bf16 training and inference)
  [--profile] [--json] [--no-write] [--sweep [--sweep-images 1000]]   (sweep throughput: unfused vs fused fast path, noiselab side only;
      with --sweep, --steps is the number of noise draws per level, of 2 levels)`;
if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(USAGE);
  Deno.exit(0);
}
// Bad flags end with one line naming the flag (exit 2), not a stack trace. (The module uses
// top-level await, so errors thrown while parsing arrive as unhandled rejections.)
function badInput(err: { name?: string; code?: string; message?: string } | undefined): boolean {
  if (err?.name === "NoiselabError" || String(err?.code ?? "").startsWith("ERR_PARSE_ARGS")) {
    console.error(`bench: ${err?.message}\n${USAGE}`);
    Deno.exit(2);
  }
  return false;
}
globalThis.addEventListener("unhandledrejection", (e) => {
  if (badInput(e.reason)) e.preventDefault();
});
globalThis.addEventListener("error", (e) => {
  if (badInput(e.error)) e.preventDefault();
});

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "resnet20" },
    bn: { type: "string", default: "both" },
    reps: { type: "string", default: "3" },
    steps: { type: "string", default: "5" },
    "infer-batches": { type: "string", default: "2" },
    side: { type: "string", default: "both" },
    backend: { type: "string", default: "auto" },
    "torch-channels-last": { type: "boolean", default: false },
    "torch-settings": { type: "string", default: "" },
    profile: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    sweep: { type: "boolean", default: false },
    "sweep-images": { type: "string", default: "1000" },
  },
});

function posInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new NoiselabError(`--${name} must be a positive integer, got "${v}"`, name);
  }
  return n;
}
const reps = posInt("reps", args.reps);
const steps = posInt("steps", args.steps);
const inferBatches = posInt("infer-batches", args["infer-batches"]);
const models = args.model === "all"
  ? ["resnet20", "resnet44", "vgg16"]
  : args.model!.split(",").map((s) => s.trim());
for (const m of models) parseModelName(m); // a bad name ends here, before the peak is measured
if (!["true", "false", "both"].includes(args.bn!)) {
  throw new NoiselabError(`--bn must be true, false or both`, "bn");
}
const bns = args.bn === "both" ? [true, false] : [args.bn === "true"];
const TORCH_SETTINGS = ["nchw", "channels_last", "nchw-bf16", "channels_last-bf16"];
const torchSettings = args["torch-settings"] === "all"
  ? TORCH_SETTINGS
  : args["torch-settings"]
  ? args["torch-settings"].split(",").map((x) => x.trim())
  : [args["torch-channels-last"] ? "channels_last" : "nchw"];
for (const t of torchSettings) {
  if (!TORCH_SETTINGS.includes(t)) {
    throw new NoiselabError(
      `--torch-settings: unknown ${JSON.stringify(t)}; use all or ${TORCH_SETTINGS.join(",")}`,
      "torch-settings",
    );
  }
}
if (!["both", "noiselab", "pytorch"].includes(args.side!)) {
  throw new NoiselabError(`--side must be both, noiselab or pytorch`, "side");
}
const BATCH = 128, INFER_BATCH = 500;

const log = (s: string) => console.error(s);

// ------------------------------------------------------------------ noiselab side
let backendName = "";
if (args.side !== "pytorch") {
  await initBackend(args.backend as never);
  const bi = backendInfo();
  backendName = `${bi.name} (${bi.detail}), ${bi.threads} threads`;
  log(`noiselab side: ${backendName}`);
}

// ------------------------------------------------------------------ sweep throughput (--sweep)
if (args.sweep) {
  const nImages = posInt("sweep-images", args["sweep-images"]);
  const draws = steps;
  const started = new Date();
  const x = randn(nImages * 32 * 32 * 3, 3);
  const labels = new Uint8Array(nImages).map((_, i) => i % 10);
  const sweepRows: { model: string; bn: boolean; path: string; img_s: number; rep: number }[] = [];
  for (const name of models) {
    for (const bn of bns) {
      const model = buildModel(name, { bn: bn ? "all" : "none", seed: 0 });
      const opts = {
        etas: [0.02, 0.1],
        draws,
        seed: 0,
        modelId: `bench-${name}`,
        spec: { targets: ["all" as const] },
        partial: false as const,
        batchSize: INFER_BATCH,
      };
      // warm-up: primitive creation (per batch shape) for every path
      const w = Math.min(nImages, INFER_BATCH);
      for (const fastPath of [false, true, "bf16"] as const) {
        await noiseSweep(model, { x: x.subarray(0, 32 * 32 * 3 * w), labels: labels.subarray(0, w) }, {
          ...opts,
          etas: [0.1],
          draws: 1,
          fastPath,
        });
      }
      for (let rep = 1; rep <= reps; rep++) {
        for (const fast of [false, true, "bf16"] as const) {
          const t0 = performance.now();
          const r = await noiseSweep(model, { x, labels }, { ...opts, fastPath: fast });
          const img_s = ((r.rows.length + 1) * nImages) / ((performance.now() - t0) / 1000);
          const row = {
            model: name,
            bn,
            path: fast === "bf16" ? "fused-bf16" : fast ? "fused" : "unfused",
            img_s,
            rep,
          };
          sweepRows.push(row);
          if (args.json) console.log(JSON.stringify(row));
          else log(`  sweep ${name} bn=${bn} ${row.path.padEnd(7)} rep ${rep}: ${img_s.toFixed(1)} img/s`);
        }
      }
      model.dispose();
    }
  }
  const lines = [
    `# Sweep benchmark ${started.toISOString()}`,
    "",
    `Command: deno task bench ${Deno.args.join(" ")}`,
    `noiselab side: ${backendName}; ${nImages} images, 2 levels x ${draws} draws + the clean evaluation per sweep, ` +
    `targets all, batch ${INFER_BATCH}; ${reps} alternating reps; medians in images/s over whole sweeps.`,
    "",
    '| model | bn | unfused sweep | fused fp32 (fastPath) | ratio | fused bf16 (fastPath "bf16") | ratio |',
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const name of models) {
    for (const bn of bns) {
      const pick = (path: string) =>
        median(
          sweepRows.filter((r) => r.model === name && r.bn === bn && r.path === path).map((r) => r.img_s),
        );
      const u = pick("unfused"), f = pick("fused"), h = pick("fused-bf16");
      lines.push(
        `| ${name} | ${bn} | ${u.toFixed(1)} | ${f.toFixed(1)} | ${(f / u).toFixed(2)}x | ${h.toFixed(1)} | ${
          (h / u).toFixed(2)
        }x |`,
      );
    }
  }
  const md = lines.join("\n") + "\n";
  if (!args.json) console.log(md);
  if (!args["no-write"]) {
    const dir = join(projectRoot, "results", "bench");
    await Deno.mkdir(dir, { recursive: true });
    const stamp = "sweep-" + started.toISOString().replace(/[:.]/g, "-");
    await writeFileAtomic(
      join(dir, `${stamp}.jsonl`),
      sweepRows.map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    await writeFileAtomic(join(dir, `${stamp}.md`), md);
    log(`[bench] wrote results/bench/${stamp}.{jsonl,md}`);
  }
  Deno.exit(0);
}

interface Prepared {
  model: tfl.LayersModel;
  step: TrainStepState;
  x: Float32Array;
  y: Int32Array;
  xi: tf.Tensor4D;
  warmed: boolean;
  /** bf16 training steps ran once (their primitives are created on the first step). */
  warmedBf16: boolean;
}
const prepared = new Map<string, Prepared>();

function randn(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 3.4; // uniform with unit variance; the values do not matter for speed
  }
  return a;
}

function prepare(name: string, bn: boolean): Prepared {
  const key = `${name}:${bn}`;
  let p = prepared.get(key);
  if (!p) {
    const model = buildModel(name, { bn: bn ? "all" : "none", seed: 0 });
    const step = trainStepState(model, {
      ...DEFAULT_TRAIN_CONFIG,
      optimizer: "sgd",
      momentum: 0.9,
      nesterov: false,
    });
    const y = new Int32Array(BATCH);
    for (let i = 0; i < BATCH; i++) y[i] = i % 10;
    p = {
      model,
      step,
      x: randn(BATCH * 32 * 32 * 3, 1),
      y,
      xi: tf.tensor4d(randn(INFER_BATCH * 32 * 32 * 3, 2), [INFER_BATCH, 32, 32, 3]),
      warmed: false,
      warmedBf16: false,
    };
    prepared.set(key, p);
  }
  return p;
}

/** One training step on the prepared batch: lib/train's `trainStep`. Returns the loss. */
function benchStep(p: Prepared, lr: number): number {
  return trainStep(p.step, p.x, p.y, lr).loss;
}

/** One inference pass over the prepared images, as lib/models `predictLogits` runs it (BN + ReLU fused). */
function inferBatch(p: Prepared) {
  const out = withLayerFusion(p.model, () => p.model.predict(p.xi, { batchSize: INFER_BATCH })) as tf.Tensor;
  out.dataSync();
  out.dispose();
}

function measureNoiselab(name: string, bn: boolean, rep: number): Row {
  const p = prepare(name, bn);
  for (let i = 0; i < (p.warmed ? 1 : 2); i++) benchStep(p, 0.01);
  if (args.profile) setEngineProfiling(true);
  let t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const loss = benchStep(p, 0.01);
    if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss ${loss}`);
  }
  const trainS = (performance.now() - t0) / 1000;
  if (args.profile) {
    printProfile(`${name} bn=${bn} train, ${steps} steps`, trainS * 1000 / steps, steps);
    setEngineProfiling(false);
  }
  if (!p.warmed) inferBatch(p);
  p.warmed = true;
  if (args.profile) setEngineProfiling(true);
  t0 = performance.now();
  for (let i = 0; i < inferBatches; i++) inferBatch(p);
  const inferS = (performance.now() - t0) / 1000;
  if (args.profile) {
    printProfile(
      `${name} bn=${bn} inference, ${inferBatches} batches`,
      inferS * 1000 / inferBatches,
      inferBatches,
    );
    setEngineProfiling(false);
  }
  // the engine's bf16 inference (forward convolutions in bf16) and bf16 training (forward and both
  // backward convolutions in bf16), measured beside fp32 when PyTorch's settings are compared
  let inferBf16: number | undefined, trainBf16: number | undefined;
  if (args["torch-settings"] && setConvPrecision("bf16") === "bf16") {
    try {
      inferBatch(p);
      t0 = performance.now();
      for (let i = 0; i < inferBatches; i++) inferBatch(p);
      inferBf16 = inferBatches * INFER_BATCH / ((performance.now() - t0) / 1000);
    } finally {
      setConvPrecision("fp32");
    }
  }
  // the sweep fast path: a fused plan built once (as a sweep does per draw), then whole batches
  let inferFused: number | undefined, inferFusedBf16: number | undefined;
  if (args["torch-settings"]) {
    for (const prec of ["fp32", "bf16"] as const) {
      if (setConvPrecision(prec) !== prec) continue;
      try {
        const plan = compileFusedInference(p.model);
        try {
          if (!plan.native) {
            log(`[bench] ${name}: fused ${prec} runs layer by layer (${plan.nativeSkipReason})`);
          }
          const x = p.xi.dataSync() as Float32Array;
          const out = new Float32Array(INFER_BATCH * (p.model.outputs[0].shape.at(-1) as number));
          const run = () => {
            if (plan.runNative(x, INFER_BATCH, out)) return;
            const y = plan.run(p.xi);
            y.dataSync();
            y.dispose();
          };
          run();
          t0 = performance.now();
          for (let i = 0; i < inferBatches; i++) run();
          const v = inferBatches * INFER_BATCH / ((performance.now() - t0) / 1000);
          if (prec === "fp32") inferFused = v;
          else inferFusedBf16 = v;
        } finally {
          plan.dispose();
        }
      } finally {
        setConvPrecision("fp32");
      }
    }
  }
  if (args["torch-settings"] && setConvPrecision("bf16", "training") === "bf16") {
    try {
      for (let i = 0; i < (p.warmedBf16 ? 1 : 2); i++) benchStep(p, 0.01);
      p.warmedBf16 = true;
      t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        const loss = benchStep(p, 0.01);
        if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss ${loss} in bf16 training`);
      }
      trainBf16 = steps * BATCH / ((performance.now() - t0) / 1000);
    } finally {
      setConvPrecision("fp32");
    }
  }
  return {
    model: name,
    bn,
    side: "noiselab",
    rep,
    train_img_s: steps * BATCH / trainS,
    infer_img_s: inferBatches * INFER_BATCH / inferS,
    ...(inferBf16 === undefined ? {} : { infer_bf16_img_s: inferBf16 }),
    ...(trainBf16 === undefined ? {} : { train_bf16_img_s: trainBf16 }),
    ...(inferFused === undefined ? {} : { infer_fused_img_s: inferFused }),
    ...(inferFusedBf16 === undefined ? {} : { infer_fused_bf16_img_s: inferFusedBf16 }),
    backend: backendName,
    threads: backendInfo().threads,
  };
}

function printProfile(label: string, msPerIter: number, iters: number) {
  const st = Object.entries(engineStats()).sort((a, b) => b[1].ms - a[1].ms);
  const total = st.reduce((s, [, v]) => s + v.ms, 0) / iters;
  log(`\nprofile ${label}: ${msPerIter.toFixed(1)} ms/iter, in kernels ${total.toFixed(1)} ms/iter`);
  log(`  kernel                          ms/iter  calls/iter  (native/fallback)`);
  for (const [k, v] of st.slice(0, 25)) {
    log(
      `  ${k.padEnd(30)} ${(v.ms / iters).toFixed(2).padStart(8)} ${
        ((v.native + v.fallback) / iters).toFixed(1).padStart(10)
      }  ${v.native}/${v.fallback}`,
    );
  }
}

// ------------------------------------------------------------------ pytorch side
class TorchPeer {
  private proc: Deno.ChildProcess;
  private lines: AsyncIterator<string>;
  private writer: WritableStreamDefaultWriter<Uint8Array>;
  info = "";
  private constructor(proc: Deno.ChildProcess) {
    this.proc = proc;
    this.lines = proc.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      [Symbol.asyncIterator]();
    this.writer = proc.stdin.getWriter();
  }
  static async start(): Promise<TorchPeer | string> {
    const script = join(projectRoot, "tools", "bench_torch.py");
    const extra = args["torch-channels-last"] ? ["--channels-last"] : [];
    let proc: Deno.ChildProcess;
    try {
      proc = new Deno.Command("/usr/bin/python3", {
        args: [script, "--serve", ...extra],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      return `cannot run /usr/bin/python3 (${e instanceof Error ? e.message : e})`;
    }
    const peer = new TorchPeer(proc);
    const first = await peer.lines.next();
    const msg = first.done ? { error: "python exited" } : JSON.parse(first.value);
    if (!msg.ready) {
      await proc.status;
      return msg.error ?? "bench_torch.py did not start";
    }
    peer.info = `torch ${msg.torch}, ${msg.threads} threads`;
    return peer;
  }
  async measure(name: string, bn: boolean, rep: number, setting: string): Promise<Row> {
    const layout = setting.startsWith("channels_last") ? "channels_last" : "nchw";
    await this.writer.write(
      new TextEncoder().encode(
        JSON.stringify({
          model: name,
          bn,
          steps,
          infer_batches: inferBatches,
          layout,
          bf16: setting.endsWith("-bf16"),
        }) +
          "\n",
      ),
    );
    const r = await this.lines.next();
    if (r.done) throw new Error("bench_torch.py exited early");
    return { ...JSON.parse(r.value), rep } as Row;
  }
  async close() {
    await this.writer.write(new TextEncoder().encode(JSON.stringify({ quit: true }) + "\n"));
    await this.writer.close();
    await this.proc.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) ctl.enqueue(line);
      }
    },
    flush(ctl) {
      if (buf.trim()) ctl.enqueue(buf.trim());
    },
  });
}

let torch: TorchPeer | null = null;
if (args.side !== "noiselab") {
  const t = await TorchPeer.start();
  if (typeof t === "string") log(`[bench] PyTorch side skipped: ${t}`);
  else {
    torch = t;
    log(`pytorch side: ${t.info}`);
  }
}

// ------------------------------------------------------------------ peak and FLOPs (% of peak)
/** Whether /proc/cpuinfo's flags list any of `flags` (false where it cannot be read). */
function cpuFlag(...flags: string[]): boolean {
  try {
    const m = /^flags\s*:(.*)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    const have = new Set((m?.[1] ?? "").trim().split(/\s+/));
    return flags.some((f) => have.has(f));
  } catch {
    return false;
  }
}
const cpu = cpuName();
const hasBf16 = cpuFlag("avx512_bf16"), hasAmx = cpuFlag("amx_bf16", "amx_tile");
const peakThreads = args.side !== "pytorch" ? backendInfo().threads : engineThreads();
log(`measuring the cores' peak (${peakThreads} threads)...`);
const peak: PeakGflops | null = measurePeakGflops(peakThreads);
const peakLine = peak
  ? `Measured peak at the benchmark's ${peakThreads} threads: fp32 ${peak.fp32.toFixed(1)} GFLOP/s, bf16 ${
    peak.bf16 == null ? "- (no AVX-512 BF16 in the engine's build)" : `${peak.bf16.toFixed(1)} GFLOP/s`
  } (the engine shim's nl_peak_gflops: register-resident fp32 FMA / bf16 dot-product loops, ` +
    "best of 3, timed by each thread's CPU time; AMX tiles are not measured)."
  : `Peak not measured (${
    loadNative() ? "the engine shim predates nl_peak_gflops" : nativeLoadError() ?? "engine shim not loaded"
  }): no % of peak.`;
log(peakLine);
/** Forward FLOPs per image of each benchmarked model, by `${name}:${bn}` (lib/models `modelFlops`). */
const fwdFlops = new Map<string, number>();
/** The same without the taps on "same" convolutions' implicit zero padding (`forwardNoPad`). */
const fwdFlopsNoPad = new Map<string, number>();
for (const name of models) {
  for (const bn of bns) {
    const m = buildModel(name, { bn: bn ? "all" : "none", seed: 0 });
    const f = modelFlops(m);
    fwdFlops.set(`${name}:${bn}`, f.forward);
    fwdFlopsNoPad.set(`${name}:${bn}`, f.forwardNoPad);
    m.dispose();
  }
}
/** A training step's FLOPs per image: forward, backward data and backward weights. */
const TRAIN_FLOP_FACTOR = 3;
/**
 * % of the measured peak of `imgS` images/s of `what` (fp32 runs against the fp32 peak, bf16 against bf16),
 * counting the FLOPs on real inputs (`forwardNoPad`: the taps on implicit zero padding, which oneDNN skips,
 * left out; with the nominal count VGG's small maps passed 100%).
 */
function pctOfPeak(name: string, bn: boolean, what: "train" | "infer", imgS: number, prec: "fp32" | "bf16") {
  const pk = prec === "bf16" ? peak?.bf16 : peak?.fp32;
  const f = fwdFlopsNoPad.get(`${name}:${bn}`);
  if (pk == null || f == null || Number.isNaN(imgS)) return NaN;
  return 100 * f * (what === "train" ? TRAIN_FLOP_FACTOR : 1) * imgS / (pk * 1e9);
}
const header = {
  header: true,
  cpu,
  avx512_bf16: hasBf16,
  amx: hasAmx,
  peak_threads: peakThreads,
  peak_fp32_gflops: peak?.fp32 ?? null,
  peak_bf16_gflops: peak?.bf16 ?? null,
  fwd_flop_per_img: models.flatMap((model) =>
    bns.map((bn) => ({
      model,
      bn,
      flop: fwdFlops.get(`${model}:${bn}`)!,
      flop_no_pad: fwdFlopsNoPad.get(`${model}:${bn}`)!,
    }))
  ),
  train_flop_factor: TRAIN_FLOP_FACTOR,
};
if (args.json) console.log(JSON.stringify(header));

// ------------------------------------------------------------------ run
const rows: Row[] = [];
const emit = (r: Row) => {
  rows.push(r);
  if (args.json) console.log(JSON.stringify(r));
  else {log(
      `  ${r.model} bn=${r.bn} ${r.side.padEnd(8)}${r.setting ? ` ${r.setting}` : ""} rep ${r.rep}: train ${
        r.train_img_s.toFixed(1)
      } img/s, infer ${r.infer_img_s.toFixed(1)} img/s${
        r.train_bf16_img_s === undefined ? "" : `; bf16 train ${r.train_bf16_img_s.toFixed(1)} img/s`
      }${r.infer_bf16_img_s === undefined ? "" : `, bf16 infer ${r.infer_bf16_img_s.toFixed(1)} img/s`}${
        r.infer_fused_img_s === undefined ? "" : `; fused infer ${r.infer_fused_img_s.toFixed(1)} img/s`
      }${
        r.infer_fused_bf16_img_s === undefined
          ? ""
          : `, fused bf16 ${r.infer_fused_bf16_img_s.toFixed(1)} img/s`
      }`,
    );}
};
const started = new Date();
for (const name of models) {
  for (const bn of bns) {
    for (let rep = 1; rep <= reps; rep++) {
      if (args.side !== "pytorch") emit(measureNoiselab(name, bn, rep));
      if (torch) { for (const t of torchSettings) emit(await torch.measure(name, bn, rep, t)); }
    }
    const p = prepared.get(`${name}:${bn}`);
    if (p) {
      p.model.dispose();
      p.step.optimizer.dispose();
      p.xi.dispose();
      prepared.delete(`${name}:${bn}`);
    }
  }
}
if (torch) await torch.close();

// ------------------------------------------------------------------ summary
const lines = [
  `# Benchmark ${started.toISOString()}`,
  "",
  `Command: deno task bench ${Deno.args.join(" ")}`,
  `CPU: ${cpu}; /proc/cpuinfo: avx512_bf16 ${hasBf16 ? "yes" : "no"}, AMX ${hasAmx ? "yes" : "no"}.`,
  peakLine,
  `FLOPs per image, forward, on real inputs (Conv2D + Dense of the tfjs model, 2 per multiply-add, taps on ` +
  `implicit zero padding left out; BN and element-wise ops left out): ${
    models.map((n) =>
      `${n} ${(fwdFlopsNoPad.get(`${n}:${bns[0]}`)! / 1e6).toFixed(1)} M (nominal ${
        (fwdFlops.get(`${n}:${bns[0]}`)! / 1e6).toFixed(1)
      } M)`
    ).join(", ")
  }; a training step counts ${TRAIN_FLOP_FACTOR}x forward (forward, backward data, backward weights).`,
  `noiselab side: ${backendName || "-"}; pytorch side: ${
    torch
      ? `${torch.info} (${
        args["torch-settings"] ? `settings ${torchSettings.join(", ")}` : torchSettings[0]
      })`
      : "-"
  }`,
  `Batch ${BATCH} training (SGD momentum), batch ${INFER_BATCH} inference, ${reps} alternating reps x ${steps} steps / ${inferBatches} batches; medians in images/s; ` +
  `the engine in fp32, PyTorch in its ${torchSettings[0]} setting.`,
  "",
  "| model | bn | noiselab train | pytorch train | train ratio | noiselab infer | pytorch infer | infer ratio |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
];
for (const name of models) {
  for (const bn of bns) {
    const pick = (side: string, k: "train_img_s" | "infer_img_s") => {
      const v = rows.filter((r) =>
        r.model === name && r.bn === bn && r.side === side &&
        (side !== "pytorch" || r.setting === torchSettings[0])
      ).map((r) => r[k]);
      return v.length ? median(v) : NaN;
    };
    const nt = pick("noiselab", "train_img_s"), pt = pick("pytorch", "train_img_s");
    const ni = pick("noiselab", "infer_img_s"), pi = pick("pytorch", "infer_img_s");
    const f = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
    const r = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? "-" : `${(a / b).toFixed(2)}x`);
    lines.push(
      `| ${name} | ${bn} | ${f(nt)} | ${f(pt)} | ${r(nt, pt)} | ${f(ni)} | ${f(pi)} | ${r(ni, pi)} |`,
    );
  }
}
if (torch && torchSettings.length > 1 && args.side === "both") {
  const cols = torchSettings.map((t) => `pytorch ${t}`);
  lines.push(
    "",
    `PyTorch settings (${torchSettings.join(", ")}; "-bf16": torch.autocast("cpu", dtype=torch.bfloat16)), ` +
      "alternating with the engine in the same rounds (engine bf16: setConvPrecision, forward convolutions in bf16 " +
      "for infer, forward and both backward convolutions for train; engine fused: the sweep fast path, BN folded " +
      "and conv + bias + ReLU fused, the whole pass as one native plan, in fp32 and with bf16 activations — " +
      "PyTorch's side runs its modules unfused, as the issue's settings define); ratio = engine / the fastest " +
      'PyTorch setting, "best" = the engine\'s fastest column:',
    "",
    `| model | bn | what | noiselab fp32 | noiselab bf16 | noiselab fused fp32 | noiselab fused bf16 | ${
      cols.join(" | ")
    } | fp32 vs fastest | best vs fastest |`,
    `| --- | --- | --- | --- | --- | --- | --- | ${cols.map(() => "---").join(" | ")} | --- | --- |`,
  );
  for (const name of models) {
    for (const bn of bns) {
      for (const k of ["train_img_s", "infer_img_s"] as const) {
        const m = taskMedians(rows, name, bn, k === "train_img_s" ? "train" : "infer", torchSettings);
        const [ours, oursBf16, fused = NaN, fusedBf16 = NaN] = m.engine.map(([, v]) => v);
        const oursBest = m.engineBest?.[1] ?? NaN;
        const cell = (v: number) => (Number.isNaN(v) ? "-" : v.toFixed(1));
        const theirs = m.torch.map(([, v]) => v);
        const best = m.torchBest?.[1] ?? NaN;
        lines.push(
          `| ${name} | ${bn} | ${k === "train_img_s" ? "train" : "infer"} | ${ours.toFixed(1)} | ${
            cell(oursBf16)
          } | ${cell(fused)} | ${cell(fusedBf16)} | ${theirs.map((v) => v.toFixed(1)).join(" | ")} | ${
            (ours / best).toFixed(2)
          }x | ${(oursBest / best).toFixed(2)}x |`,
        );
      }
    }
  }
}
if (peak) {
  // every side's share of the measured peak, with the same FLOPs per image for all
  type Variant = "" | "_bf16" | "_fused" | "_fused_bf16";
  const sides: { label: string; side: string; setting?: string; variant?: Variant; prec: "fp32" | "bf16" }[] =
    [
      ...(args.side === "pytorch"
        ? []
        : [{ label: "noiselab fp32", side: "noiselab", prec: "fp32" as const }]),
      ...(args.side === "pytorch" || !args["torch-settings"] ? [] : [
        { label: "noiselab bf16", side: "noiselab", variant: "_bf16" as const, prec: "bf16" as const },
        { label: "noiselab fused fp32", side: "noiselab", variant: "_fused" as const, prec: "fp32" as const },
        {
          label: "noiselab fused bf16",
          side: "noiselab",
          variant: "_fused_bf16" as const,
          prec: "bf16" as const,
        },
      ]),
      ...(torch
        ? torchSettings.map((t) => ({
          label: `pytorch ${t}`,
          side: "pytorch",
          setting: t,
          prec: (t.endsWith("-bf16") ? "bf16" : "fp32") as "fp32" | "bf16",
        }))
        : []),
    ];
  lines.push(
    "",
    "% of the measured peak: images/s x FLOPs per image on real inputs / peak (fp32 runs against the fp32 " +
      `peak, bf16 runs (the engine's bf16, PyTorch's "-bf16") against the bf16 peak; train = ` +
      `${TRAIN_FLOP_FACTOR}x forward FLOPs):`,
    "",
    `| model | bn | what | GFLOP/img | ${sides.map((c) => c.label).join(" | ")} |`,
    `| --- | --- | --- | --- | ${sides.map(() => "---").join(" | ")} |`,
  );
  for (const name of models) {
    for (const bn of bns) {
      for (const what of ["train", "infer"] as const) {
        const cells = sides.map((c) => {
          const key = `${what}${c.variant ?? ""}_img_s` as keyof Row;
          if (what === "train" && c.variant?.startsWith("_fused")) return "-";
          const v = rows.filter((r) =>
            r.model === name && r.bn === bn && r.side === c.side &&
            (c.setting === undefined || r.setting === c.setting) && r[key] !== undefined
          ).map((r) => r[key] as number);
          const pct = v.length ? pctOfPeak(name, bn, what, median(v), c.prec) : NaN;
          return Number.isNaN(pct) ? "-" : `${pct.toFixed(1)}%`;
        });
        const gf = fwdFlopsNoPad.get(`${name}:${bn}`)! * (what === "train" ? TRAIN_FLOP_FACTOR : 1) / 1e9;
        lines.push(`| ${name} | ${bn} | ${what} | ${gf.toFixed(3)} | ${cells.join(" | ")} |`);
      }
    }
  }
  lines.push(
    "",
    'FLOPs on real inputs leave out the kernel taps over a "same" convolution\'s implicit zero padding, ' +
      "which oneDNN skips (counted nominally, 2·OH·OW·KH·KW·Cin·Cout, VGG's 4x4 and 2x2 layers passed 100%). " +
      "Real / nominal forward FLOPs per image: " +
      models.map((n) => {
        const a = fwdFlopsNoPad.get(`${n}:${bns[0]}`)!, b = fwdFlops.get(`${n}:${bns[0]}`)!;
        return `${n} ${(a / 1e6).toFixed(1)} M / ${(b / 1e6).toFixed(1)} M (x${(a / b).toFixed(3)})`;
      }).join(", ") + ".",
  );
}
/** Issue #11's goal per model / BN / task (tools/bench_goal.ts), for the table and the JSON lines. */
const goal = !peak
  ? { skip: "issue #11's goal needs the measured peak" }
  : !args["torch-settings"]
  ? { skip: "issue #11's goal is judged with --torch-settings all" }
  : judgeGoal(rows, {
    forwardFlop: (m, bn) => fwdFlopsNoPad.get(`${m}:${bn}`)!,
    trainFlopFactor: TRAIN_FLOP_FACTOR,
    peakBf16: peak.bf16,
    peakFp32: peak.fp32,
    amx: hasAmx,
  });
if ("skip" in goal) {
  lines.push("", `Goal not judged: ${goal.skip}.`);
  if (args.json) log(`[bench] goal not judged: ${goal.skip}`);
}
if ("rows" in goal && goal.rows.length) {
  lines.push(
    "",
    `Issue #11's goal on this CPU: the engine's best ≥ ${GOAL_RATIO.train}x PyTorch's fastest of its four ` +
      `settings in training and ≥ ${GOAL_RATIO.infer}x in inference; in fp32 alone ≥ ` +
      `${
        FP32_GOAL_RATIO.toFixed(1)
      }x channels_last fp32. "needs" = the goal's images/s as a % of the peak of ` +
      "the engine's fastest arithmetic (bf16 where measured), and the engine's best as a % of the same peak; " +
      'above 100% no kernel of that arithmetic can meet it here ("beyond the measured peak"):',
    "",
    "| model | bn | what | PyTorch fastest | goal | needs img/s | needs % of peak | engine best | engine best, % of the same peak | verdict | fp32 vs channels_last fp32 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const g of goal.rows) {
    lines.push(
      `| ${g.model} | ${g.bn} | ${g.what} | ${g.theirsBestSetting} ${
        g.theirsBest.toFixed(1)
      } | ${g.ratio}x | ${g.needImgS.toFixed(1)} | ${
        g.needPct.toFixed(1)
      }% (${g.peakOf}) | ${g.oursBestColumn} ${g.oursBest.toFixed(1)} | ${
        g.oursPct.toFixed(1)
      }% | ${g.verdict} | ${
        Number.isFinite(g.fp32Ratio) ? `${g.fp32Ratio.toFixed(2)}x (${g.fp32Verdict})` : "-"
      } |`,
    );
  }
}
/** The goal rows as JSON lines (`--json` and the .jsonl file). */
const goalJson: Record<string, unknown>[] = "rows" in goal
  ? goal.rows.map((g) => ({ goal: true, ...g }))
  : [{ goal: true, skip: goal.skip }];
if (args.json) { for (const g of goalJson) console.log(JSON.stringify(g)); }
const md = lines.join("\n") + "\n";
if (!args.json) console.log(md);
if (!args["no-write"]) {
  const dir = join(projectRoot, "results", "bench");
  await Deno.mkdir(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  await writeFileAtomic(
    join(dir, `${stamp}.jsonl`),
    [header, ...rows, ...goalJson].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  await writeFileAtomic(join(dir, `${stamp}.md`), md);
  log(`[bench] wrote results/bench/${stamp}.{jsonl,md}`);
}
