/**
 * Issue #11's goal, checked against the cores' measured peak: how fast the engine
 * would have to run to beat PyTorch's fastest CPU setting by the goal's ratio, as a
 * share of the peak of the engine's fastest arithmetic. A need above 100% cannot be
 * met on the machine at hand by any kernel of that arithmetic, so the report can tell
 * "not met yet" from "beyond this CPU". Used by `tools/bench.ts`; pure, so
 * `test/bench_goal.test.ts` checks it on hand-computed cases.
 * @module
 */

import jStat from "jstat";

/** Issue #11's goal: the engine's best vs PyTorch's fastest setting, per task. */
export const GOAL_RATIO = { train: 1.2, infer: 1.5 } as const;
/** Issue #11's fp32-only goal: the engine in fp32 vs PyTorch's channels_last fp32. */
export const FP32_GOAL_RATIO = 1.0;

/** What {@link goalVerdict} needs; throughputs in images/s, FLOPs per image of the task (training: 3x forward). */
export interface GoalInput {
  what: "train" | "infer";
  /** PyTorch's fastest setting's throughput (images/s). */
  theirsBest: number;
  /** The engine's fastest column (images/s). */
  oursBest: number;
  /** FLOPs per image of the task on real inputs (training counts forward + backward data + backward weights). */
  flopPerImg: number;
  /** The measured bf16 peak (GFLOP/s), null where the CPU or the shim has none. */
  peakBf16: number | null;
  /** The measured fp32 peak (GFLOP/s). */
  peakFp32: number;
  /** True on a CPU with AMX tiles: their peak is not measured, so the peak gives no bound. */
  amx: boolean;
}

/** {@link goalVerdict}'s answer. */
export interface GoalVerdict {
  /** The goal's ratio (1.2 train, 1.5 infer). */
  ratio: number;
  /** Images/s the engine needs: ratio x PyTorch's fastest. */
  needImgS: number;
  /** Which peak bounds the engine's fastest arithmetic ("bf16" where measured, else "fp32"). */
  peakOf: "bf16" | "fp32";
  /** needImgS as a % of that peak. */
  needPct: number;
  /** The engine's best now as a % of the same peak. */
  oursPct: number;
  /** "met"; "not met" (below the peak, so kernels could still get there); "beyond the measured peak". */
  verdict: "met" | "not met" | "beyond the measured peak" | "not met (AMX peak not measured)";
}

/**
 * The goal's verdict for one model / BN / task. The bound assumes the engine's
 * fastest arithmetic is the one whose peak was measured (bf16 dot products on
 * AVX-512 BF16); with AMX present that peak understates the hardware, so no
 * "beyond" verdict is given there.
 * @throws RangeError when a throughput, a FLOP count or a peak is not a positive finite number.
 */
export function goalVerdict(g: GoalInput): GoalVerdict {
  for (
    const [k, v] of Object.entries({
      theirsBest: g.theirsBest,
      oursBest: g.oursBest,
      flopPerImg: g.flopPerImg,
      peakFp32: g.peakFp32,
    })
  ) {
    if (!(Number.isFinite(v) && v > 0)) {
      throw new RangeError(`goalVerdict: ${k} must be a positive number, got ${v}`);
    }
  }
  if (g.peakBf16 != null && !(Number.isFinite(g.peakBf16) && g.peakBf16 > 0)) {
    throw new RangeError(`goalVerdict: peakBf16 must be a positive number or null, got ${g.peakBf16}`);
  }
  const ratio = GOAL_RATIO[g.what];
  const needImgS = ratio * g.theirsBest;
  const peakOf = g.peakBf16 != null ? "bf16" : "fp32";
  const peak = (g.peakBf16 ?? g.peakFp32) * 1e9;
  const needPct = 100 * needImgS * g.flopPerImg / peak;
  const oursPct = 100 * g.oursBest * g.flopPerImg / peak;
  const verdict = g.oursBest >= needImgS
    ? "met"
    : g.amx
    ? "not met (AMX peak not measured)"
    : needPct > 100
    ? "beyond the measured peak"
    : "not met";
  return { ratio, needImgS, peakOf, needPct, oursPct, verdict };
}

/** PyTorch's four settings of `bench --torch-settings all`; the goal is judged only against all of them. */
export const ALL_TORCH_SETTINGS = ["nchw", "channels_last", "nchw-bf16", "channels_last-bf16"] as const;

/** The fields of a `tools/bench.ts` result row that the goal reads (images/s). */
export interface BenchRowLike {
  model: string;
  bn: boolean;
  side: "noiselab" | "pytorch";
  setting?: string;
  train_img_s: number;
  infer_img_s: number;
  train_bf16_img_s?: number;
  infer_bf16_img_s?: number;
  infer_fused_img_s?: number;
  infer_fused_bf16_img_s?: number;
}

/** Median of the finite values (jstat `median`); NaN when there are none. */
export function median(xs: number[]): number {
  const finite = xs.filter(Number.isFinite);
  return finite.length ? jStat.median(finite) : NaN;
}

