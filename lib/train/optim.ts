/**
 * SGD (momentum, Nesterov) and Adam with weight decay, written with tfjs ops.
 *
 * Why by hand: tfjs's own optimizers (`tf.train.momentum`, `tf.train.adam`)
 * have no weight decay, take the learning rate once at construction (no
 * per-step schedule), and keep their slots under generated names that are
 * awkward to checkpoint and restore bit-exactly. The update rules below are
 * PyTorch's (`torch.optim.SGD`, `Adam`, `AdamW`), so recipes transfer.
 *
 * Weight decay, two modes (`weightDecayMode`):
 * - `coupled` (classic L2, the Keras `kernel_regularizer=l2(wd/2)` /
 *   PyTorch `weight_decay=` behaviour): `g <- g + wd * w` before the update,
 *   so for Adam the decay is rescaled by the adaptive denominator.
 * - `decoupled` (AdamW, Loshchilov & Hutter): `w <- w * (1 - lr * wd)`
 *   applied directly, independent of the gradient statistics.
 * For plain SGD without momentum the two are the same; with momentum they
 * differ slightly; for Adam they differ a lot.
 * Decay applies only to the variables selected by `decayMask` (the training
 * loop decays conv/dense kernels, not biases or BN parameters).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Optimizer family. */
export type OptimizerName = "sgd" | "adam";
/** How weight decay enters the update (see the module docs). */
export type WeightDecayMode = "coupled" | "decoupled";

/** Optimizer hyper-parameters (the learning rate comes per step). */
export interface OptimizerSpec {
  optimizer: OptimizerName;
  /** SGD momentum (0 = plain SGD). */
  momentum: number;
  /** SGD: use Nesterov momentum. */
  nesterov: boolean;
  /** Weight decay factor. */
  weightDecay: number;
  /** Coupled L2 or decoupled (AdamW-style) decay. */
  weightDecayMode: WeightDecayMode;
  /** Adam beta1. */
  adamBeta1: number;
  /** Adam beta2. */
  adamBeta2: number;
  /** Adam epsilon. */
  adamEpsilon: number;
}

/** A serialisable optimizer state (for checkpoints). */
export interface OptimizerState {
  /** Number of updates applied so far. */
  step: number;
  /** Slot tensors in a fixed order (per variable: SGD [momentum], Adam [m, v]). */
  slots: { shape: number[]; values: Float32Array }[];
}

/** An optimizer over a fixed list of variables. */
export class HandOptimizer {
  readonly spec: OptimizerSpec;
  readonly vars: tf.Variable[];
  readonly decayMask: boolean[];
  /** Updates applied so far (Adam's bias-correction clock). */
  step = 0;
  private slots: tf.Variable[][];

  /**
   * @param spec hyper-parameters
   * @param vars the trainable variables, in a fixed order
   * @param decayMask per variable: apply weight decay?
   */
  constructor(spec: OptimizerSpec, vars: tf.Variable[], decayMask?: boolean[]) {
    this.spec = spec;
    this.vars = vars;
    this.decayMask = decayMask ?? vars.map(() => true);
    const perVar = spec.optimizer === "adam" ? 2 : (spec.momentum > 0 ? 1 : 0);
    this.slots = vars.map((v) =>
      Array.from({ length: perVar }, () => tf.tidy(() => tf.variable(tf.zerosLike(v), false)))
    );
  }

  /** Apply one update with gradients `grads` (same order as `vars`) at learning rate `lr`. */
  applyGradients(grads: tf.Tensor[], lr: number): void {
    if (grads.length !== this.vars.length) {
      throw new Error(`applyGradients: ${grads.length} gradients for ${this.vars.length} variables`);
    }
    this.step += 1;
    const s = this.spec;
    tf.tidy(() => {
      const lrT = tf.scalar(lr);
      for (let i = 0; i < this.vars.length; i++) {
        const w = this.vars[i];
        let g = grads[i];
        const decay = this.decayMask[i] && s.weightDecay > 0;
        let base: tf.Tensor = w;
        if (decay && s.weightDecayMode === "coupled") g = tf.add(g, tf.mul(tf.scalar(s.weightDecay), w));
        if (decay && s.weightDecayMode === "decoupled") base = tf.mul(w, tf.scalar(1 - lr * s.weightDecay));
        let update: tf.Tensor;
        if (s.optimizer === "sgd") {
          if (s.momentum > 0) {
            const buf = this.slots[i][0];
            const nb = tf.add(tf.mul(tf.scalar(s.momentum), buf), g);
            buf.assign(nb);
            update = s.nesterov ? tf.add(g, tf.mul(tf.scalar(s.momentum), nb)) : nb;
          } else {
            update = g;
          }
          w.assign(tf.sub(base, tf.mul(lrT, update)));
        } else {
          const [m, v] = this.slots[i];
          const b1 = s.adamBeta1, b2 = s.adamBeta2;
          const nm = tf.add(tf.mul(tf.scalar(b1), m), tf.mul(tf.scalar(1 - b1), g));
          const nv = tf.add(tf.mul(tf.scalar(b2), v), tf.mul(tf.scalar(1 - b2), tf.square(g)));
          m.assign(nm);
          v.assign(nv);
          const bc1 = 1 - Math.pow(b1, this.step);
          const bc2 = 1 - Math.pow(b2, this.step);
          const denom = tf.add(tf.div(tf.sqrt(nv), tf.scalar(Math.sqrt(bc2))), tf.scalar(s.adamEpsilon));
          update = tf.div(nm, denom);
          w.assign(tf.sub(base, tf.mul(tf.scalar(lr / bc1), update)));
        }
      }
    });
  }

  /** Copy the state out (synchronous reads; exact float32 values). */
  getState(): OptimizerState {
    const slots: OptimizerState["slots"] = [];
    for (const list of this.slots) {
      for (const t of list) slots.push({ shape: t.shape.slice(), values: t.dataSync() as Float32Array });
    }
    return { step: this.step, slots };
  }

  /** Restore a state produced by {@link getState} on an optimizer with the same variables. */
  setState(state: OptimizerState): void {
    const flat = this.slots.flat();
    if (flat.length !== state.slots.length) {
      throw new Error(`optimizer state has ${state.slots.length} slots, expected ${flat.length}`);
    }
    flat.forEach((t, i) => {
      const s = state.slots[i];
      if (s.shape.join(",") !== t.shape.join(",")) {
        throw new Error(`optimizer slot ${i}: shape [${s.shape}] does not match [${t.shape}]`);
      }
      tf.tidy(() => t.assign(tf.tensor(s.values, s.shape, "float32")));
    });
    this.step = state.step;
  }

  /** Free the slot variables. */
  dispose(): void {
    for (const list of this.slots) for (const t of list) t.dispose();
    this.slots = [];
  }
}
