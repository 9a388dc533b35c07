/**
 * The tfjs `wasm` backend (`@tensorflow/tfjs-backend-wasm`, XNNPACK, SIMD) made
 * able to train CIFAR ResNet/VGG models under Deno.
 *
 * The shipped wasm backend has no `Conv2DBackpropFilter` kernel and its
 * `Conv2DBackpropInput` is a plain scalar loop. Both convolution gradients are
 * convolutions themselves, so this module registers replacements that express
 * them as *forward* convolutions (which run on XNNPACK):
 *
 * - dW = conv(transpose(x) as [Ci, H, W, N], transpose(dy) as [OH, OW, N, Co],
 *   stride 1, dilation = stride, the forward padding) → [Ci, KH, KW, Co] → HWIO.
 * - dX = conv(zero-dilated dy, flipped and transposed filter [KH, KW, Co, Ci],
 *   stride 1, padding KH-1-padTop / KW-1-padLeft).
 *
 * Written by hand because no kept library provides these kernels for tfjs-wasm;
 * they are compositions of the backend's own kernels (Conv2D, Transpose,
 * Reverse, PadV2, Reshape, Slice), so no new native code is involved.
 *
 * Threads: tfjs-wasm turns its threaded build off when it detects Node (Deno
 * counts), and forcing it on hung in tests here, so this module never forces
 * it: the backend runs the single-threaded SIMD build.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../util/paths.ts";

/** Options for {@link initWasmBackend}. */
export interface WasmInitOptions {
  /**
   * Requested thread count. Only honoured by tfjs-wasm's threaded build, which
   * tfjs never selects under Deno (and this module does not force it), so in
   * practice the backend runs with 1 thread; {@link wasmBackendInfo} reports
   * the real count.
   */
  threads?: number;
  /** Folder holding `tfjs-backend-wasm*.wasm`; default: the project's node_modules copy. */
  wasmDir?: string;
}

/** What the wasm backend actually runs with (for provenance). */
export interface WasmBackendInfo {
  threads: number;
  simd: boolean;
  detail: string;
}

// deno-lint-ignore no-explicit-any
type WasmModule = any;

let wasmPkg: WasmModule | null = null;
let info: WasmBackendInfo | null = null;
let kernelsRegistered = false;
let lastError: string | null = null;

/** Default location of the `.wasm` binaries: the npm package's `dist/` in the project's node_modules. */
export function defaultWasmDir(): string {
  return join(projectRoot, "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist");
}

/**
 * Registers the `wasm` backend with the training kernels of this module and
 * makes it the active tfjs backend.
 *
 * Never throws: returns `false` (leaving the previous backend active) when the
 * package, its `.wasm` binary or WebAssembly SIMD is unavailable or the backend
 * fails to initialise; {@link wasmInitError} then says why.
 *
 * Call it once per process, before creating tensors that should live on wasm.
 * Calling it again is cheap and just re-selects `wasm`.
 */
