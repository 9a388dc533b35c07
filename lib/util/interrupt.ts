/**
 * Cooperative interruption of long work (training, noise sweeps) from the
 * notebook UI's Kernel > Interrupt.
 *
 * Why cooperative: Jupyter interrupts a kernel with SIGINT (`interrupt_mode`
 * "signal"), which kills a Deno process that has no SIGINT listener, losing all
 * state (denoland/deno#24491). The kernel wrapper `tools/kernel/proxy.py`
 * installs a listener when the kernel starts, which records the time of each
 * interrupt in `globalThis.__noiselab.interruptAt` (ms, `performance.now()`).
 * Long loops call {@link throwIfInterrupted} once per batch: an interrupt that
 * arrived after the loop started stops it with {@link InterruptedError}; the
 * kernel and its state survive, and re-running the cell resumes (training from
 * its last checkpoint, sweeps from their last finished noise draw).
 * Outside the wrapper (CLI, tests) nothing is installed and Ctrl-C behaves as usual.
 * @module
 */
import { NoiselabError } from "./errors.ts";

/** Raised by long lib loops after the user interrupted the kernel. */
export class InterruptedError extends NoiselabError {
  constructor(what: string) {
    super(
      `${what} interrupted (Kernel > Interrupt). The kernel and its variables are intact; ` +
        "re-run the cell to continue (training resumes from its last checkpoint, sweeps from their last finished draw).",
      "interrupt",
    );
    this.name = "InterruptedError";
  }
}

type NoiselabGlobal = { interruptAt?: number };

/** Time (ms, `performance.now()` clock) of the last interrupt, or -Infinity if none. */
export function lastInterrupt(): number {
  const g = (globalThis as unknown as { __noiselab?: NoiselabGlobal }).__noiselab;
  return typeof g?.interruptAt === "number" ? g.interruptAt : -Infinity;
}

/**
 * A checker for one long operation: call it once per batch; it throws
 * {@link InterruptedError} if an interrupt arrived after the checker was made.
 * @param what Names the operation in the error, e.g. "training resnet20-bn".
 */
export function interruptChecker(what: string): () => void {
  const t0 = performance.now();
  return () => {
    if (lastInterrupt() > t0) throw new InterruptedError(what);
  };
}

let lastYield = 0;

/**
 * Let the event loop run (a macrotask turn) at most every `everyMs` ms: long
 * synchronous loops call this once per batch so that the kernel's SIGINT
 * listener (and progress displays in Jupyter) get a turn. Cheap when called
 * more often (it returns at once between turns).
 */
export async function yieldToEventLoop(everyMs = 200): Promise<void> {
  const now = performance.now();
  if (now - lastYield < everyMs) return;
  lastYield = now;
  await new Promise((r) => setTimeout(r, 0));
}
