/**
 * Issue #11's goal, checked against the cores' measured peak: how fast the engine
 * would have to run to beat PyTorch's fastest CPU setting by the goal's ratio, as a
 * share of the peak of the engine's fastest arithmetic. A need above 100% cannot be
 * met on the machine at hand by any kernel of that arithmetic, so the report can tell
 * "not met yet" from "beyond this CPU". Used by `tools/bench.ts`; pure, so
 * `test/bench_goal.test.ts` checks it on hand-computed cases.
 * @module
 */

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