export async function initWasmBackend(opts: WasmInitOptions = {}): Promise<boolean> {
  const previous = safeGetBackend();
  try {
    if (wasmPkg == null) {
      const dir = opts.wasmDir ?? defaultWasmDir();
      const simdFile = join(dir, "tfjs-backend-wasm-simd.wasm");
      if (!existsSync(simdFile)) {
        lastError = `wasm binary not found: ${simdFile}`;
        return false;
      }
      wasmPkg = await import("@tensorflow/tfjs-backend-wasm");
      // Under Deno the emscripten loader reads the binary with node:fs, so a
      // plain folder path (with trailing separator) works as the prefix.
      try {
        wasmPkg.setWasmPaths(dir.endsWith("/") ? dir : dir + "/");
      } catch (e) {
        // setWasmPaths refuses once the backend was initialised; harmless then.
        if (!String((e as Error)?.message ?? e).includes("before")) throw e;
      }
      if (opts.threads != null && Number.isInteger(opts.threads) && opts.threads > 0) {
        // Only affects the threaded build (never chosen under Deno); not forced.
        wasmPkg.setThreadsCount(opts.threads);
      }
    }
    registerWasmTrainingKernels();
    const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    if (!simd) {
      lastError = "WebAssembly SIMD is not supported by this runtime";
      return false;
    }
    const ok = await tf.setBackend("wasm");
    if (!ok || tf.getBackend() !== "wasm") {
      lastError = "tf.setBackend('wasm') failed (see the warning tfjs printed)";
      if (previous && previous !== "wasm") await tf.setBackend(previous).catch(() => false);
      return false;
    }
    await tf.ready();
    const threads = Number(wasmPkg.getThreadsCount?.() ?? 1);
    info = {
      threads,
      simd: true,
      detail: `tfjs-backend-wasm ${wasmPkg.version_wasm ?? "?"} (XNNPACK, SIMD, ${threads} thread${
        threads === 1 ? "" : "s"
      }; conv gradients as forward convs)`,
    };
    lastError = null;
    return true;
  } catch (e) {
    lastError = String((e as Error)?.message ?? e);
    try {
      if (previous && previous !== "wasm" && tf.getBackend() !== previous) await tf.setBackend(previous);
    } catch { /* keep whatever backend is active */ }
    return false;
  }
}

/** Why the last {@link initWasmBackend} call returned false (null after a success). */
export function wasmInitError(): string | null {
  return lastError;
}

/** Thread count, SIMD and a one-line description of the wasm backend; null before a successful init. */
export function wasmBackendInfo(): WasmBackendInfo | null {
  return info;
}

