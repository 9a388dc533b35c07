/**
 * Fused inference for noise sweeps: a model's forward pass with every
 * conv → BN (→ ReLU) chain folded into ONE convolution with a bias and a
 * fused ReLU (tfjs `fused.conv2d`, which the `onednn` engine runs as one
 * oneDNN convolution with a bias and a ReLU post-op), and conv (+ bias) →
 * ReLU chains fused likewise. Every other layer runs as the layer itself
 * (inference mode).
 *
 * The fold is computed from the model's CURRENT weights when the plan is
 * built ({@link compileFusedInference}), so a sweep that builds a plan per
 * draw folds AFTER the noise has been added — also noise on BN statistics.
 *
 * Semantics vs the unfused model: BN in inference is
 * `beta + (x − mean)·gamma/sqrt(var + eps)`; folded, the conv computes
 * `conv(x, W·s) + (b − mean)·s + beta` with `s = gamma/sqrt(var + eps)`.
 * These agree up to float rounding (NOT bitwise: different operation order),
 * so callers opt in (lib/noise `SweepOptions.fastPath`). NaN/Inf: a chain
 * whose fold is not clean — any `s`, `W·s` or bias that is not finite (a
 * negative noisy variance gives NaN), or a nonzero weight whose product with
 * `s` underflows to 0 — is NOT folded: that conv and BN run unfused, exactly
 * as in the model, so NaN propagates as it does there. A clean fold keeps
 * non-finite activations' behaviour (one finite, nonzero scale per output
 * channel keeps every term's sign and zero pattern), and the engine's fused
 * ReLU keeps NaN (it falls back to an unfused ReLU on non-finite inputs).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";

/** A tfjs-layers layer (the package exports the class only as a type of `LayersModel.layers`). */
type Layer = tfl.LayersModel["layers"][number];
import { NoiselabError } from "../util/errors.ts";
import { countImages } from "./predict.ts";
import { type BuiltNativePlan, nativeInferencePlan } from "./native_plan.ts";
import type { NativePlan } from "../backend/engine/plan.ts";

/** One step of a {@link FusedPlan} (exported for native_plan.ts, which translates the steps). */
export type FusedStep = Step;
type Step =
  | {
    kind: "conv";
    /** Name of the layer whose output this step produces (the BN or ReLU at the end of the chain). */
    out: string;
    input: string;
    filter: tf.Tensor4D;
    bias: tf.Tensor1D | null;
    relu: boolean;
    strides: [number, number];
    pad: "same" | "valid";
    dilations: [number, number];
    /** Layer names this step covers (conv, BN, activation). */
    covers: string[];
  }
  | { kind: "layer"; out: string; inputs: string[]; layer: Layer };

/** A compiled forward pass: see {@link compileFusedInference}. Dispose it after use. */
export interface FusedPlan {
  /** Logits of one NHWC batch (a new tensor; the caller disposes it). */
  run(x: tf.Tensor4D): tf.Tensor;
  /** Chains folded/fused and chains left unfused because their fold was not clean (names of the BN layers). */
  stats: { foldedBN: number; fusedRelu: number; unfoldedBN: string[] };
  /**
   * The whole pass as one native plan of the engine (native_plan.ts: residual
   * add + ReLU fused too, weights reordered once, bf16 activations under bf16
   * precision), or null where it runs layer by layer; `nativeSkipReason` says why.
   */
  native: NativePlan | null;
  nativeSkipReason: string | null;
  /**
   * Logits of `n` NHWC images `x` into `out` through the native plan. Returns
   * false (out unspecified) when there is no native plan or when the inputs of
   * a fused ReLU were not finite or large enough for a partial sum to overflow
   * (lib/backend/engine plan.ts); then use {@link FusedPlan.run}, whose NaN
   * semantics are tfjs'. {@link fusedPredictLogits} does so image by image.
   */
  runNative(x: Float32Array, n: number, out: Float32Array): boolean;
  dispose(): void;
}

interface GraphLayer {
  layer: Layer;
  inputs: string[];
}

