/**
 * CIFAR ResNet v1 (He et al. 2016, sec. 4.2), as in akamaster's
 * pytorch_resnet_cifar10 `resnet.py`: a 3x3 stem conv, three stages of `n`
 * basic blocks (widths 16/32/64, scaled by `width/16`; stages 2 and 3 start
 * with stride 2), global average pooling and one dense layer. Depth = 6n+2.
 *
 * Option-A shortcuts are parameter-free: `x[:, ::2, ::2, :]` zero-padded on
 * the channel axis. They are built from two *standard* tfjs layers so that
 * saved models need no custom classes:
 * - `AveragePooling2D({poolSize: 1, strides: 2})` takes every second pixel
 *   (an average over a 1x1 window is the pixel itself);
 * - `ZeroPadding2D({padding: [[0, 0], [before, after]], dataFormat: "channelsFirst"})`
 *   applied to an NHWC tensor: read as channels-first, the tensor's "width"
 *   axis is our channel axis, so this pads channels with zeros
 *   (before = floor((out-in)/2), as akamaster's `planes//4` on each side).
 *
 * With `shortcut: "projection"` the shortcut of those two blocks is instead
 * a 1x1 stride-2 convolution with a bias, no BN, no activation
 * (`short{b}_conv`), as in the Keras CIFAR-10 ResNet v1 example. It is not a
 * BN slot: the `conv{i}` numbering and the BN indices are the same for both
 * shortcuts. A 1x1 stride-2 window needs no padding, so it samples the same
 * (even) pixels as option A and as the strided 3x3 branch conv.
 *
 * Without BN: convs get biases, and each residual branch's last conv is
 * zero-initialised (when it has no BN), so every block starts as the identity
 * — the core idea of Fixup (Zhang et al. 2019) without its scalar biases and
 * rescaling. This lets deep BN-free ResNets train.
 * @module
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import {
  type ConvSpec,
  ConvStack,
  heNormal,
  relu,
  type ResNetShortcut,
  type ResolvedModelOptions,
} from "./common.ts";

/** n (blocks per stage) for a ResNet depth 6n+2; throws a NoiselabError naming `model` otherwise. */
export function resnetBlocks(depth: number): number {
  if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
    throw new NoiselabError(
      `model: ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got ${depth}`,
      "model",
    );
  }
  return (depth - 2) / 6;
}

/** The convolutions of a CIFAR ResNet in forward order (conv1 = stem). */
export function resnetConvs(depth: number, width = 16, inChannels = 3): ConvSpec[] {
  const n = resnetBlocks(depth);
  const convs: ConvSpec[] = [{ inChannels, outChannels: width, kernel: 3 }];
  let c = width;
  for (let stage = 0; stage < 3; stage++) {
    const out = width * 2 ** stage;
    for (let b = 0; b < n; b++) {
      convs.push({ inChannels: c, outChannels: out, kernel: 3 });
      convs.push({ inChannels: out, outChannels: out, kernel: 3 });
      c = out;
    }
  }
  return convs;
}

/**
 * The projection-shortcut convolutions of a CIFAR ResNet (1x1, with bias, no
 * BN), in forward order: one per block whose shape changes (the first block
 * of stages 2 and 3), none for option A.
 */
export function resnetShortcutConvs(depth: number, width = 16, shortcut: ResNetShortcut = "A"): ConvSpec[] {
  resnetBlocks(depth);
  if (shortcut === "A") return [];
  return [1, 2].map((stage) => ({
    inChannels: width * 2 ** (stage - 1),
    outChannels: width * 2 ** stage,
    kernel: 1,
  }));
}

/** Build a CIFAR ResNet of the given depth with the resolved options and BN mask (length = 6n+1). */
export function buildResNet(depth: number, o: ResolvedModelOptions, bnMask: boolean[]): tfl.LayersModel {
  const n = resnetBlocks(depth);
  const stack = new ConvStack(bnMask, o);
  const input = tfl.input({ shape: o.inputShape, name: "input" });
  let x = relu(stack.conv(input, o.width), `act${stack.count}`);
  let c = o.width;
  let block = 0;
  for (let stage = 0; stage < 3; stage++) {
    const out = o.width * 2 ** stage;
    for (let b = 0; b < n; b++) {
      block++;
      const stride = stage > 0 && b === 0 ? 2 : 1;
      let y = relu(stack.conv(x, out, { stride }), `act${stack.count}`);
      y = stack.conv(y, out, { residualGain: o.residualInit === "zero" ? 0 : 1 / Math.sqrt(3 * n) });
      let s = x;
      if ((stride !== 1 || c !== out) && o.shortcut === "projection") {
        // 1x1 kernel: "valid" and "same" pad nothing here, the window sits on the even pixels
        s = tfl.layers.conv2d({
          name: `short${block}_conv`,
          filters: out,
          kernelSize: 1,
          strides: stride,
          padding: "valid",
          useBias: true,
          kernelInitializer: heNormal(o.seed, `short${block}_conv`),
          biasInitializer: "zeros",
        }).apply(s) as tfl.SymbolicTensor;
      } else if (stride !== 1 || c !== out) {
        if (stride !== 1) {
          s = tfl.layers.averagePooling2d({
            poolSize: 1,
            strides: stride,
            padding: "valid",
            name: `short${block}_pool`,
          })
            .apply(s) as tfl.SymbolicTensor;
        }
        if (c !== out) {
          const before = Math.floor((out - c) / 2);
          s = tfl.layers.zeroPadding2d({
            padding: [[0, 0], [before, out - c - before]],
            dataFormat: "channelsFirst",
            name: `short${block}_pad`,
          }).apply(s) as tfl.SymbolicTensor;
        }
      }
      x = tfl.layers.add({ name: `add${block}` }).apply([y, s]) as tfl.SymbolicTensor;
      x = relu(x, `block${block}_out`);
      c = out;
    }
  }
  x = tfl.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({
    units: o.numClasses,
    name: "fc",
    kernelInitializer: heNormal(o.seed, "fc"),
    biasInitializer: "zeros",
  }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: `resnet${depth}` });
}
