/**
 * Compute-backend selection for noiselab.
 *
 * `initBackend("auto")` tries, in order: `tensorflow` (tfjs-node, only if it can
 * be imported — optional, never a dependency), `onednn` (the native oneDNN
 * engine in `./engine/`, if its shim loads), `wasm` (tfjs-backend-wasm via
 * `./wasm/mod.ts`), then the pure-JS `cpu` backend. A one-line notice goes to stderr
 * whenever it falls back. `NOISELAB_BACKEND` forces a backend; `NOISELAB_THREADS`
 * sets the thread count.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { NoiselabError } from "../util/errors.ts";
import { ENGINE_NAME, engineUnavailableReason, registerEngine } from "./engine/register.ts";
import { engineThreads } from "./engine/ffi.ts";
import { engineReductionThreads } from "./engine/reduction.ts";
export { engineReductionThreads };

/** The compute backends noiselab knows. */
export type BackendName = "tensorflow" | "onednn" | "wasm" | "cpu";

/** What ran the numbers (goes into provenance). */
export interface BackendInfo {
  name: BackendName;
  threads: number;
  detail: string;
}

/**
 * tfjs-backend-cpu prints a banner on stderr ("Hi, looks like you are running TensorFlow.js in Node.js. To
 * speed things up dramatically, install our node backend ...") the first time a MathBackendCPU stores a
 * tensor where tfjs sees Node (Deno included): once per backend instance, behind its `firstUse` flag.
 * noiselab chooses and reports its backend itself ({@link initBackend}: a notice on every fallback, the
 * name in every provenance line), so the banner only adds noise to its output. The onednn engine always
 * turned it off for itself (lib/backend/engine/register.ts), but a tensor made before `initBackend` lands on
 * tfjs's default `cpu` backend and printed it (the `noise` CLI loads the stored model first), as did
 * `--backend cpu`. The decision is made here, once, for every MathBackendCPU (the cpu backend and the
 * engine built on it): the flag reads false for good. This module is imported by every CLI command, the
 * notebooks' helpers and the study workers before any tensor exists.
 */
function silenceCpuBanner(): void {
  Object.defineProperty(MathBackendCPU.prototype, "firstUse", {
    configurable: true,
    get: () => false,
    // the constructor's `this.firstUse = true` (and the engine's own `= false`) land here
    set: () => {},
  });
}
silenceCpuBanner();

const NAMES: readonly BackendName[] = ["tensorflow", "onednn", "wasm", "cpu"];
let current: BackendInfo | null = null;
let currentPref: string | null = null;

function notice(msg: string) {
  console.error(`[noiselab] ${msg}`);
}

async function tryTensorflow(): Promise<BackendInfo | string> {
  try {
    // A bare specifier resolved only through deno.json's import map: where tfjs-node
    // can be installed, add "@tensorflow/tfjs-node" to deno.json's imports. (An
    // "npm:" specifier here would make Deno fetch it from the registry and edit
    // deno.lock at run time.) Built at run time so type checking does not need it.
    const spec = ["@tensorflow", "tfjs-node"].join("/");
    await import(spec);
    if (!(await tf.setBackend("tensorflow"))) return "tfjs-node imported but its backend did not initialise";
    return { name: "tensorflow", threads: engineThreads(), detail: "tfjs-node (libtensorflow)" };
  } catch (e) {
    return `tfjs-node not importable (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`;
  }
}

async function tryOnednn(): Promise<BackendInfo | string> {
  const nat = registerEngine();
  if (!nat) return engineUnavailableReason() ?? "engine unavailable";
  if (!(await tf.setBackend(ENGINE_NAME))) return "onednn backend did not initialise";
  return { name: "onednn", threads: nat.threads, detail: `noiselab oneDNN engine: ${nat.detail}` };
}

async function tryWasm(): Promise<BackendInfo | string> {
  try {
    const w = await import("./wasm/mod.ts");
    const ok = await w.initWasmBackend();
    if (!ok) return `wasm backend failed: ${w.wasmInitError?.() ?? "unknown"}`;
    const info = w.wasmBackendInfo?.();
    return { name: "wasm", threads: info?.threads ?? 1, detail: info?.detail ?? "tfjs-backend-wasm" };
  } catch (e) {
    return `wasm backend unavailable (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`;
  }
}

