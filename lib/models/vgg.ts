/**
 * VGG for CIFAR (Simonyan & Zisserman 2015 configurations A/B/D/E = VGG
 * 11/13/16/19), in the common CIFAR variant (kuangliu/pytorch-cifar
 * `vgg.py`, chengyangfu/pytorch-vgg-cifar10 without its hidden dense
 * layers): 3x3 "same" convs (+BN +ReLU), 2x2 max-pooling after each stage
 * (five, so 32x32 → 1x1), flatten, and ONE dense layer 512 → classes
 * (named `fc`). VGG16 with BN: 14.73M trainable parameters.
 *
 * Without BN, convs get biases and every conv/dense kernel is He-normal.
 * @module
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";
import { type ConvSpec, ConvStack, heNormal, relu, type ResolvedModelOptions } from "./common.ts";

/** The standard configurations: channel counts, "M" = 2x2 max-pool. */
export const VGG_CFGS: Record<number, (number | "M")[]> = {
  11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
  19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
};

function cfgFor(depth: number): (number | "M")[] {
  const cfg = VGG_CFGS[depth];
  if (!cfg) throw new NoiselabError(`model: VGG depth must be 11, 13, 16 or 19, got ${depth}`, "model");
  return cfg;
}

/** Channel count of a cfg entry scaled to `width` (64 = standard). */
function scaled(c: number, width: number): number {
  return Math.max(1, Math.round((c * width) / 64));
}

/** The convolutions of a CIFAR VGG in forward order. */
export function vggConvs(depth: number, width = 64, inChannels = 3): ConvSpec[] {
  const convs: ConvSpec[] = [];
  let c = inChannels;
  for (const v of cfgFor(depth)) {
    if (v === "M") continue;
    const out = scaled(v, width);
    convs.push({ inChannels: c, outChannels: out, kernel: 3 });
    c = out;
  }
  return convs;
}

/** Feature size entering the classifier (channels of the last conv; spatial is 1x1 at 32x32 input). */
export function vggFeatures(depth: number, width: number, inputShape: [number, number, number]): number {
  checkVGGInput(inputShape);
  const last = vggConvs(depth, width).at(-1)!.outChannels;
  return last * (inputShape[0] / 32) * (inputShape[1] / 32);
}

function checkVGGInput([h, w]: [number, number, number]): void {
  if (h % 32 !== 0 || w % 32 !== 0) {
    throw new NoiselabError(
      `inputShape: VGG needs H and W divisible by 32 (five 2x2 pools), got ${h}x${w}`,
      "inputShape",
    );
  }
}

/** Build a CIFAR VGG of the given depth with the resolved options and BN mask. */
export function buildVGG(depth: number, o: ResolvedModelOptions, bnMask: boolean[]): tfl.LayersModel {
  const cfg = cfgFor(depth);
  const [h, w] = o.inputShape;
  if (h % 32 !== 0 || w % 32 !== 0) {
    throw new NoiselabError(
      `inputShape: VGG needs H and W divisible by 32 (five 2x2 pools), got ${h}x${w}`,
      "inputShape",
    );
  }
  const stack = new ConvStack(bnMask, o);
  const input = tfl.input({ shape: o.inputShape, name: "input" });
  let x: tfl.SymbolicTensor = input;
  let pool = 0;
  for (const v of cfg) {
    if (v === "M") {
      x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${++pool}` }).apply(
        x,
      ) as tfl.SymbolicTensor;
    } else {
      x = relu(stack.conv(x, scaled(v, o.width)), `act${stack.count}`);
    }
  }
  x = tfl.layers.flatten({ name: "flatten" }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({
    units: o.numClasses,
    name: "fc",
    kernelInitializer: heNormal(o.seed, "fc"),
    biasInitializer: "zeros",
  }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: `vgg${depth}` });
}