function safeGetBackend(): string | null {
  try {
    // getBackend() initialises the best backend when none is set; avoid that.
    return tf.engine().backendName ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Kernels

type Backend = { disposeData(dataId: object): boolean } & Record<string, unknown>;
type Pads = { top: number; bottom: number; left: number; right: number };

function kernel(name: string): KernelFunc {
  const k = tf.getKernel(name, "wasm");
  if (k == null) throw new Error(`wasm backend has no ${name} kernel`);
  return k.kernelFunc;
}

function run(
  name: string,
  inputs: Record<string, TensorInfo>,
  backend: Backend,
  attrs: object = {},
): TensorInfo {
  return kernel(name)({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
}

/** Runs the wasm Conv2D kernel (NHWC, stride 1) with explicit non-negative padding. */
function conv(
  x: TensorInfo,
  filter: TensorInfo,
  dilation: [number, number],
  p: Pads,
  backend: Backend,
): TensorInfo {
  return run(tf.Conv2D, { x, filter }, backend, {
    strides: [1, 1],
    dilations: dilation,
    pad: [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]],
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
  });
}

/**
 * Crops leading/trailing rows/columns of an NHWC tensor where a pad would be
 * negative, returning the tensor (possibly new) and the clamped pads.
 */
function clampPads(x: TensorInfo, p: Pads, backend: Backend, owned: TensorInfo[]): [TensorInfo, Pads] {
  if (p.top >= 0 && p.bottom >= 0 && p.left >= 0 && p.right >= 0) return [x, p];
  const [n, h, w, c] = x.shape;
  const t0 = Math.max(0, -p.top), b0 = Math.max(0, -p.bottom);
  const l0 = Math.max(0, -p.left), r0 = Math.max(0, -p.right);
  const sliced = run(tf.Slice, { x }, backend, {
    begin: [0, t0, l0, 0],
    size: [n, h - t0 - b0, w - l0 - r0, c],
  });
  owned.push(sliced);
  return [sliced, {
    top: Math.max(0, p.top),
    bottom: Math.max(0, p.bottom),
    left: Math.max(0, p.left),
    right: Math.max(0, p.right),
  }];
}

function convInfoOf(
  xShape: number[],
  filterShape: number[],
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat?: string; dimRoundingMode?: unknown },
  kernelName: string,
) {
  if (attrs.dataFormat != null && attrs.dataFormat !== "NHWC") {
    throw new Error(`wasm ${kernelName}: only NHWC is supported, got dataFormat '${attrs.dataFormat}'`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as never,
    attrs.dimRoundingMode as never,
    false,
    "channelsLast",
  );
}

/** dW for NHWC x [N,H,W,Ci], dy [N,OH,OW,Co] → [KH,KW,Ci,Co], as one forward conv. */
function conv2dBackpropFilter(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const ci = convInfoOf(x.shape, attrs.filterShape, attrs, "Conv2DBackpropFilter");
  const [kh, kw] = [ci.filterHeight, ci.filterWidth];
  const [sh, sw] = [ci.strideHeight, ci.strideWidth];
  const [h, w] = [x.shape[1], x.shape[2]];
  const [oh, ow] = [dy.shape[1], dy.shape[2]];
  const owned: TensorInfo[] = [];
  try {
    // The padded input rows actually read by the forward conv: (OH-1)*s + KH.
    const pads: Pads = {
      top: ci.padInfo.top,
      left: ci.padInfo.left,
      bottom: (oh - 1) * sh + kh - ci.padInfo.top - h,
      right: (ow - 1) * sw + kw - ci.padInfo.left - w,
    };
    const xt = run(tf.Transpose, { x }, backend, { perm: [3, 1, 2, 0] }); // [Ci,H,W,N]
    owned.push(xt);
    const [xc, p] = clampPads(xt, pads, backend, owned);
    const dyt = run(tf.Transpose, { x: dy }, backend, { perm: [1, 2, 0, 3] }); // [OH,OW,N,Co]
    owned.push(dyt);
    const g = conv(xc, dyt, [sh, sw], p, backend); // [Ci,KH,KW,Co]
    owned.push(g);
    if (g.shape[1] !== kh || g.shape[2] !== kw) {
      throw new Error(`wasm Conv2DBackpropFilter: internal shape ${g.shape} for filter ${attrs.filterShape}`);
    }
    return run(tf.Transpose, { x: g }, backend, { perm: [1, 2, 0, 3] }); // [KH,KW,Ci,Co]
  } finally {
    for (const t of owned) backend.disposeData(t.dataId);
  }
}

/** dX for NHWC dy [N,OH,OW,Co], filter [KH,KW,Ci,Co] → inputShape [N,H,W,Ci], as one forward conv. */
function conv2dBackpropInput(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const inputShape = attrs.inputShape as number[];
  const ci = convInfoOf(inputShape, filter.shape, attrs, "Conv2DBackpropInput");
  const [kh, kw] = [ci.filterHeight, ci.filterWidth];
  const [sh, sw] = [ci.strideHeight, ci.strideWidth];
  const [n, h, w] = [inputShape[0], inputShape[1], inputShape[2]];
  const [oh, ow, co] = [dy.shape[1], dy.shape[2], dy.shape[3]];
  const owned: TensorInfo[] = [];
  try {
    let d = dy;
    let dh = oh, dw = ow; // extent of the (dilated) dy rows/cols that the conv sees
    if (sh > 1 || sw > 1) {
      // Zero-dilate: [N,OH,1,OW,1,Co] padded to [N,OH,sh,OW,sw,Co] → [N,OH*sh,OW*sw,Co].
      // (The trailing sh-1 zero rows are trimmed by the padding below.)
      const r = run(tf.Reshape, { x: dy }, backend, { shape: [n, oh, 1, ow, 1, co] });
      owned.push(r);
      const pd = run(tf.PadV2, { x: r }, backend, {
        paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
        constantValue: 0,
      });
      owned.push(pd);
      d = run(tf.Reshape, { x: pd }, backend, { shape: [n, oh * sh, ow * sw, co] });
      owned.push(d);
      dh = oh * sh;
      dw = ow * sw;
    }
    const top = kh - 1 - ci.padInfo.top;
    const left = kw - 1 - ci.padInfo.left;
    const pads: Pads = { top, left, bottom: h + kh - 1 - top - dh, right: w + kw - 1 - left - dw };
    const [dc, p] = clampPads(d, pads, backend, owned);
    // Filter: flip spatially, swap in/out channels → [KH,KW,Co,Ci].
    const fr = run(tf.Reverse, { x: filter }, backend, { dims: [0, 1] });
    owned.push(fr);
    const ft = run(tf.Transpose, { x: fr }, backend, { perm: [0, 1, 3, 2] });
    owned.push(ft);
    const out = conv(dc, ft, [1, 1], p, backend);
    if (out.shape[1] !== h || out.shape[2] !== w) {
      owned.push(out);
      throw new Error(`wasm Conv2DBackpropInput: internal shape ${out.shape} for input ${inputShape}`);
    }
    return out;
  } finally {
    for (const t of owned) backend.disposeData(t.dataId);
  }
}

let stockTile: KernelFunc | null = null;

/**
 * Tile with a fast path for "broadcast a small tensor over leading axes"
 * (x.shape[i] == 1 wherever reps[i] > 1, and no reps after the first
 * non-unit axis of x): the output is x's data repeated, written with
 * doubling `copyWithin` (memcpy speed). tfjs-core's BatchNorm gradient tiles
 * [1,1,1,C] to [N,H,W,C] that way for every BN layer, and the stock wasm Tile
 * (a per-element index loop) then cost ~1/3 of a ResNet-20 training step.
 * Any other pattern goes to the stock kernel.
 */
function tileKernel(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const reps = attrs.reps as number[];
  const rank = x.shape.length;
  let k = 0; // first axis with x.shape[k] != 1
  while (k < rank && x.shape[k] === 1) k++;
  let fast = x.dtype !== "string" && reps.length === rank;
  for (let i = k; i < rank && fast; i++) if (reps[i] !== 1) fast = false;
  if (!fast) return stockTile!(args as never) as TensorInfo;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype) as TensorInfo;
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const n = src.length, total = dst.length;
  if (n === 0 || total === 0) return out;
  dst.set(src, 0);
  let filled = n;
  while (filled < total) {
    const len = Math.min(filled, total - filled);
    dst.copyWithin(filled, 0, len);
    filled += len;
  }
  return out;
}

/**
 * MaxPoolGrad: the stock wasm kernel gives wrong gradients for even window
 * sizes (2x2 windows, stride 1 or 2, checked against a hand-written oracle and
 * the cpu backend; 3x3 is right), which would silently break VGG training.
 * This replacement is a plain JS loop over the wasm heap with the cpu
 * backend's semantics: each output's gradient goes to the first maximum of its
 * window in row-major scan order (ties, e.g. zeros after ReLU, get one share).
 */
function maxPoolGradKernel(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const input = inputs.input as TensorInfo;
  const ci = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const dx = backend.makeOutput(input.shape, "float32") as TensorInfo;
  // Views taken after makeOutput (an allocation may grow and detach the heap).
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);
  const { batchSize: nB, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = ci;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = ci;
  const padTop = ci.padInfo.top, padLeft = ci.padInfo.left;
  const best = new Float32Array(C);
  const bestIdx = new Int32Array(C);
  for (let b = 0; b < nB; b++) {
    const xBase = b * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - padTop;
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * sw - padLeft;
        best.fill(-Infinity);
        bestIdx.fill(-1);
        for (let kh = 0; kh < fh; kh += dh) {
          const h = h0 + kh;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < fw; kw += dw) {
            const w = w0 + kw;
            if (w < 0 || w >= W) continue;
            const base = xBase + (h * W + w) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c];
              if (v > best[c]) {
                best[c] = v;
                bestIdx[c] = base + c;
              }
            }
          }
        }
        const o = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) if (bestIdx[c] >= 0) dxv[bestIdx[c]] += dyv[o + c];
      }
    }
  }
  return dx;
}

