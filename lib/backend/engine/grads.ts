/**
 * Gradient and layer hooks that let a training step use the engine's fused
 * kernels. They are global (tfjs keeps one gradient registry and one layer class
 * for every backend) but act only while the active backend is `noiselab`; on any
 * other backend the stock code runs unchanged.
 *
 * - ReLU: the stock gradient is `dy * cast(step(x))` (three passes over the
 *   tensor); here one native pass.
 * - BatchNormalization (training mode): tfjs-layers composes tf.moments +
 *   tf.batchNorm, whose gradient is ~20 element-wise ops and reductions. Here
 *   one native kernel computes y, the batch mean and the (biased) batch variance,
 *   and one native kernel computes dx, dgamma, dbeta with the gradient flowing
 *   through the batch statistics, as in the stock path. The layer's weights,
 *   config and moving-average updates are untouched, so models still save and
 *   load as standard tfjs-layers models.
 * - BatchNormalization + ReLU (inside {@link withLayerFusion}, training and
 *   inference): where a BN layer's only consumer is a ReLU Activation layer, the
 *   BN kernel applies the ReLU as it writes y and the ReLU layer passes its input
 *   through; in training the BN gradient takes dy through the ReLU's gradient at
 *   y in the same passes.
 *   Bitwise the values and gradients of the two layers run separately (ReLU is
 *   idempotent and its gradient at relu(x) equals its gradient at x, NaN included),
 *   so model ids and training results do not depend on it.
 * @module
 */
import { ENGINE_NAME } from "./name.ts";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  BN_INFER_RELU,
  BN_TRAIN,
  BN_TRAIN_GRAD,
  BN_TRAIN_RELU,
  isSpatialMean,
  RELU_GRAD,
  SPATIAL_MEAN_GRAD,
} from "./kernels/mod.ts";

const ENGINE_BACKEND = ENGINE_NAME;
let installed = false;

const active = () => tf.getBackend() === ENGINE_BACKEND;

// deno-lint-ignore no-explicit-any
type AnyLayer = any;
/** Per model: BN layer → the ReLU Activation layer that is its only consumer (see {@link reluFusions}). */
const fusionsByModel = new WeakMap<tfl.LayersModel, Map<AnyLayer, AnyLayer>>();
/** The fusions of the model inside {@link withLayerFusion}, or null outside. */
let activeFusions: Map<AnyLayer, AnyLayer> | null = null;
/** ReLU layer → the tensor its BN already passed through the ReLU (set by the BN hook, taken by the ReLU hook). */
const fusedInputs = new Map<AnyLayer, tf.Tensor>();

/** Values of NOISELAB_LAYER_FUSION already warned about (once each). */
const fusionEnvWarned = new Set<string>();
/**
 * NOISELAB_LAYER_FUSION, read at every {@link withLayerFusion} scope: "0", "false", "off" or
 * "no" turn the BN + ReLU fusion off (to time or rule it out: it changes no bits); unset,
 * empty, "1", "true", "on" or "yes" leave it on; any other value leaves it on and is named on
 * stderr once.
 */
export function layerFusionEnabled(): boolean {
  let v: string | undefined;
  try {
    v = Deno.env.get("NOISELAB_LAYER_FUSION");
  } catch {
    v = undefined; // no --allow-env: the default
  }
  const k = (v ?? "").trim().toLowerCase();
  if (["0", "false", "off", "no"].includes(k)) return false;
  if (!["", "1", "true", "on", "yes"].includes(k) && !fusionEnvWarned.has(v!)) {
    fusionEnvWarned.add(v!);
    console.error(`[engine] NOISELAB_LAYER_FUSION="${v}" is not 0 or 1; the BN + ReLU fusion stays on`);
  }
  return true;
}

/**
 * The BN → ReLU pairs of `model` that can run fused: a BatchNormalization layer
 * called once in the model, whose output feeds exactly one layer, an Activation
 * layer with activation "relu" called once, and is not itself a model output.
 */
export function reluFusions(model: tfl.LayersModel): Map<AnyLayer, AnyLayer> {
  let m = fusionsByModel.get(model);
  if (m) return m;
  m = new Map();
  const layers = new Set<AnyLayer>(model.layers);
  const outputs = new Set<AnyLayer>(model.outputLayers);
  for (const bn of model.layers as AnyLayer[]) {
    if (bn.getClassName() !== "BatchNormalization" || outputs.has(bn)) continue;
    if (bn.inboundNodes?.length !== 1 || bn.outboundNodes?.length !== 1) continue;
    const next = bn.outboundNodes[0].outboundLayer;
    if (!layers.has(next) || next.getClassName() !== "Activation") continue;
    if (next.activation?.getClassName?.() !== "relu" || next.inboundNodes?.length !== 1) continue;
    m.set(bn, next);
  }
  fusionsByModel.set(model, m);
  return m;
}

/**
 * Runs `fn` (calls of `model`: `apply(x, {training: true})` inside tf.variableGrads, or
 * `predict`) with the BN + ReLU fusion of the engine on for `model`'s pairs
 * ({@link reluFusions}); outside it, and on any other backend, every layer runs on its
 * own. Returns what `fn` returns. `fn` must not call other models' layers.
 */
