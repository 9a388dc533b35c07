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
  /** Slot tensors, each over all parameters flattened in variable order (SGD [momentum], Adam [m, v]). */
  slots: { shape: number[]; values: Float32Array }[];
}

/**
 * Variables with at least this many elements are updated one by one, the rest
 * together as one flat vector (see {@link HandOptimizer}).
 */
export const PER_VARIABLE_MIN_SIZE = 1 << 16;

/**
 * An optimizer over a fixed list of variables.
 *
 * Small variables are updated as one flat vector (variables and gradients
 * concatenated, the result split back): the same element-wise arithmetic as a
 * per-variable loop, but about a dozen large kernels instead of a dozen tiny
 * ones per variable, whose fixed dispatch cost dominated (ResNet-20: 65
 * variables, ~800 kernel calls per step). Large variables (at least
 * {@link PER_VARIABLE_MIN_SIZE} elements, e.g. VGG16's 512-channel kernels)
 * are updated on their own: for them dispatch is negligible and the
 * concat/split copies of the flat path were the main cost (VGG16: 14.7M
 * parameters copied three times per step). Both paths apply the identical
 * element-wise float32 operations, so results are bitwise the same.
 */
export class HandOptimizer {
  readonly spec: OptimizerSpec;
  readonly vars: tf.Variable[];
  readonly decayMask: boolean[];
  /** Updates applied so far (Adam's bias-correction clock). */
  step = 0;
  /** Indices of the variables updated as one flat vector, in variable order. */
  private flatIdx: number[];
  /** Indices of the variables updated one by one. */
  private bigIdx: number[];
  /** Per slot kind: the flat slot over `flatIdx` (null when empty). */
  private flatSlots: (tf.Variable | null)[];
  /** Per slot kind: one slot per `bigIdx` variable. */
  private bigSlots: tf.Variable[][];
  private sizes: number[];
  /** Per element of the flat group: weightDecay where decay applies, else 0 (null when no decay). */
  private wdMask: tf.Tensor | null;
  private hasDecay: boolean;

  /**
   * @param spec hyper-parameters
   * @param vars the trainable variables, in a fixed order
   * @param decayMask per variable: apply weight decay?
   */
  constructor(spec: OptimizerSpec, vars: tf.Variable[], decayMask?: boolean[]) {
    this.spec = spec;
    this.vars = vars;
    this.decayMask = decayMask ?? vars.map(() => true);
    this.sizes = vars.map((v) => v.size);
    this.flatIdx = [];
    this.bigIdx = [];
    this.sizes.forEach((n, i) => (n >= PER_VARIABLE_MIN_SIZE ? this.bigIdx : this.flatIdx).push(i));
    const flatTotal = this.flatIdx.reduce((a, i) => a + this.sizes[i], 0);
    const perVar = spec.optimizer === "adam" ? 2 : (spec.momentum > 0 ? 1 : 0);
    this.flatSlots = Array.from(
      { length: perVar },
      () => flatTotal > 0 ? tf.tidy(() => tf.variable(tf.zeros([flatTotal]), false)) : null,
    );
    this.bigSlots = Array.from(
      { length: perVar },
      () => this.bigIdx.map((i) => tf.tidy(() => tf.variable(tf.zeros([this.sizes[i]]), false))),
    );
    this.hasDecay = spec.weightDecay > 0 && this.decayMask.some(Boolean);
    if (this.hasDecay && flatTotal > 0) {
      const m = new Float32Array(flatTotal);
      let at = 0;
      for (const i of this.flatIdx) {
        const n = this.sizes[i];
        if (this.decayMask[i]) m.fill(spec.weightDecay, at, at + n);
        at += n;
      }
      this.wdMask = tf.tensor1d(m);
    } else {
      this.wdMask = null;
    }
  }

  /** Apply one update with gradients `grads` (same order as `vars`) at learning rate `lr`. */
  applyGradients(grads: tf.Tensor[], lr: number): void {
    if (grads.length !== this.vars.length) {
      throw new Error(`applyGradients: ${grads.length} gradients for ${this.vars.length} variables`);
    }
    this.step += 1;
    tf.tidy(() => {
      if (this.flatIdx.length > 0) {
        const flat = (ts: tf.Tensor[]) => tf.concat(ts.map((t) => tf.reshape(t, [-1])));
        const w = flat(this.flatIdx.map((i) => this.vars[i]));
        const g = flat(this.flatIdx.map((i) => grads[i]));
        const slots = this.flatSlots as tf.Variable[];
        const next = this.update(w, g, this.wdMask, slots, lr);
        const parts = tf.split(next, this.flatIdx.map((i) => this.sizes[i]));
        this.flatIdx.forEach((vi, k) => this.vars[vi].assign(tf.reshape(parts[k], this.vars[vi].shape)));
      }
      this.bigIdx.forEach((vi, k) => {
        const v = this.vars[vi];
        // same per-element factor the flat mask would hold: weightDecay or 0
        const wd = this.hasDecay ? tf.scalar(this.decayMask[vi] ? this.spec.weightDecay : 0) : null;
        const next = this.update(
          tf.reshape(v, [-1]),
          tf.reshape(grads[vi], [-1]),
          wd,
          this.bigSlots.map((s) => s[k]),
          lr,
        );
        v.assign(tf.reshape(next, v.shape));
      });
    });
  }

