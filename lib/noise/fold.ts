/**
 * Fold BatchNorm into the preceding convolution (or dense) layer, as analog
 * hardware would: y = gamma·(Wx + b − mean)/sqrt(var + eps) + beta becomes
 * W' = W·s, b' = (b − mean)·s + beta with s = gamma/sqrt(var + eps) per
 * output channel. The folded model has no BN layers; its convs have biases.
 *
 * Hand-written because tfjs has no graph-rewriting utility: the model config
 * is edited (BN layers removed, their consumers rewired to the conv) and
 * rebuilt with `LayersModel.fromConfig`.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { NoiselabError } from "../util/errors.ts";

// [layerName, nodeIndex, tensorIndex, kwargs]
type NodeRef = [string, number, number, Record<string, unknown>?];
interface LayerCfg {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inboundNodes: NodeRef[][];
}
interface ModelCfg {
  name: string;
  layers: LayerCfg[];
  inputLayers: NodeRef[];
  outputLayers: NodeRef[];
}

function named(model: tfl.LayersModel, layer: string, kind: string): Float32Array | undefined {
  const w = model.getLayer(layer).weights.find((v) => v.originalName.split("/").at(-1) === kind);
  return w ? (w.read().dataSync() as Float32Array).slice() : undefined;
}

/**
 * A new model in which every BatchNormalization layer is folded into the
 * conv/dense layer that feeds it. Clean predictions equal the original's
 * within float tolerance. The original model is untouched. Throws a
 * NoiselabError naming `model` when a BN cannot be folded (its input is not a
 * linear conv/dense used only by that BN, or it normalises another axis).
 * A model without BN comes back as a copy.
 */
export function foldBatchNorm(model: tfl.LayersModel): tfl.LayersModel {
  const cfg = JSON.parse(JSON.stringify(model.getConfig())) as ModelCfg;
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const uses = new Map<string, number>();
  const countUse = (r: NodeRef) => uses.set(r[0], (uses.get(r[0]) ?? 0) + 1);
  for (const l of cfg.layers) for (const node of l.inboundNodes) node.forEach(countUse);
  cfg.outputLayers.forEach(countUse);

  const alias = new Map<string, NodeRef>(); // bn name → the conv output that replaces it
  const folded = new Map<string, string>(); // conv name → bn name
  for (const l of cfg.layers) {
    if (l.className !== "BatchNormalization") continue;
    const bad = (why: string) => new NoiselabError(`model: cannot fold BN layer ${l.name}: ${why}`, "model");
    if (l.inboundNodes.length !== 1 || l.inboundNodes[0].length !== 1) {
      throw bad("it is shared or has several inputs");
    }
    const src = l.inboundNodes[0][0];
    const conv = byName.get(src[0]);
    if (!conv || !["Conv2D", "Dense"].includes(conv.className)) {
      throw bad(`its input ${src[0]} is not a Conv2D/Dense layer`);
    }
    if ((conv.config.activation ?? "linear") !== "linear") throw bad(`${conv.name} has an activation`);
    if (uses.get(conv.name) !== 1 || conv.inboundNodes.length !== 1) {
      throw bad(`${conv.name} feeds other layers too`);
    }
    const axis = l.config.axis as number | number[];
    const rank = conv.className === "Conv2D" ? 4 : 2;
    const ax = Array.isArray(axis) ? axis : [axis];
    if (ax.length !== 1 || !(ax[0] === -1 || ax[0] === rank - 1)) {
      throw bad(`axis ${JSON.stringify(axis)} is not the channel axis`);
    }
    if (conv.className === "Conv2D" && conv.config.dataFormat === "channelsFirst") {
      throw bad("channels-first conv");
    }
    alias.set(l.name, [src[0], src[1], src[2], src[3]]);
    folded.set(conv.name, l.name);
    conv.config.useBias = true;
    conv.config.biasInitializer = { className: "Zeros", config: {} };
  }
  const rewire = (r: NodeRef): NodeRef => {
    const a = alias.get(r[0]);
    return a ? [a[0], a[1], a[2], r[3] ?? a[3]] : r;
  };
  cfg.layers = cfg.layers.filter((l) => !alias.has(l.name));
  for (const l of cfg.layers) l.inboundNodes = l.inboundNodes.map((node) => node.map(rewire));
  cfg.outputLayers = cfg.outputLayers.map((r) => {
    const a = alias.get(r[0]);
    return a ? [a[0], a[1], a[2]] : r;
  });

  // deno-lint-ignore no-explicit-any
  const out = (tfl.LayersModel as any).fromConfig(tfl.LayersModel, cfg) as tfl.LayersModel;
  for (const layer of out.layers) {
    const bn = folded.get(layer.name);
    if (!bn) {
      const src = model.getLayer(layer.name).getWeights();
      if (src.length) layer.setWeights(src);
      continue;
    }
    const bnLayer = model.getLayer(bn);
    const eps = (bnLayer.getConfig() as { epsilon: number }).epsilon;
    const kernel = named(model, layer.name, "kernel")!;
    const outC = (model.getLayer(layer.name).getConfig() as { filters?: number; units?: number }).filters ??
      (model.getLayer(layer.name).getConfig() as { units: number }).units;
    const bias = named(model, layer.name, "bias") ?? new Float32Array(outC);
    const gamma = named(model, bn, "gamma");
    const beta = named(model, bn, "beta");
    const mean = named(model, bn, "moving_mean")!;
    const variance = named(model, bn, "moving_variance")!;
    const s = new Float64Array(outC);
    for (let c = 0; c < outC; c++) s[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + eps);
    const k2 = new Float32Array(kernel.length);
    for (let i = 0; i < kernel.length; i++) k2[i] = kernel[i] * s[i % outC]; // output channel is the last axis
    const b2 = new Float32Array(outC);
    for (let c = 0; c < outC; c++) b2[c] = (bias[c] - mean[c]) * s[c] + (beta ? beta[c] : 0);
    const kShape = model.getLayer(layer.name).getWeights()[0].shape;
    const kt = tf.tensor(k2, kShape);
    const bt = tf.tensor1d(b2);
    layer.setWeights([kt, bt]);
    tf.dispose([kt, bt]);
  }
  const meta = (model.getUserDefinedMetadata() ?? {}) as Record<string, unknown>;
  const nl = (meta.noiselab ?? {}) as Record<string, unknown>;
  out.setUserDefinedMetadata({ ...meta, noiselab: { ...nl, foldedBN: [...folded.values()] } });
  return out;
}
