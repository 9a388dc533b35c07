/**
 * Training progress reports and a terminal renderer for them.
 *
 * The renderer uses the kept npm library `cli-progress` on a terminal
 * (carriage-return updates on stderr) and prints plain lines when stderr is not a
 * terminal (logs, CI, batch jobs): one per finished epoch, and one at most every
 * `intervalSeconds` (default 30) during an epoch, so a long epoch still shows life.
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";

/** One progress report from the training loop. */
export interface TrainProgress {
  /** `train` during steps, `eval` while measuring test accuracy, `epoch-end` after it, `done` at the end. */
  phase: "train" | "eval" | "epoch-end" | "done";
  /** Current epoch, 1-based. */
  epoch: number;
  /** Total epochs. */
  epochs: number;
  /** Step within the epoch, 1-based (0 before the first step). */
  step: number;
  /** Steps per epoch. */
  steps: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  /** Training accuracy over the epoch so far (0..1). */
  accuracy: number;
  /** Test accuracy after the epoch (`epoch-end`, `done`). */
  testAccuracy?: number;
  /** Learning rate of the latest step. */
  lr: number;
  /** Training throughput of this process (images per second, this epoch). */
  imagesPerSec: number;
  /** Estimated seconds left for the whole run. */
  etaSeconds: number;
}

/** Format seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/** A one-line summary of a report (used for non-terminal output). */
export function formatProgressLine(p: TrainProgress): string {
  const test = p.testAccuracy === undefined ? "" : ` test_acc ${(p.testAccuracy * 100).toFixed(2)}%`;
  return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ` +
    `acc ${(p.accuracy * 100).toFixed(2)}%${test} lr ${p.lr.toExponential(2)} ` +
    `${p.imagesPerSec.toFixed(1)} img/s eta ${formatDuration(p.etaSeconds)}`;
}

/** A progress renderer: call it with reports, then `stop()`. */
export interface ProgressRenderer {
  (p: TrainProgress): void;
  /** Finish the bar (newline on a terminal). */
  stop(): void;
}

/**
 * A renderer writing to stderr: a `cli-progress` bar over all steps of the run
 * on a terminal; plain lines (one per finished epoch) otherwise.
 * @param opts.label text in front of the bar (e.g. the model id)
 * @param opts.tty force terminal/plain mode (default: `process.stderr.isTTY`)
 * @param opts.intervalSeconds plain mode: seconds between in-epoch lines (default 30)
 * @param opts.write plain mode: where lines go (default stderr)
 */
export function terminalProgress(
  opts: { label?: string; tty?: boolean; intervalSeconds?: number; write?: (line: string) => void } = {},
): ProgressRenderer {
  const tty = opts.tty ?? Boolean(process.stderr.isTTY);
  const label = opts.label ? `${opts.label} ` : "";
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const interval = 1000 * (opts.intervalSeconds ?? 30);
  let lastLine = performance.now();
  let bar: cliProgress.SingleBar | undefined;
  const render = ((p: TrainProgress) => {
    if (!tty) {
      const now = performance.now();
      if (p.phase === "epoch-end" || (p.phase === "train" && now - lastLine >= interval)) {
        lastLine = now;
        write(label + formatProgressLine(p) + "\n");
      }
      return;
    }
    const total = p.epochs * p.steps;
    const value = Math.min(total, (p.epoch - 1) * p.steps + p.step);
    const payload = {
      ep: `${p.epoch}/${p.epochs}`,
      loss: p.loss.toFixed(4),
      acc: (p.accuracy * 100).toFixed(1),
      test: p.testAccuracy === undefined ? "-" : (p.testAccuracy * 100).toFixed(1) + "%",
      ips: p.imagesPerSec.toFixed(1),
      etaS: formatDuration(p.etaSeconds),
    };
    if (!bar) {
      bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format:
          `${label}{bar} {percentage}% | epoch {ep} | loss {loss} acc {acc}% test {test} | {ips} img/s | eta {etaS}`,
        hideCursor: false,
        clearOnComplete: false,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, value, payload);
    } else {
      bar.update(value, payload);
    }
  }) as ProgressRenderer;
  render.stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return render;
}