const stockKernels: Record<string, KernelFunc> = {};

/**
 * Sum / Mean with a fast path for reducing the *leading* axes of a float32
 * tensor (x viewed as [R, C] → column sums): BatchNorm's statistics and its
 * gradient reduce NHWC over [0,1,2], for which the stock wasm kernel first
 * transposes the whole tensor. This JS loop accumulates in float64 (like the
 * cpu backend) straight from the wasm heap, ~3x faster. Anything else goes to
 * the stock kernel.
 */
function leadingReduce(kind: "Sum" | "Mean") {
  return (args: { inputs: any; backend: any; attrs: any }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x as TensorInfo;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape).slice().sort((a, b) => a - b);
    const k = axes.length;
    let leading = x.dtype === "float32" && k > 0 && k < rank;
    for (let i = 0; i < k && leading; i++) if (axes[i] !== i) leading = false;
    if (!leading) return stockKernels[kind](args as never) as TensorInfo;
    const R = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
    const C = x.shape.slice(k).reduce((a, b) => a * b, 1);
    const outShape = attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    const out = backend.makeOutput(outShape, "float32") as TensorInfo;
    const xv = backend.typedArrayFromHeap(x) as Float32Array;
    const ov = backend.typedArrayFromHeap(out) as Float32Array;
    const acc = new Float64Array(C);
    for (let r = 0, base = 0; r < R; r++, base += C) {
      for (let c = 0; c < C; c++) acc[c] += xv[base + c];
    }
    const scale = kind === "Mean" ? 1 / R : 1;
    for (let c = 0; c < C; c++) ov[c] = acc[c] * scale;
    return out;
  };
}

