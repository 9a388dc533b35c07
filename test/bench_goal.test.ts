// Issue #11's goal verdicts in the benchmark report (tools/bench_goal.ts), on hand-computed cases.
import assert from "node:assert/strict";
import { type BenchRowLike, goalVerdict, judgeGoal, median } from "../tools/bench_goal.ts";

const base = { peakBf16: 400, peakFp32: 200, amx: false } as const;

Deno.test("goalVerdict: inference need as a share of the bf16 peak, met / not met / beyond", () => {
  // 1e8 FLOP/img; PyTorch 2000 img/s -> need 3000 img/s = 300 GFLOP/s = 75% of 400
  const notMet = goalVerdict({ ...base, what: "infer", theirsBest: 2000, oursBest: 2800, flopPerImg: 1e8 });
  assert.equal(notMet.ratio, 1.5);
  assert.equal(notMet.needImgS, 3000);
  assert.equal(notMet.peakOf, "bf16");
  assert.ok(Math.abs(notMet.needPct - 75) < 1e-9);
  assert.ok(Math.abs(notMet.oursPct - 70) < 1e-9);
  assert.equal(notMet.verdict, "not met");
  assert.equal(
    goalVerdict({ ...base, what: "infer", theirsBest: 2000, oursBest: 3000, flopPerImg: 1e8 }).verdict,
    "met",
  );
  // PyTorch at 3000 img/s = 75% of peak -> need 4500 img/s = 112.5%: beyond any bf16 kernel here
  const beyond = goalVerdict({ ...base, what: "infer", theirsBest: 3000, oursBest: 3500, flopPerImg: 1e8 });
  assert.ok(Math.abs(beyond.needPct - 112.5) < 1e-9);
  assert.equal(beyond.verdict, "beyond the measured peak");
  // with AMX the bf16 peak is not the hardware's: no "beyond"
  assert.equal(
    goalVerdict({ ...base, amx: true, what: "infer", theirsBest: 3000, oursBest: 3500, flopPerImg: 1e8 })
      .verdict,
    "not met (AMX peak not measured)",
  );
});

Deno.test("goalVerdict: training uses 1.2x, and the fp32 peak where no bf16 peak was measured", () => {
  const v = goalVerdict({
    what: "train",
    theirsBest: 500,
    oursBest: 400,
    flopPerImg: 3e8,
    peakBf16: null,
    peakFp32: 200,
    amx: false,
  });
  assert.equal(v.ratio, 1.2);
  assert.equal(v.needImgS, 600);
  assert.equal(v.peakOf, "fp32");
  assert.ok(Math.abs(v.needPct - 90) < 1e-9); // 600 * 3e8 / 200e9
  assert.equal(v.verdict, "not met");
});

Deno.test("goalVerdict: throws on a non-positive or non-finite input, naming it", () => {
  assert.throws(
    () => goalVerdict({ ...base, what: "infer", theirsBest: NaN, oursBest: 1, flopPerImg: 1 }),
    /theirsBest must be a positive number/,
  );
  assert.throws(
    () => goalVerdict({ ...base, what: "train", theirsBest: 1, oursBest: 1, flopPerImg: 0 }),
    /flopPerImg/,
  );
  assert.throws(
    () => goalVerdict({ ...base, peakBf16: -1, what: "train", theirsBest: 1, oursBest: 1, flopPerImg: 1 }),
    /peakBf16/,
  );
});

/** Synthetic bench rows: the engine's columns and PyTorch's four settings, two reps each. */
function benchRows(): BenchRowLike[] {
  const rows: BenchRowLike[] = [];
  for (const rep of [0, 1]) {
    const d = rep ? 10 : -10; // medians of two reps are the middle values
    rows.push({
      model: "m",
      bn: true,
      side: "noiselab",
      train_img_s: 500 + d,
      train_bf16_img_s: 700 + d,
      infer_img_s: 2000 + d,
      infer_bf16_img_s: 2500 + d,
      infer_fused_img_s: 2200 + d,
      infer_fused_bf16_img_s: 4000 + d,
    });
    for (
      const [setting, tr, inf] of [
        ["nchw", 400, 1000],
        ["channels_last", 550, 1600],
        ["nchw-bf16", 800, 3000],
        ["channels_last-bf16", 900, 2600],
      ] as const
    ) {
      rows.push({
        model: "m",
        bn: true,
        side: "pytorch",
        setting,
        train_img_s: tr + d,
        infer_img_s: inf + d,
      });
    }
  }
  return rows;
}
const opts = { forwardFlop: () => 1e8, trainFlopFactor: 3, peakBf16: 400, peakFp32: 200, amx: false };

Deno.test("judgeGoal: medians, the engine's fastest column vs PyTorch's fastest setting, training FLOPs x3", () => {
  const g = judgeGoal(benchRows(), opts);
  assert.ok("rows" in g);
  const [train, infer] = g.rows;
  assert.equal(train.what, "train");
  assert.equal(train.oursBestColumn, "bf16");
  assert.equal(train.oursBest, 700);
  assert.equal(train.theirsBestSetting, "channels_last-bf16");
  assert.equal(train.needImgS, 1.2 * 900);
  assert.ok(Math.abs(train.needPct - 100 * 1080 * 3e8 / 400e9) < 1e-9); // 81%: 3x forward FLOPs
  assert.equal(train.verdict, "not met");
  assert.ok(Math.abs(train.fp32Ratio - 500 / 550) < 1e-12); // engine fp32 vs channels_last fp32
  assert.equal(train.fp32Verdict, "not met");
  assert.equal(infer.oursBestColumn, "fused bf16");
  assert.equal(infer.theirsBestSetting, "nchw-bf16");
  assert.ok(Math.abs(infer.needPct - 100 * 4500 * 1e8 / 400e9) < 1e-9);
  assert.equal(infer.verdict, "beyond the measured peak"); // 112.5% of the bf16 peak
  assert.equal(infer.fp32Ratio, 2000 / 1600);
  assert.equal(infer.fp32Verdict, "met");
});

Deno.test("judgeGoal: not judged without all four PyTorch settings or without the engine's side", () => {
  const noBf16 = benchRows().filter((r) => !r.setting?.endsWith("-bf16"));
  const g = judgeGoal(noBf16, opts);
  assert.ok("skip" in g && /nchw-bf16, channels_last-bf16/.test(g.skip), JSON.stringify(g));
  const pytorchOnly = judgeGoal(benchRows().filter((r) => r.side === "pytorch"), opts);
  assert.ok("skip" in pytorchOnly && /engine/.test(pytorchOnly.skip));
  const engineOnly = judgeGoal(benchRows().filter((r) => r.side === "noiselab"), opts);
  assert.ok("skip" in engineOnly && /PyTorch's side/.test(engineOnly.skip), JSON.stringify(engineOnly));
  assert.ok(Number.isNaN(median([])));
  assert.equal(median([3, 1, NaN, 2]), 2);
});
