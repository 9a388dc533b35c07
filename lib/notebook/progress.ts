/**
 * In-place progress bars for notebooks: one output updated through
 * `Deno.jupyter.display(bundle, {raw, display_id, update: true})` (the saved
 * notebook keeps the final state); throttled so a fast loop does not flood the
 * kernel's IOPub. Outside Jupyter it writes a plain line to stderr now and then.
 * Adapters turn lib/train's `TrainProgress` and a sweep's onProgress into updates.
 * @module
 */
import { escapeXml } from "../analysis/dom.ts";
import { jupyter } from "../analysis/display.ts";
import type { TrainProgress } from "../train/progress.ts";

let counter = 0;

/** Options of {@link NotebookProgress}. */
export interface ProgressOptions {
  /** Minimum milliseconds between two displayed updates (default 500 in Jupyter, 5000 on stderr). */
  intervalMs?: number;
  /** Force stderr mode even inside Jupyter (tests). */
  stderr?: boolean;
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** One progress bar (label, done/total, free text), shown in place. */
export class NotebookProgress {
  readonly label: string;
  readonly displayId: string;
  private readonly inNotebook: boolean;
  private readonly intervalMs: number;
  private shown = false;
  private completedShown = false;
  private last = 0;
  private chain: Promise<void> = Promise.resolve();
  private done = 0;
  private total = 0;
  private detail = "";
  private readonly started = Date.now();
  /** Number of updates actually displayed/written (for tests). */
  rendered = 0;

  constructor(label: string, opts: ProgressOptions = {}) {
    this.label = label;
    this.displayId = `noiselab-progress-${Deno.pid}-${++counter}`;
    this.inNotebook = !opts.stderr && jupyter() !== undefined;
    this.intervalMs = opts.intervalMs ?? (this.inNotebook ? 500 : 5000);
  }

  /** Plain-text form: `label [#####.....] 12/40 (30%) detail`. */
  text(): string {
    if (this.total <= 0) {
      return `${this.label}: ${this.detail || "nothing to do"} (${
        fmtSeconds((Date.now() - this.started) / 1000)
      })`;
    }
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const n = 24, k = Math.round(frac * n);
    return `${this.label} [${"#".repeat(k)}${".".repeat(n - k)}] ${this.done}/${this.total} ` +
      `(${Math.round(frac * 100)}%, ${fmtSeconds((Date.now() - this.started) / 1000)})` +
      (this.detail ? ` ${this.detail}` : "");
  }

  private html(): string {
    if (this.total <= 0) {
      return `<div style="font-family: 'DejaVu Sans Mono', monospace; font-size: 12px;"><b>${
        escapeXml(this.label)
      }</b>: ` +
        `${escapeXml(this.detail || "nothing to do")}</div>`;
    }
    const pct = this.total > 0 ? Math.min(100, (100 * this.done) / this.total) : 0;
    return `<div style="font-family: 'DejaVu Sans Mono', monospace; font-size: 12px;">` +
      `<b>${escapeXml(this.label)}</b> <progress value="${
        pct.toFixed(1)
      }" max="100" style="width: 240px;"></progress> ` +
      `${this.done}/${this.total} (${pct.toFixed(0)}%, ${fmtSeconds((Date.now() - this.started) / 1000)}) ` +
      `${escapeXml(this.detail)}</div>`;
  }

  /** Report progress; displayed at most every `intervalMs` (the first and final states always). */
  update(done: number, total: number, detail = ""): void {
    this.done = done;
    this.total = total;
    this.detail = detail;
    const now = Date.now();
    const completes = done >= total && !this.completedShown;
    if (this.shown && now - this.last < this.intervalMs && !completes) return;
    if (done >= total) this.completedShown = true;
    this.last = now;
    this.render();
  }

  private render(): void {
    this.rendered++;
    if (!this.inNotebook) {
      console.error(`[progress] ${this.text()}`);
      this.shown = true;
      return;
    }
    const j = jupyter()!;
    const update = this.shown;
    this.shown = true;
    const bundle = { "text/html": this.html(), "text/plain": this.text() };
    this.chain = this.chain
      .then(() => j.display(bundle, { raw: true, display_id: this.displayId, update }))
      .catch(() => {});
  }

  /** Show the final state and wait until every display message has been sent. */
  async finish(detail?: string): Promise<void> {
    if (detail !== undefined) this.detail = detail;
    this.render();
    await this.chain;
  }
}

/** The fields of lib/train's `TrainProgress` that the adapter reads. */
export type TrainProgressLike = Pick<
  TrainProgress,
  | "phase"
  | "epoch"
  | "epochs"
  | "step"
  | "steps"
  | "loss"
  | "accuracy"
  | "testAccuracy"
  | "imagesPerSec"
  | "etaSeconds"
>;

/** A callback with a `finish()` to flush the final state. */
export type ProgressCallback<T> = ((p: T) => void) & {
  finish(detail?: string): Promise<void>;
  bar: NotebookProgress;
};

/** Adapter for `trainOrLoad(cfg, {onProgress})`: one bar over all steps of the run. */
export function trainProgress(
  label: string,
  opts: ProgressOptions = {},
): ProgressCallback<TrainProgressLike> {
  const bar = new NotebookProgress(label, opts);
  const fn = ((p: TrainProgressLike) => {
    const total = p.epochs * p.steps;
    const done = (p.epoch - 1) * p.steps + p.step;
    const test = p.testAccuracy !== undefined ? ` test ${(100 * p.testAccuracy).toFixed(1)}%` : "";
    bar.update(
      done,
      total,
      `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)} ` +
        `acc ${(100 * p.accuracy).toFixed(1)}%${test} ${p.imagesPerSec.toFixed(0)} img/s eta ${
          fmtSeconds(p.etaSeconds)
        }`,
    );
  }) as ProgressCallback<TrainProgressLike>;
  fn.finish = (detail?: string) => bar.finish(detail);
  fn.bar = bar;
  return fn;
}

/** Shape of a sweep progress report: any object with done/total counts (and optional eta/draw). */
export interface SweepProgressLike {
  done: number;
  total: number;
  eta?: number;
  draw?: number;
  target?: string;
}

/** Adapter for `noiseSweep(..., {onProgress})`. */
export function sweepProgress(
  label: string,
  opts: ProgressOptions = {},
): ProgressCallback<SweepProgressLike> {
  const bar = new NotebookProgress(label, opts);
  const fn = ((p: SweepProgressLike) => {
    const bits = [
      p.eta !== undefined ? `η=${p.eta}` : "",
      p.draw !== undefined ? `draw ${p.draw}` : "",
      p.target ? String(p.target) : "",
    ].filter(Boolean).join(" ");
    bar.update(p.done, p.total, bits);
  }) as ProgressCallback<SweepProgressLike>;
  fn.finish = (detail?: string) => bar.finish(detail);
  fn.bar = bar;
  return fn;
}
