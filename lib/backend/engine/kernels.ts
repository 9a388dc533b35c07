/**
 * Native kernels of the `noiselab` backend. Each one handles the common case
 * (float32, NHWC, 1-D bias...) through the oneDNN shim and hands anything else to
 * the tfjs `cpu` backend's kernel of the same name, which runs fine on this
 * backend because it shares the CPU backend's storage.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type { NativeEngine } from "./ffi.ts";

type TensorInfo = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelFn = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** Custom kernel: ReLU gradient `dx = x > 0 ? dy : 0` (inputs dy, x). */
export const RELU_GRAD = "NoiselabReluGrad";
/** Custom kernel: gradient of a mean over the spatial axes of an NHWC tensor (input dy; attr xShape). */
export const SPATIAL_MEAN_GRAD = "NoiselabSpatialMeanGrad";
/** Custom kernel: training batch norm over all but the last axis (inputs x, gamma, beta; attr epsilon) → [y, mean, variance]. */
export const BN_TRAIN = "NoiselabBatchNormTrain";
/** Custom kernel: gradient of {@link BN_TRAIN} (inputs dy, x, mean, variance, gamma; attr epsilon) → [dx, dgamma, dbeta]. */
export const BN_TRAIN_GRAD = "NoiselabBatchNormTrainGrad";

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Per-kernel call counts and time (ms), split into native calls and cpu fallbacks. */
export interface KernelStat {
  native: number;
  fallback: number;
  ms: number;
}
const stats = new Map<string, KernelStat>();
let profiling = false;
/** With NOISELAB_PROFILE_SHAPES=1 the profile is split by input shapes. */
const withShapes = (() => {
  try {
    return Deno.env.get("NOISELAB_PROFILE_SHAPES") === "1";
  } catch {
    return false;
  }
})();

/** Turns per-kernel counting/timing on or off (off by default; on costs a performance.now() per kernel). Resets the counters. */
export function setEngineProfiling(on: boolean): void {
  profiling = on;
  stats.clear();
}

/** Counters collected since {@link setEngineProfiling}(true), by kernel name. */
export function engineStats(): Record<string, KernelStat> {
  return Object.fromEntries([...stats].map(([k, v]) => [k, { ...v }]));
}

function record(name: string, native: boolean, ms: number) {
  let st = stats.get(name);
  if (!st) stats.set(name, st = { native: 0, fallback: 0, ms: 0 });
  if (native) st.native++;
  else st.fallback++;
  st.ms += ms;
}

/** Wraps a kernel so that, while profiling, calls and time are recorded (native unless the cpu fallback ran). */
export function profiled(
  name: string,
  fn: KernelFn,
  isNative: boolean,
  fallbackFlag?: { used: boolean },
): KernelFn {
  return (args) => {
    if (!profiling) return fn(args);
    if (fallbackFlag) fallbackFlag.used = false;
    const t0 = performance.now();
    const r = fn(args);
    const key = withShapes
      ? `${name}[${Object.values(args.inputs).map((t) => t ? t.shape.join("x") : "-").join(",")}]`
      : name;
    record(key, isNative && !(fallbackFlag?.used ?? false), performance.now() - t0);
    return r;
  };
}

/** Builds the kernel table for a loaded shim. `cpuKernel(name)` gives the fallback. */
/** True for a Mean over axes 1 and 2 of a rank-4 tensor (what the native Mean handles). */
export function isSpatialMean(shape: number[], axis: number | number[]): boolean {
  if (shape.length !== 4) return false;
  const ax = tf.util.parseAxisParam(axis, shape).slice().sort();
  return ax.length === 2 && ax[0] === 1 && ax[1] === 2;
}