  /** The element-wise update of one group: returns the new weights, assigns `slots`. */
  private update(
    w: tf.Tensor,
    g: tf.Tensor,
    wd: tf.Tensor | null,
    slots: tf.Variable[],
    lr: number,
  ): tf.Tensor {
    const s = this.spec;
    let base: tf.Tensor = w;
    if (wd && s.weightDecayMode === "coupled") g = tf.add(g, tf.mul(wd, w));
    if (wd && s.weightDecayMode === "decoupled") {
      // w * (1 - lr * wd) where decay applies, w elsewhere
      base = tf.sub(w, tf.mul(tf.mul(wd, tf.scalar(lr)), w));
    }
    if (s.optimizer === "sgd") {
      let update = g;
      if (s.momentum > 0) {
        const buf = slots[0];
        const nb = tf.add(tf.mul(tf.scalar(s.momentum), buf), g);
        buf.assign(nb);
        update = s.nesterov ? tf.add(g, tf.mul(tf.scalar(s.momentum), nb)) : nb;
      }
      return tf.sub(base, tf.mul(tf.scalar(lr), update));
    }
    const [m, v] = slots;
    const b1 = s.adamBeta1, b2 = s.adamBeta2;
    const nm = tf.add(tf.mul(tf.scalar(b1), m), tf.mul(tf.scalar(1 - b1), g));
    const nv = tf.add(tf.mul(tf.scalar(b2), v), tf.mul(tf.scalar(1 - b2), tf.square(g)));
    m.assign(nm);
    v.assign(nv);
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    const denom = tf.add(tf.div(tf.sqrt(nv), tf.scalar(Math.sqrt(bc2))), tf.scalar(s.adamEpsilon));
    return tf.sub(base, tf.mul(tf.scalar(lr / bc1), tf.div(nm, denom)));
  }

  /** Element offset of each variable in the flat (variable-order) slot layout. */
  private offsets(): number[] {
    const out: number[] = [];
    let at = 0;
    for (const n of this.sizes) {
      out.push(at);
      at += n;
    }
    return out;
  }

  /** Copy the state out (synchronous reads; exact float32 values). */
  getState(): OptimizerState {
    const total = this.sizes.reduce((a, b) => a + b, 0);
    const off = this.offsets();
    return {
      step: this.step,
      slots: this.flatSlots.map((flat, kind) => {
        const values = new Float32Array(total);
        if (flat) {
          const src = flat.dataSync() as Float32Array;
          let at = 0;
          for (const i of this.flatIdx) {
            values.set(src.subarray(at, at + this.sizes[i]), off[i]);
            at += this.sizes[i];
          }
        }
        this.bigIdx.forEach((i, k) => values.set(this.bigSlots[kind][k].dataSync() as Float32Array, off[i]));
        return { shape: [total], values };
      }),
    };
  }

  /** Restore a state produced by {@link getState} on an optimizer with the same variables. */
  setState(state: OptimizerState): void {
    if (this.flatSlots.length !== state.slots.length) {
      throw new Error(`optimizer state has ${state.slots.length} slots, expected ${this.flatSlots.length}`);
    }
    const total = this.sizes.reduce((a, b) => a + b, 0);
    const off = this.offsets();
    state.slots.forEach((s, kind) => {
      if (s.shape.join(",") !== String(total)) {
        throw new Error(`optimizer slot ${kind}: shape [${s.shape}] does not match [${total}]`);
      }
    });
    state.slots.forEach((s, kind) => {
      const flat = this.flatSlots[kind];
      if (flat) {
        const part = new Float32Array(flat.size);
        let at = 0;
        for (const i of this.flatIdx) {
          part.set(s.values.subarray(off[i], off[i] + this.sizes[i]), at);
          at += this.sizes[i];
        }
        tf.tidy(() => flat.assign(tf.tensor1d(part, "float32")));
      }
      this.bigIdx.forEach((i, k) => {
        const slot = this.bigSlots[kind][k];
        tf.tidy(() => slot.assign(tf.tensor1d(s.values.slice(off[i], off[i] + this.sizes[i]), "float32")));
      });
    });
    this.step = state.step;
  }

  /** Free the slot variables. */
  dispose(): void {
    for (const t of this.flatSlots) t?.dispose();
    for (const list of this.bigSlots) for (const t of list) t.dispose();
    this.wdMask?.dispose();
    this.flatSlots = [];
    this.bigSlots = [];
    this.wdMask = null;
  }
}
