/**
 * Models: CIFAR ResNet v1 (option-A or 1x1-projection shortcuts) and CIFAR VGG, with BN on all,
 * none or some convolutions; tfjs-format save/load; batched inference.
 *
 * ```ts
 * const m = buildModel("resnet20", { bn: "none", seed: 1 });
 * modelInfo("resnet20").params;            // 269722
 * modelInfo("resnet20", { shortcut: "projection" }).params; // 272378
 * await saveModel(m, "results/models/x");  // model.json + weights.bin
 * const acc = await accuracy(m, xTest, yTest);
 * ```
 * @module
 */
export * from "./bn.ts";
export type { ModelOptions, ResidualInit, ResNetShortcut } from "./common.ts";
export {
  DEFAULT_BN_EPSILON,
  DEFAULT_BN_MOMENTUM,
  DEFAULT_SHORTCUT,
  RESIDUAL_INITS,
  RESNET_SHORTCUTS,
} from "./common.ts";
export * from "./build.ts";
export { resnetConvs, resnetShortcutConvs } from "./resnet.ts";
export { VGG_CFGS, vggConvs } from "./vgg.ts";
export * from "./io.ts";
export * from "./predict.ts";
export { type LayerFlops, type ModelFlops, modelFlops } from "./flops.ts";