export function withLayerFusion<T>(model: tfl.LayersModel, fn: () => T): T {
  const prev = activeFusions;
  activeFusions = active() && layerFusionEnabled() ? reluFusions(model) : null;
  try {
    return fn();
  } finally {
    activeFusions = prev;
    if (prev === null) fusedInputs.clear(); // the outermost scope ends: nothing may stay pending
  }
}

/** Installs the hooks once (idempotent). */
export function installEngineGradients(): void {
  if (installed) return;
  installed = true;

  // --- ReLU gradient: wrap the registered config's gradFunc (mutating the registry
  // entry avoids tfjs' "overriding gradient" warning and keeps the stock path).
  const relu = tf.getGradient("Relu");
  if (relu) {
    const stock = relu.gradFunc;
    relu.gradFunc = (dy, saved, attrs) => {
      if (!active()) return stock(dy, saved, attrs);
      const [x] = saved;
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
    };
  }

  // --- Mean over H,W (global average pooling): the stock gradient multiplies the
  // reshaped dy with a ones tensor of the input's shape, then divides (two
  // broadcasting passes + an allocation); here one native pass.
  const mean = tf.getGradient("Mean");
  if (mean) {
    const stock = mean.gradFunc;
    mean.gradFunc = (dy, saved, attrs) => {
      const [x] = saved;
      const axis = (attrs as { axis: number | number[] }).axis;
      if (!active() || x.dtype !== "float32" || !isSpatialMean(x.shape, axis)) return stock(dy, saved, attrs);
      return {
        x: () =>
          tf.engine().runKernel(SPATIAL_MEAN_GRAD, { dy: dy as tf.Tensor }, { xShape: x.shape }) as tf.Tensor,
      };
    };
  }

  // --- fused training batch norm (+ ReLU)
  tf.registerGradient({
    kernelName: BN_TRAIN_RELU,
    inputsToSave: ["x", "gamma"],
    outputsToSave: [true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, y, mean, variance] = saved;
      const dyArr = dys as (tf.Tensor | null)[];
      const dy = dyArr[0] ?? tf.zerosLike(x);
      const [dx, dgamma, dbeta] = tf.engine().runKernel(
        BN_TRAIN_GRAD,
        { dy, x, mean, variance, gamma, y },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ["x", "gamma"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, mean, variance] = saved;
      const dyArr = dys as (tf.Tensor | null)[];
      const dy = dyArr[0] ?? tf.zerosLike(x);
      const [dx, dgamma, dbeta] = tf.engine().runKernel(
        BN_TRAIN_GRAD,
        { dy, x, mean, variance, gamma },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });

  const proto = Object.getPrototypeOf(tfl.layers.batchNormalization({})) as {
    call: (this: any, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;
  };
  const stockCall = proto.call;
  proto.call = function (this: any, inputs, kwargs) {
    const training = kwargs?.["training"] == null ? false : kwargs["training"];
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : null) : inputs;
    const rank = input?.rank ?? 0;
    const lastAxis = this.axis === -1 || this.axis === rank - 1;
    if (
      !active() || input == null || !lastAxis || rank < 2 || input.dtype !== "float32" ||
      this.gamma == null || this.beta == null
    ) {
      return stockCall.call(this, inputs, kwargs);
    }
    const relu = activeFusions?.get(this);
    if (!training) {
      if (!relu) return stockCall.call(this, inputs, kwargs);
      // inference: tfjs-layers' normalizeInference (tf.batchNorm on the moving statistics, i.e. the
      // FusedBatchNorm kernel with varianceEpsilon = epsilon) with the ReLU in the same pass
      const y = tf.engine().runKernel(
        BN_INFER_RELU,
        {
          x: input,
          mean: this.movingMean.read(),
          variance: this.movingVariance.read(),
          offset: this.beta.read(),
          scale: this.gamma.read(),
        },
        { varianceEpsilon: this.epsilon },
      ) as tf.Tensor;
      fusedInputs.set(relu, y);
      return y;
    }
    const result = tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(
        relu ? BN_TRAIN_RELU : BN_TRAIN,
        { x: input, gamma: this.gamma.read(), beta: this.beta.read() },
        { epsilon: this.epsilon },
      ) as tf.Tensor[];
      // same moving-average update as tfjs-layers' BatchNormalization.call
      const doMovingAverage = (variable: any, value: tf.Tensor, momentum: number) => {
        tf.tidy(() => {
          const decay = 1 - momentum;
          const origValue = variable.read();
          const updateDelta = tf.mul(tf.sub(origValue, value), decay);
          variable.write(tf.sub(origValue, updateDelta));
        });
      };
      doMovingAverage(this.movingMean, mean, this.momentum);
      doMovingAverage(this.movingVariance, variance, this.momentum);
      return y;
    });
    if (relu) fusedInputs.set(relu, result);
    return result;
  };

  // --- the ReLU after a fused BN passes its input through (it is already relu(BN(x)))
  const actProto = Object.getPrototypeOf(tfl.layers.activation({ activation: "relu" })) as {
    call: (
      this: any,
      inputs: tf.Tensor | tf.Tensor[],
      kwargs: Record<string, unknown>,
    ) => tf.Tensor | tf.Tensor[];
  };
  const stockActCall = actProto.call;
  actProto.call = function (this: any, inputs, kwargs) {
    const pending = fusedInputs.get(this);
    if (pending !== undefined) {
      fusedInputs.delete(this);
      const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : null) : inputs;
      if (input === pending) return input;
    }
    return stockActCall.call(this, inputs, kwargs);
  };
}
