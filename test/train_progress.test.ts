/** Progress formatting and the plain (non-terminal) renderer. */
import assert from "node:assert/strict";
import process from "node:process";
import {
  formatDuration,
  formatProgressLine,
  terminalProgress,
  type TrainProgress,
} from "../lib/train/progress.ts";

const p = (o: Partial<TrainProgress>): TrainProgress => ({
  phase: "train",
  epoch: 1,
  epochs: 3,
  step: 5,
  steps: 10,
  loss: 1.23456,
  accuracy: 0.5,
  lr: 0.01,
  imagesPerSec: 123.4,
  etaSeconds: 75,
  ...o,
});

Deno.test("durations", () => {
  assert.equal(formatDuration(12.4), "12s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(3720), "1h02m");
  assert.equal(formatDuration(Infinity), "?");
});

Deno.test("a progress line carries epoch, loss, accuracies, lr, speed and ETA", () => {
  const line = formatProgressLine(p({ phase: "epoch-end", testAccuracy: 0.4321 }));
  assert.equal(
    line,
    "epoch 1/3 step 5/10 loss 1.2346 acc 50.00% test_acc 43.21% lr 1.00e-2 123.4 img/s eta 1m15s",
  );
});

Deno.test("non-terminal renderer: one plain line per finished epoch on stderr, nothing on stdout", () => {
  const written: string[] = [];
  const orig = process.stderr.write;
  // deno-lint-ignore no-explicit-any
  (process.stderr as any).write = (s: string) => (written.push(String(s)), true);
  try {
    const r = terminalProgress({ label: "m", tty: false });
    r(p({}));
    r(p({ phase: "eval" }));
    r(p({ phase: "epoch-end", testAccuracy: 0.1 }));
    r(p({ epoch: 2 }));
    r(p({ phase: "epoch-end", epoch: 2, testAccuracy: 0.2 }));
    r.stop();
  } finally {
    process.stderr.write = orig;
  }
  assert.equal(written.length, 2);
  assert.ok(written[0].startsWith("m epoch 1/3 ") && written[0].endsWith("\n"));
  assert.ok(written[1].includes("test_acc 20.00%"));
  assert.ok(!written.some((w) => w.includes("\r")));
});

Deno.test("non-terminal renderer: in-epoch lines at most once per interval (long epochs in batch logs)", async () => {
  const lines: string[] = [];
  const r = terminalProgress({ tty: false, intervalSeconds: 0.05, write: (l) => lines.push(l) });
  r(p({ step: 1 })); // too early: the interval starts when the renderer is made
  await new Promise((res) => setTimeout(res, 80));
  r(p({ step: 2 }));
  r(p({ step: 3 })); // right after a line: suppressed
  await new Promise((res) => setTimeout(res, 80));
  r(p({ step: 4 }));
  r(p({ phase: "epoch-end", step: 10, testAccuracy: 0.5 })); // always printed
  r.stop();
  assert.deepEqual(lines.map((l) => /step (\d+)\//.exec(l)![1]), ["2", "4", "10"]);
});
