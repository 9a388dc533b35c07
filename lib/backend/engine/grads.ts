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
 * @module
 */
import { ENGINE_NAME } from "./name.ts";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { BN_TRAIN, BN_TRAIN_GRAD, isSpatialMean, RELU_GRAD, SPATIAL_MEAN_GRAD } from "./kernels/mod.ts";

const ENGINE_BACKEND = ENGINE_NAME;
let installed = false;

const active = () => tf.getBackend() === ENGINE_BACKEND;

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

  // --- fused training batch norm
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
      !training || !active() || input == null || !lastAxis || rank < 2 || input.dtype !== "float32" ||
      this.gamma == null || this.beta == null
    ) {
      return stockCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(
        BN_TRAIN,
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
  };
}
