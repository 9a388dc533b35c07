/**
 * Convolution kernels of the `noiselab` backend: Conv2D, FusedConv2D (bias,
 * ReLU) and both convolution gradients, through oneDNN (NHWC).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type KernelContext, type KernelFn, type KernelTable, size, type TensorInfo } from "./context.ts";

/** The shim's parameter block of a convolution. */
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

/** Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter. */
export function convKernels(ctx: KernelContext): KernelTable {
  const { nat, s, vals, out, alloc, f32, fb } = ctx;

  function convFwd(name: string, withFused: boolean): KernelFn {
    const cpu = ctx.cpu(name);
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

  return {
    Conv2D: convFwd("Conv2D", false),
    FusedConv2D: convFwd("FusedConv2D", true),

    Conv2DBackpropInput: fb("Conv2DBackpropInput", (args) => {
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
      if (!f32(dy, filter) || !nativeConvOk(ci) || a.inputShape.length !== 4) return null;
      const dx = alloc(args.backend, size(a.inputShape));
      nat.check(
        s.nl_conv_bwd_data(
          vals(args.backend, dy)!,
          vals(args.backend, filter)!,
          dx,
          convParams(ci, false, 0),
        ),
        "Conv2DBackpropInput",
      );
      return out(args.backend, [...a.inputShape], dx);
    }),

    Conv2DBackpropFilter: fb("Conv2DBackpropFilter", (args) => {
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
      if (!f32(x, dy) || !nativeConvOk(ci) || x.shape.length !== 4) return null;
      const dw = alloc(args.backend, size(a.filterShape));
      nat.check(
        s.nl_conv_bwd_weights(vals(args.backend, x)!, vals(args.backend, dy)!, dw, convParams(ci, false, 0)),
        "Conv2DBackpropFilter",
      );
      return out(args.backend, [...a.filterShape], dw);
    }),
  };
}
