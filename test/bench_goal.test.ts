// Issue #11's goal verdicts in the benchmark report (tools/bench_goal.ts), on hand-computed cases.
import assert from "node:assert/strict";
import { goalVerdict } from "../tools/bench_goal.ts";

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