function graphOf(model: tfl.LayersModel): { order: GraphLayer[]; uses: Map<string, number>; output: string } {
  if (model.inputLayers.length !== 1 || model.outputLayers.length !== 1) {
    throw new NoiselabError("model: fused inference needs one input and one output", "model");
  }
  const order: GraphLayer[] = [];
  const uses = new Map<string, number>();
  for (const layer of model.layers) {
    // deno-lint-ignore no-explicit-any
    const nodes = (layer as any).inboundNodes as { inboundLayers: Layer[]; tensorIndices: number[] }[];
    if (nodes.length !== 1) {
      throw new NoiselabError(
        `model: layer ${layer.name} is shared (fused inference needs one node)`,
        "model",
      );
    }
    const inputs = nodes[0].inboundLayers.map((l) => l.name);
    if (nodes[0].tensorIndices.some((t) => t !== 0)) {
      throw new NoiselabError(`model: layer ${layer.name} reads a multi-output layer`, "model");
    }
    for (const i of inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    order.push({ layer, inputs });
  }
  const output = model.outputLayers[0].name;
  uses.set(output, (uses.get(output) ?? 0) + 1);
  return { order, uses, output };
}

function weightOf(layer: Layer, kind: string): Float32Array | undefined {
  const w = layer.weights.find((v) => v.originalName.split("/").at(-1) === kind);
  return w ? (w.read().dataSync() as Float32Array) : undefined;
}

// deno-lint-ignore no-explicit-any
const cfgOf = (layer: Layer) => layer.getConfig() as Record<string, any>;
const pair = (v: number | number[] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

function isRelu(layer: Layer): boolean {
  return layer.getClassName() === "Activation" && cfgOf(layer).activation === "relu";
}

/** A plain NHWC Conv2D whose output may be fused (linear activation, one consumer). */
function fusableConv(layer: Layer): boolean {
  if (layer.getClassName() !== "Conv2D") return false;
  const c = cfgOf(layer);
  return (c.activation ?? "linear") === "linear" && (c.dataFormat ?? "channelsLast") === "channelsLast" &&
    (c.padding === "same" || c.padding === "valid");
}

/**
 * The folded conv weights and bias of conv `W` (HWIO, `oc` output channels,
 * optional bias `b`) followed by BN (gamma, beta, mean, var, eps), or
 * undefined when the fold is not clean (see the module notes): then the
 * chain runs unfused.
 */
export function foldConvBN(
  w: Float32Array,
  b: Float32Array | undefined,
  oc: number,
  bn: {
    gamma?: Float32Array;
    beta?: Float32Array;
    mean: Float32Array;
    variance: Float32Array;
    epsilon: number;
  },
): { filter: Float32Array; bias: Float32Array } | undefined {
  const s = new Float32Array(oc);
  const bias = new Float32Array(oc);
  for (let c = 0; c < oc; c++) {
    // the same float32 steps as tfjs' batchNorm: (x - mean) * gamma / sqrt(var + eps) + beta
    const den = Math.fround(Math.sqrt(Math.fround(bn.variance[c] + bn.epsilon)));
    const sc = Math.fround((bn.gamma ? bn.gamma[c] : 1) / den);
    if (!Number.isFinite(sc)) return undefined;
    s[c] = sc;
    const shifted = Math.fround((b ? b[c] : 0) - bn.mean[c]);
    bias[c] = Math.fround(Math.fround(shifted * sc) + (bn.beta ? bn.beta[c] : 0));
    if (!Number.isFinite(bias[c])) return undefined;
  }
  const filter = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const v = Math.fround(w[i] * s[i % oc]);
    if (!Number.isFinite(v) || (v === 0 && w[i] !== 0 && s[i % oc] !== 0)) return undefined;
    filter[i] = v;
  }
  return { filter, bias };
}

/**
 * Compile `model`'s inference forward pass with BN folded into the
 * preceding convs and conv + bias + ReLU fused, from the weights as they are
 * NOW (build it after adding noise). Models whose layers do not fit
 * (shared layers, several inputs/outputs) raise a NoiselabError naming `model`.
 */
export function compileFusedInference(model: tfl.LayersModel): FusedPlan {
  const { order, uses, output } = graphOf(model);
  const consumers = new Map<string, GraphLayer[]>();
  for (const g of order) for (const i of g.inputs) consumers.set(i, [...(consumers.get(i) ?? []), g]);
  const soleConsumer = (name: string): GraphLayer | undefined => {
    const c = consumers.get(name);
    return c && c.length === 1 && uses.get(name) === 1 ? c[0] : undefined;
  };

  const steps: Step[] = [];
  const covered = new Set<string>();
  const owned: tf.Tensor[] = [];
  const stats = { foldedBN: 0, fusedRelu: 0, unfoldedBN: [] as string[] };
  const inputName = model.inputLayers[0].name;
  for (const g of order) {
    const { layer } = g;
    if (covered.has(layer.name) || layer.name === inputName) continue;
    if (fusableConv(layer) && g.inputs.length === 1) {
      const c = cfgOf(layer);
      const kernel = layer.weights.find((v) => v.originalName.split("/").at(-1) === "kernel")!;
      const [kh, kw, ic, oc] = kernel.shape as number[];
      let w = kernel.read().dataSync() as Float32Array;
      let b = weightOf(layer, "bias");
      const covers = [layer.name];
      let end = layer.name;
      let next = soleConsumer(layer.name);
      let fusable = true;
      let fresh = false; // w, b are new arrays (folded), not the variables' values
      if (next && next.layer.getClassName() === "BatchNormalization") {
        const bc = cfgOf(next.layer);
        const axis = Array.isArray(bc.axis) ? bc.axis : [bc.axis];
        const folded = axis.length === 1 && (axis[0] === -1 || axis[0] === 3)
          ? foldConvBN(w, b, oc, {
            gamma: weightOf(next.layer, "gamma"),
            beta: weightOf(next.layer, "beta"),
            mean: weightOf(next.layer, "moving_mean")!,
            variance: weightOf(next.layer, "moving_variance")!,
            epsilon: bc.epsilon,
          })
          : undefined;
        if (!folded) {
          stats.unfoldedBN.push(next.layer.name);
          fusable = false; // this conv and its BN run unfused, exactly as the model
        } else {
          stats.foldedBN++;
          w = folded.filter;
          b = folded.bias;
          fresh = true;
          covers.push(next.layer.name);
          end = next.layer.name;
          next = soleConsumer(next.layer.name);
        }
      }
      const relu = fusable && next !== undefined && isRelu(next.layer);
      if (relu) {
        covers.push(next!.layer.name);
        end = next!.layer.name;
        stats.fusedRelu++;
      }
      if (covers.length > 1) {
        // tf.tensor keeps the array it is given (cpu storage): never hand it a variable's values
        const filter = tf.tensor4d(fresh ? w : w.slice(), [kh, kw, ic, oc]);
        const bias = b ? tf.tensor1d(fresh ? b : b.slice()) : null;
        owned.push(filter, ...(bias ? [bias] : []));
        covers.forEach((n) => covered.add(n));
        steps.push({
          kind: "conv",
          out: end,
          input: g.inputs[0],
          filter,
          bias,
          relu,
          strides: pair(c.strides, 1),
          pad: c.padding,
          dilations: pair(c.dilationRate, 1),
          covers,
        });
        continue;
      }
    }
    steps.push({ kind: "layer", out: layer.name, inputs: g.inputs, layer });
  }

  // how many steps read each value (for freeing intermediates as soon as possible)
  const reads = new Map<string, number>();
  for (const s of steps) {
    for (const i of s.kind === "conv" ? [s.input] : s.inputs) reads.set(i, (reads.get(i) ?? 0) + 1);
  }

  // a BN left unfolded (its fold was not clean: NaN/Inf) runs through tfjs' kernels, so the whole pass does
  let built: BuiltNativePlan | { skip: string };
  try {
    built = stats.unfoldedBN.length
      ? { skip: `BN not folded (${stats.unfoldedBN.join(", ")})` }
      : nativeInferencePlan(model, steps, output);
  } catch (e) {
    owned.forEach((t) => t.dispose());
    throw e;
  }
  const native = "skip" in built ? null : built;
  const nativeSkipReason = "skip" in built ? built.skip : null;
  let disposed = false;
  return {
    stats,
    native: native?.plan ?? null,
    nativeSkipReason,
    runNative(x: Float32Array, n: number, out: Float32Array): boolean {
      if (disposed) throw new NoiselabError("model: this fused plan was disposed", "model");
      if (!native) return false;
      if (x.length !== n * native.inPer || out.length !== n * native.outPer) {
        throw new NoiselabError(
          `model: native plan expects ${n} x ${native.inPer} inputs and ${n} x ${native.outPer} outputs, ` +
            `got ${x.length} and ${out.length}`,
          "model",
        );
      }
      return native.plan.run(x, n, out);
    },
    run(x: tf.Tensor4D): tf.Tensor {
      if (disposed) throw new NoiselabError("model: this fused plan was disposed", "model");
      const values = new Map<string, tf.Tensor>([[inputName, x]]);
      const left = new Map(reads);
      const take = (name: string): tf.Tensor => {
        const v = values.get(name);
        if (!v) throw new NoiselabError(`model: fused plan has no value for ${name}`, "model");
        const n = left.get(name)! - 1;
        left.set(name, n);
        if (n === 0) values.delete(name);
        return v;
      };
      const release = (name: string, v: tf.Tensor) => {
        if (!values.has(name) && v !== x && name !== output) v.dispose();
      };
      for (const s of steps) {
        let y: tf.Tensor;
        if (s.kind === "conv") {
          const xin = take(s.input) as tf.Tensor4D;
          y = tf.fused.conv2d({
            x: xin,
            filter: s.filter,
            strides: s.strides,
            pad: s.pad,
            dataFormat: "NHWC",
            dilations: s.dilations,
            bias: s.bias ?? undefined,
            activation: s.relu ? "relu" : "linear",
          });
          release(s.input, xin);
        } else {
          const ins = s.inputs.map((n) => [n, take(n)] as const);
          y = s.layer.apply(ins.length === 1 ? ins[0][1] : ins.map((i) => i[1]), {
            training: false,
          }) as tf.Tensor;
          for (const [n, v] of ins) release(n, v);
        }
        values.set(s.out, y);
      }
      const out = values.get(output);
      if (!out) throw new NoiselabError(`model: fused plan did not produce ${output}`, "model");
      for (const [n, v] of values) if (n !== output && v !== x) v.dispose();
      return out;
    },
    dispose() {
      if (!disposed) {
        owned.forEach((t) => t.dispose());
        native?.plan.dispose();
      }
      disposed = true;
    },
  };
}

/**
 * Logits (row-major [n, classes]) of `model` on NHWC images `x` through a
 * fused plan built from its current weights (see the module notes for how
 * they differ from lib/models `predictLogits`: float rounding only).
 */
export async function fusedPredictLogits(
  model: tfl.LayersModel,
  x: Float32Array,
  batchSize = 500,
): Promise<Float32Array> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NoiselabError(`batchSize: expected a positive integer, got ${batchSize}`, "batchSize");
  }
  const n = countImages(model, x);
  const [, h, w, c] = model.inputs[0].shape as number[];
  const per = h * w * c;
  const classes = model.outputs[0].shape.at(-1) as number;
  const out = new Float32Array(n * classes);
  const plan = compileFusedInference(model);
  try {
    for (let s = 0; s < n; s += batchSize) {
      const b = Math.min(batchSize, n - s);
      const xs = x.subarray(s * per, (s + b) * per);
      if (plan.native) {
        if (plan.runNative(xs, b, out.subarray(s * classes, (s + b) * classes))) continue;
        // Some image needs the layer-by-layer path (non-finite or unbounded ReLU inputs): find which,
        // one image at a time, so that an image's logits never depend on its batch-mates, and run
        // those images together layer by layer.
        const slow: number[] = [];
        for (let i = s; i < s + b; i++) {
          if (
            !plan.runNative(
              x.subarray(i * per, (i + 1) * per),
              1,
              out.subarray(i * classes, (i + 1) * classes),
            )
          ) {
            slow.push(i);
          }
        }
        const xl = new Float32Array(slow.length * per);
        slow.forEach((i, j) => xl.set(x.subarray(i * per, (i + 1) * per), j * per));
        const tl = tf.tensor4d(xl, [slow.length, h, w, c]);
        let yl: tf.Tensor | undefined;
        try {
          yl = plan.run(tl);
          const v = await yl.data() as Float32Array;
          slow.forEach((i, j) => out.set(v.subarray(j * classes, (j + 1) * classes), i * classes));
        } finally {
          tl.dispose();
          yl?.dispose();
        }
        continue;
      }
      const xb = tf.tensor4d(xs, [b, h, w, c]);
      let y: tf.Tensor | undefined;
      try {
        y = plan.run(xb);
        out.set(await y.data() as Float32Array, s * classes);
      } finally {
        xb.dispose();
        y?.dispose();
      }
    }
  } finally {
    plan.dispose();
  }
  return out;
}