async function tryCpu(): Promise<BackendInfo | string> {
  if (!(await tf.setBackend("cpu"))) return "cpu backend did not initialise";
  return { name: "cpu", threads: 1, detail: `tfjs-backend-cpu ${tf.version_core} (pure JS)` };
}

const TRY: Record<BackendName, () => Promise<BackendInfo | string>> = {
  tensorflow: tryTensorflow,
  onednn: tryOnednn,
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Selects and initialises the compute backend. `pref` (default: env
 * `NOISELAB_BACKEND`, else "auto") names one backend — which must then work, or a
 * NoiselabError is thrown — or "auto" for the first that works in the order
 * tensorflow > onednn > wasm > cpu. Idempotent: a second call with the same
 * preference returns the current backend.
 */
export async function initBackend(pref?: BackendName | "auto"): Promise<BackendName> {
  const env = Deno.env.get("NOISELAB_BACKEND");
  const want = canonicalBackendName(pref ?? (env != null && env !== "" ? env : "auto"));
  if (want !== "auto" && !NAMES.includes(want as BackendName)) {
    throw new NoiselabError(
      `backend preference "${want}"${pref == null ? " (from NOISELAB_BACKEND)" : ""} is not one of auto, ${
        NAMES.join(", ")
      }`,
    );
  }
  try {
    engineThreads(); // validates NOISELAB_THREADS before any work
  } catch (e) {
    throw new NoiselabError(e instanceof Error ? e.message : String(e));
  }
  if (
    current && (want === currentPref || want === current.name) && tf.getBackend() === backendKey(current.name)
  ) {
    return current.name;
  }
  if (want !== "auto") {
    const r = await TRY[want as BackendName]();
    if (typeof r === "string") throw new NoiselabError(`backend "${want}" requested but unavailable: ${r}`);
    current = r;
    currentPref = want;
    return r.name;
  }
  const reasons: string[] = [];
  for (const name of NAMES) {
    const r = await TRY[name]();
    if (typeof r !== "string") {
      // tensorflow is optional and absent almost everywhere: only mention the
      // fallback when a faster engine than the chosen one was expected to work
      const relevant = reasons.filter((x) => !x.startsWith("tensorflow:"));
      if (relevant.length > 0) notice(`using the ${r.name} backend (${relevant.join("; ")})`);
      current = r;
      currentPref = want;
      return r.name;
    }
    reasons.push(`${name}: ${r}`);
  }
  throw new NoiselabError(`no compute backend could be initialised: ${reasons.join("; ")}`);
}

/**
 * The engine was called `noiselab` (the project's name) until 2026-11; it is now `onednn`, after what it
 * is. The old name is accepted everywhere a backend is chosen (flag, env var, notebook parameter), with a
 * one-time notice, and returns the new one.
 */
export function canonicalBackendName<T extends string>(name: T): T | "onednn" {
  if ((name as string) !== "noiselab") return name;
  if (!renamedNoticeShown) {
    renamedNoticeShown = true;
    notice('backend "noiselab" is now called "onednn" (the same engine); please use the new name');
  }
  return "onednn";
}
let renamedNoticeShown = false;

/**
 * The backend's name inside stored ids (model ids, sweep keys). The oneDNN engine keeps its former name
 * `noiselab` there, so that models and sweeps stored before the rename stay valid (renaming changes no
 * number); with a reduction layout other than the default 2 ({@link engineReductionThreads}) it is
 * `noiselab-r<N>` (those weights differ in the last bits). Every other name is itself.
 */
export function storeBackendName(name: string): string {
  if (name !== "onednn" && name !== "noiselab") return name;
  const r = engineReductionThreads();
  return r === 2 ? "noiselab" : `noiselab-r${r}`;
}

function backendKey(name: BackendName): string {
  return name === "onednn" ? ENGINE_NAME : name;
}

/** The backend selected by {@link initBackend} (name, threads, detail), for provenance. */
export function backendInfo(): BackendInfo {
  if (current && tf.getBackend() === backendKey(current.name)) return { ...current };
  const name = tf.getBackend() as BackendName;
  return {
    name,
    threads: name === "cpu" ? 1 : 0,
    detail: `tfjs backend "${name}" (not selected by initBackend)`,
  };
}