/** The kernels this module adds to (or replaces in) the `wasm` backend. */
export const wasmTrainingKernels: KernelConfig[] = [
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: "wasm",
    kernelFunc: conv2dBackpropFilter as KernelFunc,
  },
  { kernelName: tf.Conv2DBackpropInput, backendName: "wasm", kernelFunc: conv2dBackpropInput as KernelFunc },
  { kernelName: tf.Tile, backendName: "wasm", kernelFunc: tileKernel as KernelFunc },
  { kernelName: tf.MaxPoolGrad, backendName: "wasm", kernelFunc: maxPoolGradKernel as KernelFunc },
  { kernelName: tf.Sum, backendName: "wasm", kernelFunc: leadingReduce("Sum") as KernelFunc },
  { kernelName: tf.Mean, backendName: "wasm", kernelFunc: leadingReduce("Mean") as KernelFunc },
];

/**
 * Registers {@link wasmTrainingKernels} for the `wasm` backend (idempotent).
 * Needs `@tensorflow/tfjs-backend-wasm` imported; {@link initWasmBackend} does both.
 */
export function registerWasmTrainingKernels(): void {
  if (kernelsRegistered) return;
  // Keep the stock kernels we fall back to (and their setupFuncs, which the
  // engine runs when the backend initialises).
  const setups: Record<string, KernelConfig["setupFunc"]> = {};
  for (const name of [tf.Tile, tf.Sum, tf.Mean]) {
    const stock = tf.getKernel(name, "wasm");
    if (stock == null) throw new Error(`wasm backend has no ${name} kernel`);
    stockKernels[name] = stock.kernelFunc;
    setups[name] = stock.setupFunc;
  }
  stockTile = stockKernels[tf.Tile];
  for (const k of wasmTrainingKernels) {
    if (tf.getKernel(k.kernelName, k.backendName) != null) tf.unregisterKernel(k.kernelName, k.backendName);
    tf.registerKernel(setups[k.kernelName] ? { ...k, setupFunc: setups[k.kernelName] } : k);
  }
  kernelsRegistered = true;
}