export function makeKernels(nat: NativeEngine, cpuKernel: (name: string) => KernelFn): tf.KernelConfig[] {
  const s = nat.sym;
  const vals = (b: unknown, t: TensorInfo | undefined | null): Float32Array | null =>
    t == null ? null : ((b as MathBackendCPU).data.get(t.dataId).values as Float32Array);
  const out = (b: unknown, shape: number[], values: Float32Array): TensorInfo =>
    (b as MathBackendCPU).makeTensorInfo(shape, "float32", values);
  const alloc = (b: unknown, n: number): Float32Array =>
    (b as { alloc?: (n: number) => Float32Array }).alloc?.(n) ?? new Float32Array(n);
  const f32 = (...ts: (TensorInfo | undefined | null)[]) =>
    ts.every((t) => t == null || t.dtype === "float32");

  function convParams(ci: tf.backend_util.Conv2DInfo, hasBias: boolean, act: number): Int32Array {
    return Int32Array.of(
      ci.batchSize,
      ci.inHeight,
      ci.inWidth,
      ci.inChannels,
      ci.filterHeight,
      ci.filterWidth,
      ci.outChannels,
      ci.outHeight,
      ci.outWidth,
      ci.strideHeight,
      ci.strideWidth,
      ci.dilationHeight,
      ci.dilationWidth,
      ci.padInfo.top,
      ci.padInfo.left,
      ci.padInfo.bottom,
      ci.padInfo.right,
      hasBias ? 1 : 0,
      act,
    );
  }
  // oneDNN needs output sizes consistent with the padding; tfjs' numeric padding
  // uses the filter height for both axes, so non-square filters can disagree:
  // those (rare) cases stay on the cpu kernel.
  const consistent = (i: number, k: number, d: number, s: number, p0: number, p1: number, o: number) =>
    Math.floor((i + p0 + p1 - ((k - 1) * d + 1)) / s) + 1 === o;
  const nativeConvOk = (ci: tf.backend_util.Conv2DInfo) =>
    ci.dataFormat === "channelsLast" &&
    consistent(
      ci.inHeight,
      ci.filterHeight,
      ci.dilationHeight,
      ci.strideHeight,
      ci.padInfo.top,
      ci.padInfo.bottom,
      ci.outHeight,
    ) &&
    consistent(
      ci.inWidth,
      ci.filterWidth,
      ci.dilationWidth,
      ci.strideWidth,
      ci.padInfo.left,
      ci.padInfo.right,
      ci.outWidth,
    );
  const fmt = (a: Record<string, any>) => tf.backend_util.convertConv2DDataFormat(a.dataFormat ?? "NHWC");

  const kernels: Record<string, KernelFn> = {};
  const fallbackUsed = { used: false };
  const cpuKernelTracked = (name: string): KernelFn => {
    const cpu = cpuKernel(name); // already wrapped to disown aliased outputs
    return (args) => {
      fallbackUsed.used = true;
      return cpu(args);
    };
  };
  const fb = (name: string, native: KernelFn): KernelFn => {
    const cpu = cpuKernelTracked(name);
    return (args) => native(args) ?? cpu(args);
  };

  // ---------------------------------------------------------------- convolutions
  function convFwd(name: string, withFused: boolean): KernelFn {
    const cpu = cpuKernelTracked(name);
    return (args) => {
      const { x, filter } = args.inputs as Record<string, TensorInfo>;
      const bias = withFused ? (args.inputs as Record<string, TensorInfo>).bias : undefined;
      const a = args.attrs as Record<string, any>;
      const activation = withFused ? (a.activation ?? "linear") : "linear";
      const act = activation === "linear" ? 0 : activation === "relu" ? 1 : -1;
      const ci = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        a.strides,
        a.dilations,
        a.pad,
        a.dimRoundingMode,
        false,
        fmt(a),
      );
      const biasOk = bias == null || (bias.shape.length === 1 && bias.shape[0] === ci.outChannels);
      if (
        act < 0 || !biasOk || x.shape.length !== 4 || !f32(x, filter, bias) || !nativeConvOk(ci) ||
        (withFused && (args.inputs as Record<string, TensorInfo>).preluActivationWeights != null)
      ) return cpu(args);
      const y = alloc(args.backend, size(ci.outShape));
      const p = convParams(ci, bias != null, act);
      nat.check(
        s.nl_conv_fwd(vals(args.backend, x)!, vals(args.backend, filter)!, vals(args.backend, bias), y, p),
        name,
      );
      return out(args.backend, ci.outShape, y);
    };
  }
  kernels["Conv2D"] = convFwd("Conv2D", false);
  kernels["FusedConv2D"] = convFwd("FusedConv2D", true);

  kernels["Conv2DBackpropInput"] = fb("Conv2DBackpropInput", (args) => {
    const { dy, filter } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    const ci = tf.backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as [number, number, number, number],
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      fmt(a),
    );
    if (!f32(dy, filter) || !nativeConvOk(ci) || a.inputShape.length !== 4) return null as any;
    const dx = alloc(args.backend, size(a.inputShape));
    nat.check(
      s.nl_conv_bwd_data(vals(args.backend, dy)!, vals(args.backend, filter)!, dx, convParams(ci, false, 0)),
      "Conv2DBackpropInput",
    );
    return out(args.backend, [...a.inputShape], dx);
  });

  kernels["Conv2DBackpropFilter"] = fb("Conv2DBackpropFilter", (args) => {
    const { x, dy } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    const ci = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      a.filterShape,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      fmt(a),
    );
    if (!f32(x, dy) || !nativeConvOk(ci) || x.shape.length !== 4) return null as any;
    const dw = alloc(args.backend, size(a.filterShape));
    nat.check(
      s.nl_conv_bwd_weights(vals(args.backend, x)!, vals(args.backend, dy)!, dw, convParams(ci, false, 0)),
      "Conv2DBackpropFilter",
    );
    return out(args.backend, [...a.filterShape], dw);
  });

  // ---------------------------------------------------------------- matmul
  function matmul(name: string, fused: boolean): KernelFn {
    const cpu = cpuKernelTracked(name);
    return (args) => {
      const inp = args.inputs as Record<string, TensorInfo>;
      const { a, b } = inp;
      const bias = fused ? inp.bias : undefined;
      const at = args.attrs as Record<string, any>;
      const activation = fused ? (at.activation ?? "linear") : "linear";
      const act = activation === "linear" ? 0 : activation === "relu" ? 1 : -1;
      const ra = a.shape.length, rb = b.shape.length;
      if (
        act < 0 || ra < 2 || ra !== rb || !f32(a, b, bias) || (fused && inp.preluActivationWeights != null)
      ) {
        return cpu(args);
      }
      const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
      if (batchA.some((d, i) => d !== batchB[i])) return cpu(args);
      const M = at.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
      const K = at.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
      const K2 = at.transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
      const N = at.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
      if (K !== K2) return cpu(args);
      if (bias != null && !(bias.shape.length === 1 && bias.shape[0] === N)) return cpu(args);
      const B = size(batchA);
      const c = alloc(args.backend, B * M * N);
      const p = Int32Array.of(
        B,
        M,
        N,
        K,
        at.transposeA ? 1 : 0,
        at.transposeB ? 1 : 0,
        bias != null ? 1 : 0,
        act,
      );
      nat.check(
        s.nl_matmul(vals(args.backend, a)!, vals(args.backend, b)!, vals(args.backend, bias), c, p),
        name,
      );
      return out(args.backend, [...batchA, M, N], c);
    };
  }
  kernels["BatchMatMul"] = matmul("BatchMatMul", false);
  kernels["_FusedMatMul"] = matmul("_FusedMatMul", true);

  // ---------------------------------------------------------------- pooling
  function poolParams(pi: tf.backend_util.Conv2DInfo, isMax: boolean): Int32Array {
    return Int32Array.of(
      pi.batchSize,
      pi.inHeight,
      pi.inWidth,
      pi.inChannels,
      pi.filterHeight,
      pi.filterWidth,
      pi.outHeight,
      pi.outWidth,
      pi.strideHeight,
      pi.strideWidth,
      pi.padInfo.top,
      pi.padInfo.left,
      pi.padInfo.bottom,
      pi.padInfo.right,
      isMax ? 1 : 0,
    );
  }
  function poolInfo(xShape: number[], a: Record<string, any>) {
    return tf.backend_util.computePool2DInfo(
      xShape as [number, number, number, number],
      a.filterSize,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
  }
  for (const isMax of [true, false]) {
    const fwdName = isMax ? "MaxPool" : "AvgPool";
    const bwdName = isMax ? "MaxPoolGrad" : "AvgPoolGrad";
    kernels[fwdName] = fb(fwdName, (args) => {
      const { x } = args.inputs as Record<string, TensorInfo>;
      if (x.shape.length !== 4 || !f32(x)) return null as any;
      const pi = poolInfo(x.shape, args.attrs as Record<string, any>);
      if (pi.filterHeight === 1 && pi.filterWidth === 1 && pi.strideHeight === 1 && pi.strideWidth === 1) {
        return null as any;
      }
      const y = alloc(args.backend, size(pi.outShape));
      nat.check(s.nl_pool_fwd(vals(args.backend, x)!, y, poolParams(pi, isMax)), fwdName);
      return out(args.backend, pi.outShape, y);
    });
    kernels[bwdName] = fb(bwdName, (args) => {
      const { dy, input } = args.inputs as Record<string, TensorInfo>;
      if (input.shape.length !== 4 || !f32(dy, input)) return null as any;
      const pi = poolInfo(input.shape, args.attrs as Record<string, any>);
      // tfjs' AvgPoolGrad divides by the full window size even where the window
      // overlaps the padding (its forward does not): keep tfjs' semantics there.
      const padded = pi.padInfo.top + pi.padInfo.bottom + pi.padInfo.left + pi.padInfo.right > 0;
      if (!isMax && padded) return null as any;
      if (pi.filterHeight === 1 && pi.filterWidth === 1 && pi.strideHeight === 1 && pi.strideWidth === 1) {
        return null as any;
      }
      const dx = alloc(args.backend, size(input.shape));
      nat.check(
        s.nl_pool_bwd(vals(args.backend, input)!, vals(args.backend, dy)!, dx, poolParams(pi, isMax)),
        bwdName,
      );
      return out(args.backend, [...input.shape], dx);
    });
  }

  // ---------------------------------------------------------------- batch norm
  kernels["FusedBatchNorm"] = fb("FusedBatchNorm", (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo>;
    const C = x.shape[x.shape.length - 1];
    const is1d = (t?: TensorInfo) => t == null || (t.shape.length === 1 && t.shape[0] === C);
    if (!f32(x, mean, variance, offset, scale) || ![mean, variance, offset, scale].every(is1d)) {
      return null as any;
    }
    const n = size(x.shape);
    const y = alloc(args.backend, n);
    const eps = (args.attrs as Record<string, any>).varianceEpsilon ?? 0.001;
    const b = args.backend;
    nat.check(
      s.nl_bn_infer(
        vals(b, x)!,
        vals(b, mean)!,
        vals(b, variance)!,
        vals(b, scale),
        vals(b, offset),
        y,
        BigInt(n / C),
        C,
        eps,
        0,
      ),
      "FusedBatchNorm",
    );
    return out(b, [...x.shape], y);
  });

  kernels[BN_TRAIN] = (args) => {
    const { x, gamma, beta } = args.inputs as Record<string, TensorInfo>;
    const C = x.shape[x.shape.length - 1];
    const n = size(x.shape);
    const y = alloc(args.backend, n), mean = alloc(args.backend, C), v = alloc(args.backend, C);
    const b = args.backend;
    const eps = (args.attrs as Record<string, any>).epsilon as number;
    nat.check(
      s.nl_bn_train_fwd(vals(b, x)!, vals(b, gamma), vals(b, beta), y, mean, v, BigInt(n / C), C, eps),
      BN_TRAIN,
    );
    return [out(b, [...x.shape], y), out(b, [C], mean), out(b, [C], v)];
  };
  kernels[BN_TRAIN_GRAD] = (args) => {
    const { dy, x, mean, variance, gamma } = args.inputs as Record<string, TensorInfo>;
    const C = x.shape[x.shape.length - 1];
    const n = size(x.shape);
    const dx = alloc(args.backend, n), dg = alloc(args.backend, C), db = alloc(args.backend, C);
    const b = args.backend;
    const eps = (args.attrs as Record<string, any>).epsilon as number;
    nat.check(
      s.nl_bn_train_bwd(
        vals(b, dy)!,
        vals(b, x)!,
        vals(b, mean)!,
        vals(b, variance)!,
        vals(b, gamma),
        dx,
        dg,
        db,
        BigInt(n / C),
        C,
        eps,
      ),
      BN_TRAIN_GRAD,
    );
    return [out(b, [...x.shape], dx), out(b, [C], dg), out(b, [C], db)];
  };

  // ---------------------------------------------------------------- element-wise
  const MIN_NATIVE = 1024; // below this the JS loop is as fast as a call into the shim
  kernels["Relu"] = fb("Relu", (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const n = size(x.shape);
    if (x.dtype !== "float32" || n < MIN_NATIVE) return null as any;
    const y = alloc(args.backend, n);
    nat.check(s.nl_relu(vals(args.backend, x)!, y, BigInt(n)), "Relu");
    return out(args.backend, [...x.shape], y);
  });
  kernels[RELU_GRAD] = (args) => {
    const { dy, x } = args.inputs as Record<string, TensorInfo>;
    const n = size(x.shape);
    const dx = alloc(args.backend, n);
    nat.check(s.nl_relu_grad(vals(args.backend, dy)!, vals(args.backend, x)!, dx, BigInt(n)), RELU_GRAD);
    return out(args.backend, [...x.shape], dx);
  };
  // [kernel, op code, op code with the operands swapped (the broadcast one first)]
  const binOps: [string, number, number][] = [["Add", 0, 0], ["Sub", 1, 3], ["Multiply", 2, 2]];
  for (const [name, op0, swappedOp] of binOps) {
    kernels[name] = fb(name, (args) => {
      let { a, b } = args.inputs as Record<string, TensorInfo>;
      let op = op0;
      if (!f32(a, b)) return null as any;
      const na = size(a.shape), nb = size(b.shape);
      if (na < MIN_NATIVE && nb < MIN_NATIVE) return null as any;
      const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
      const lastAxisBcast = (big: TensorInfo, small: TensorInfo) =>
        small.shape.length <= big.shape.length &&
        (size(small.shape) === 1 ||
          (small.shape.length >= 1 && small.shape.slice(0, -1).every((d) => d === 1) &&
            small.shape[small.shape.length - 1] === big.shape[big.shape.length - 1]));
      if (!sameShape) {
        if (lastAxisBcast(a, b)) { /* a big, b per-channel */ }
        else if (lastAxisBcast(b, a)) [a, b, op] = [b, a, swappedOp];
        else return null as any;
      }
      const n = size(a.shape);
      const y = alloc(args.backend, n);
      nat.check(
        s.nl_binary(vals(args.backend, a)!, vals(args.backend, b)!, y, BigInt(n), BigInt(size(b.shape)), op),
        name,
      );
      return out(args.backend, [...a.shape], y);
    });
  }

  kernels["Sum"] = fb("Sum", (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    const r = x.shape.length;
    if (x.dtype !== "float32" || r < 2) return null as any;
    const axes = tf.util.parseAxisParam(a.axis, x.shape).slice().sort((p, q) => p - q);
    // only the "sum over every axis but the last" pattern (bias gradients, BN-like reductions)
    if (axes.length !== r - 1 || axes.some((ax, i) => ax !== i)) return null as any;
    const C = x.shape[r - 1];
    const n = size(x.shape);
    if (n < MIN_NATIVE) return null as any;
    const y = alloc(args.backend, C);
    nat.check(s.nl_sum_rows(vals(args.backend, x)!, y, BigInt(n / C), BigInt(C)), "Sum");
    const shape = a.keepDims ? [...Array(r - 1).fill(1), C] : [C];
    return out(args.backend, shape, y);
  });

  // ---------------------------------------------------------------- data movement
  const to4 = (shape: number[]) => Int32Array.from([...Array(4 - shape.length).fill(1), ...shape]);
  kernels["Slice"] = fb("Slice", (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    if (x.dtype !== "float32" || x.shape.length > 4 || x.shape.length === 0) return null as any;
    const [begin, sz] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin, a.size);
    const n = size(sz);
    if (n < MIN_NATIVE) return null as any;
    const y = alloc(args.backend, n);
    nat.check(
      s.nl_slice4(
        vals(args.backend, x)!,
        y,
        to4(x.shape),
        to4(begin).map((v, i) => i < 4 - begin.length ? 0 : v),
        to4(sz),
      ),
      "Slice",
    );
    return out(args.backend, [...sz], y);
  });
  kernels["PadV2"] = fb("PadV2", (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    const r = x.shape.length;
    if (x.dtype !== "float32" || r > 4 || r === 0) return null as any;
    const pads = a.paddings as [number, number][];
    const ys = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
    const n = size(ys);
    if (n < MIN_NATIVE) return null as any;
    const before = Int32Array.from([...Array(4 - r).fill(0), ...pads.map((p) => p[0])]);
    const y = alloc(args.backend, n);
    nat.check(
      s.nl_pad4(vals(args.backend, x)!, y, to4(x.shape), before, to4(ys), a.constantValue ?? 0),
      "PadV2",
    );
    return out(args.backend, ys, y);
  });
  kernels["Mean"] = fb("Mean", (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const a = args.attrs as Record<string, any>;
    if (x.dtype !== "float32" || !isSpatialMean(x.shape, a.axis)) return null as any;
    const [N, H, W, C] = x.shape;
    const y = alloc(args.backend, N * C);
    nat.check(s.nl_spatial_mean(vals(args.backend, x)!, y, BigInt(N), BigInt(H * W), BigInt(C)), "Mean");
    return out(args.backend, a.keepDims ? [N, 1, 1, C] : [N, C], y);
  });
  // Concat: plain typed-array copies (Float32Array.set is a memcpy) into a
  // recycled output; the cpu kernel allocates a fresh zeroed array, which for
  // lib/train's flat parameter vector (15M floats for VGG16) costs more than the copy.
  kernels["Concat"] = fb("Concat", (args) => {
    const ts = Object.values(args.inputs) as TensorInfo[];
    if (ts.length === 0 || !ts.every((t) => t.dtype === "float32")) return null as any;
    const r = ts[0].shape.length;
    if (r === 0) return null as any;
    const axis = tf.util.parseAxisParam((args.attrs as Record<string, any>).axis, ts[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(ts.map((t) => t.shape), axis);
    const n = size(outShape);
    if (n < MIN_NATIVE) return null as any;
    const outer = size(outShape.slice(0, axis));
    const inners = ts.map((t) => size(t.shape.slice(axis)));
    const rowLen = inners.reduce((a, b) => a + b, 0);
    const y = alloc(args.backend, n);
    const srcs = ts.map((t) => vals(args.backend, t)!);
    for (let o = 0; o < outer; o++) {
      let off = o * rowLen;
      for (let i = 0; i < srcs.length; i++) {
        const len = inners[i];
        if (len > 0) y.set(srcs[i].subarray(o * len, (o + 1) * len), off);
        off += len;
      }
    }
    return out(args.backend, outShape, y);
  });

  kernels[SPATIAL_MEAN_GRAD] = (args) => {
    const { dy } = args.inputs as Record<string, TensorInfo>;
    const [N, H, W, C] = (args.attrs as Record<string, any>).xShape as number[];
    const dx = alloc(args.backend, N * H * W * C);
    nat.check(
      s.nl_spatial_mean_grad(vals(args.backend, dy)!, dx, BigInt(N), BigInt(H * W), BigInt(C)),
      SPATIAL_MEAN_GRAD,
    );
    return out(args.backend, [N, H, W, C], dx);
  };

  return Object.entries(kernels).map(([kernelName, kernelFunc]) => ({
    kernelName,
    backendName: "noiselab",
    kernelFunc: profiled(kernelName, kernelFunc, true, fallbackUsed) as unknown as tf.KernelFunc,
  }));
}
