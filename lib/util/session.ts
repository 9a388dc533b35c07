/**
 * Which parameters a notebook's cells may use.
 *
 * A notebook's `parameters` cell resolves and validates its knobs in that same
 * cell (`nb.parameters(...)` in lib/notebook/params.ts), which records here a
 * new *generation* of parameters. Everything computed from them (the data set,
 * trained models, sweeps) is stamped with that generation. A later cell that
 * mixes generations — the parameters cell was edited and re-run, but not the
 * cells between it and this one — or runs while the parameters cell's last run
 * failed, gets a NoiselabError saying which input is stale and what to re-run,
 * instead of silently using old values. State lives on `globalThis` (one per
 * kernel). Outside notebooks nothing is stamped and nothing is checked.
 * @module
 */
import { NoiselabError } from "./errors.ts";

interface SessionState {
  /** Number of times the parameters cell ran with new values (successfully or not). */
  generation: number;
  /** Generation of the latest computation started (data, training, sweeps). */
  lastComputed?: number;
  /** Values of the last successful run (by generation), for messages. */
  current?: { generation: number; values: Record<string, unknown> };
  /** Set when the last run of the parameters cell failed. */
  failed?: { generation: number; message: string };
}

function state(): SessionState {
  const g = globalThis as unknown as { __noiselabSession?: SessionState };
  return (g.__noiselabSession ??= { generation: 0 });
}

const stamps = new WeakMap<object, number>();

/** Start a new generation (the parameters cell is running); returns its number. */
export function beginParameters(): number {
  return ++state().generation;
}

/**
 * The generation of the last successful run of the parameters cell when it resolved exactly these
 * values (re-running the cell unchanged keeps results valid), else undefined.
 */
export function sameAsCurrent(values: Record<string, unknown>): number | undefined {
  const c = state().current;
  return c && !state().failed && JSON.stringify(c.values) === JSON.stringify(values) ? c.generation : undefined;
}

/** The parameters cell succeeded with these values. */
export function parametersResolved(generation: number, values: Record<string, unknown>): void {
  const s = state();
  s.current = { generation, values };
  s.failed = undefined;
}

/** The parameters cell failed with this message: later cells refuse to run until it is fixed. */
export function parametersFailed(generation: number, message: string): void {
  const s = state();
  s.failed = { generation, message };
  s.current = undefined;
}

/** Stamp an object (and, for arrays, each element) as computed under `generation`; returns it. */
export function stamp<T>(obj: T, generation: number | undefined): T {
  if (generation === undefined || obj === null || typeof obj !== "object") return obj;
  stamps.set(obj as object, generation);
  if (Array.isArray(obj)) for (const x of obj) if (x && typeof x === "object") stamps.set(x, generation);
  return obj;
}

/** The generation an object was computed under (undefined when not stamped). */
export function generationOf(obj: unknown): number | undefined {
  return obj !== null && typeof obj === "object" ? stamps.get(obj as object) : undefined;
}

/**
 * Throw if the parameters cell's last run failed (`what` names the refused action,
 * e.g. "exportFigure(01-accuracy-vs-eta)").
 * @throws NoiselabError subject "parameters"
 */
export function assertParametersOk(what: string): void {
  const f = state().failed;
  if (f) {
    throw new NoiselabError(
      `${what} refused: the parameters cell failed (${f.message}). ` +
        "Every later cell would run with the previous values; fix the parameters cell and run it again.",
      "parameters",
    );
  }
}

function describeChange(old: Record<string, unknown> | undefined, now: Record<string, unknown> | undefined) {
  if (!old || !now) return "";
  const diff = Object.keys(now).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} ${JSON.stringify(old[k])} → ${JSON.stringify(now[k])}`);
  return diff.length ? ` (changed since: ${diff.join(", ")})` : "";
}

const history = new Map<number, Record<string, unknown>>();

/** Remember the values of a generation (for "what changed" in messages). */
export function rememberValues(generation: number, values: Record<string, unknown>): void {
  history.set(generation, values);
  for (const k of history.keys()) if (k < generation - 20) history.delete(k);
}

/**
 * Check that the parameters `p` and every stamped input of a computing call
 * are of the current generation.
 * @param what the call, e.g. "sweepVariant"
 * @param p the parameters object the cell passes (stamped by `nb.parameters`)
 * @param inputs named inputs, e.g. `{ trained: tv, dataset }`
 * @throws NoiselabError (subject "parameters") naming the stale input and what to re-run
 */
export function assertCurrent(what: string, p: unknown, inputs: Record<string, unknown> = {}): void {
  const gp = generationOf(p);
  if (gp === undefined) return; // not a notebook session: plain resolveParams (CLI, tests)
  assertParametersOk(what);
  const s = state();
  const cur = s.current?.generation;
  if (cur !== undefined && gp !== cur) {
    throw new NoiselabError(
      `${what}: stale parameters. This cell's parameters object is from an earlier run of the parameters cell` +
        `${describeChange(history.get(gp), history.get(cur))}. Re-run the parameters cell and the cells below it ` +
        "in order (Cell > Run All Below).",
      "parameters",
    );
  }
  state().lastComputed = gp; // a computation of this generation starts (assertFreshOutput's reference)
  for (const [name, v] of Object.entries(inputs)) {
    const gens = [v, ...(Array.isArray(v) ? v : [])].map(generationOf);
    const g = gens.find((x) => x !== undefined && x !== gp);
    if (g !== undefined) {
      throw new NoiselabError(
        `${what}: \`${name}\` was computed with the parameters of an earlier run of the parameters cell` +
          `${describeChange(history.get(g), history.get(gp))}. Re-run the cells below the parameters cell in ` +
          "order (Cell > Run All Below) so that every result uses the parameters shown.",
        "parameters",
      );
    }
  }
}

/**
 * Check before showing or exporting `obj` (a figure, a table, rows) that it is not older than the
 * parameters cell: refuses when the parameters cell failed; when `obj` carries a generation stamp,
 * when that is not the current one; when it carries none, when the parameters cell was re-run with
 * new values after the latest computation started (the cell would show results of the previous
 * values next to the new parameters). Outside notebooks (no parameters cell ever ran) it does nothing.
 * @throws NoiselabError (subject "parameters")
 */
export function assertFreshOutput(what: string, obj?: unknown): void {
  assertParametersOk(what);
  const s = state();
  const cur = s.current?.generation;
  if (cur === undefined) return;
  const g = generationOf(obj);
  const from = g ?? s.lastComputed;
  if (from === undefined || from === cur) return;
  throw new NoiselabError(
    `${what} refused: what this cell shows was computed with the parameters of an earlier run of the ` +
      `parameters cell${describeChange(history.get(from), history.get(cur))}. Re-run the cells below the ` +
      "parameters cell in order (Cell > Run All Below).",
    "parameters",
  );
}
