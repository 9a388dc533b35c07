/**
 * The kernels this folder adds to (or replaces in) the `wasm` backend for
 * training, and their registration: the convolution gradients (conv_grads.ts),
 * a MaxPoolGrad that is right for 2x2 windows, and fast paths for Tile and for
 * Sum/Mean over leading axes (BatchNorm's statistics and gradient).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { conv2dBackpropFilter, conv2dBackpropInput } from "./conv_grads.ts";

let kernelsRegistered = false;

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