/** The engine's columns of a task, in report order (training has no fused columns). */
const ENGINE_COLUMNS: Record<"train" | "infer", [string, keyof BenchRowLike][]> = {
  train: [["fp32", "train_img_s"], ["bf16", "train_bf16_img_s"]],
  infer: [
    ["fp32", "infer_img_s"],
    ["bf16", "infer_bf16_img_s"],
    ["fused fp32", "infer_fused_img_s"],
    ["fused bf16", "infer_fused_bf16_img_s"],
  ],
};

/**
 * Medians over the repetitions of one model / BN / task: the engine's columns
 * ("fp32", "bf16", "fused fp32", "fused bf16"; NaN where not measured) and each of
 * PyTorch's `settings`, with the fastest of each side (undefined where none was measured).
 */
export function taskMedians(
  rows: BenchRowLike[],
  model: string,
  bn: boolean,
  what: "train" | "infer",
  settings: readonly string[],
): {
  engine: [string, number][];
  torch: [string, number][];
  engineBest?: [string, number];
  torchBest?: [string, number];
} {
  const mine = rows.filter((r) => r.side === "noiselab" && r.model === model && r.bn === bn);
  const theirs = rows.filter((r) => r.side === "pytorch" && r.model === model && r.bn === bn);
  const engine = ENGINE_COLUMNS[what].map(([label, k]) =>
    [label, median(mine.map((r) => r[k] as number))] as [string, number]
  );
  const torch = settings.map((t) =>
    [t, median(theirs.filter((r) => r.setting === t).map((r) => r[`${what}_img_s`]))] as [string, number]
  );
  const fastest = (xs: [string, number][]) =>
    xs.filter(([, v]) => Number.isFinite(v)).sort((a, b) => b[1] - a[1])[0];
  return { engine, torch, engineBest: fastest(engine), torchBest: fastest(torch) };
}

/** One model / BN / task of {@link judgeGoal}: the medians it used and the verdicts. */
export interface GoalRow extends GoalVerdict {
  model: string;
  bn: boolean;
  what: "train" | "infer";
  /** PyTorch's fastest setting and its median images/s. */
  theirsBestSetting: string;
  theirsBest: number;
  /** The engine's fastest column ("fp32", "bf16", "fused fp32", "fused bf16") and its median. */
  oursBestColumn: string;
  oursBest: number;
  /** Engine fp32 / PyTorch channels_last fp32 (issue #11's fp32 goal) and whether it holds. */
  fp32Ratio: number;
  fp32Verdict: "met" | "not met";
}

/**
 * Issue #11's goal for every model / BN / task in a benchmark's rows: medians over the
 * repetitions, the engine's fastest column (fp32, bf16, fused fp32, fused bf16; training has
 * no fused columns) against PyTorch's fastest of its four settings, judged by
 * {@link goalVerdict} with the task's FLOPs (`forwardFlop(model, bn)` x `trainFlopFactor` for
 * training), plus engine fp32 vs channels_last fp32. Returns `{ skip }` with the reason when
 * the rows cannot judge it (a PyTorch setting or the engine side missing).
 */
export function judgeGoal(
  rows: BenchRowLike[],
  o: {
    forwardFlop: (model: string, bn: boolean) => number;
    trainFlopFactor: number;
    peakBf16: number | null;
    peakFp32: number;
    amx: boolean;
  },
): { rows: GoalRow[] } | { skip: string } {
  const torch = rows.filter((r) => r.side === "pytorch");
  if (!rows.some((r) => r.side === "noiselab")) {
    return { skip: "issue #11's goal needs the engine's side (--side both)" };
  }
  if (!torch.length) return { skip: "issue #11's goal needs PyTorch's side (--side both)" };
  const missing = ALL_TORCH_SETTINGS.filter((t) => !torch.some((r) => r.setting === t));
  if (missing.length) {
    return {
      skip: `issue #11's goal is judged against PyTorch's fastest of its four settings; this run lacks ${
        missing.join(", ")
      } (use --torch-settings all)`,
    };
  }
  const ours = rows.filter((r) => r.side === "noiselab");
  const out: GoalRow[] = [];
  const keys = [...new Set(ours.map((r) => `${r.model}\u0000${r.bn}`))];
  for (const key of keys) {
    const [model, bnS] = key.split("\u0000");
    const bn = bnS === "true";
    for (const what of ["train", "infer"] as const) {
      const m = taskMedians(rows, model, bn, what, ALL_TORCH_SETTINGS);
      const best = m.engineBest, fastest = m.torchBest;
      if (!best || !fastest) continue;
      const v = goalVerdict({
        what,
        theirsBest: fastest[1],
        oursBest: best[1],
        flopPerImg: o.forwardFlop(model, bn) * (what === "train" ? o.trainFlopFactor : 1),
        peakBf16: o.peakBf16,
        peakFp32: o.peakFp32,
        amx: o.amx,
      });
      const channelsLast = m.torch.find(([t]) => t === "channels_last")![1];
      const fp32Ratio = m.engine[0][1] / channelsLast;
      out.push({
        model,
        bn,
        what,
        theirsBestSetting: fastest[0],
        theirsBest: fastest[1],
        oursBestColumn: best[0],
        oursBest: best[1],
        ...v,
        fp32Ratio,
        fp32Verdict: fp32Ratio >= FP32_GOAL_RATIO ? "met" : "not met",
      });
    }
  }
  return { rows: out };
}
