/**
 * The convolution gradients of the `wasm` backend, as *forward* convolutions
 * (which run on XNNPACK). The shipped wasm backend has no
 * `Conv2DBackpropFilter` kernel and its `Conv2DBackpropInput` is a plain
 * scalar loop; both gradients are convolutions themselves:
 *
 * - dW = conv(transpose(x) as [Ci, H, W, N], transpose(dy) as [OH, OW, N, Co],
 *   stride 1, dilation = stride, the forward padding) → [Ci, KH, KW, Co] → HWIO.
 * - dX = conv(zero-dilated dy, flipped and transposed filter [KH, KW, Co, Ci],
 *   stride 1, padding KH-1-padTop / KW-1-padLeft).
 *
 * Written by hand because no kept library provides these kernels for tfjs-wasm;
 * they are compositions of the backend's own kernels (Conv2D, Transpose,
 * Reverse, PadV2, Reshape, Slice), so no new native code is involved.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";

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
export function conv2dBackpropFilter(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
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
export function conv2dBackpropInput(args: { inputs: any; backend: any; attrs: any }): TensorInfo {
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
