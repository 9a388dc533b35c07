/**
 * The training loop: our own (not `model.fit`) so that the learning rate can
 * change per step, weight decay and the optimizer are ours, and a run can be
 * checkpointed and resumed bit-exactly.
 *
 * Determinism: the model's initial weights come from `buildModel(..., {seed})`;
 * epoch `e` shuffles with the stream `${seed}:shuffle:${e}` and augments with
 * `${seed}:augment:${e}`. Because the streams are re-derived from the epoch
 * number, a run resumed from the checkpoint after epoch k replays epoch k+1
 * exactly as an uninterrupted run would. Same config + seed + backend ⇒
 * bitwise same weights, at any thread count on the onednn engine (its
 * reductions run in a fixed 2-thread layout: lib/backend
 * `engineReductionThreads`), on the same CPU kind.
 *
 * Stopping: an abort signal or Kernel > Interrupt in the notebook UI
 * (lib/util/interrupt.ts, checked once per batch) stops the run between two
 * optimizer steps with {@link TrainingAborted} / `InterruptedError`. The
 * checkpoint on disk is always the one of the last finished epoch (written
 * atomically, never during a step), so a re-run resumes from it and ends with
 * the weights of an uninterrupted run.
 * @module
 */
import { basename } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { augmentBatch, gatherBatch } from "../data/mod.ts";
import { accuracy } from "../models/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { interruptChecker, yieldToEventLoop } from "../util/interrupt.ts";
import { gaussianFill, makeRng, shuffleInPlace } from "../util/rng.ts";
import type { TrainConfig } from "./config.ts";
import { setConvPrecision } from "../backend/engine/precision.ts";
import { withLayerFusion } from "../backend/engine/grads.ts";
import type { PreparedData } from "./data.ts";
import { HandOptimizer, type OptimizerSpec } from "./optim.ts";
import { learningRateAt, type ScheduleSpec } from "./schedule.ts";
import type { TrainProgress } from "./progress.ts";
import {
  type Checkpoint,
  type CheckpointInfo,
  type EpochRecord,
  restoreWeights,
  saveCheckpoint,
  saveSnapshot,
} from "./store.ts";

const IMAGE_VALUES = 32 * 32 * 3;

/** Does the model end in a softmax (probabilities) rather than logits? */
export function outputsProbabilities(model: LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  const act = (last.getConfig() as { activation?: string }).activation;
  return act === "softmax";
}

/** Mean softmax cross-entropy of a batch; works for logit and softmax outputs. */
export function crossEntropy(
  out: tf.Tensor,
  labels: tf.Tensor,
  probabilities: boolean,
  labelSmoothing = 0,
): tf.Scalar {
  return tf.tidy(() => {
    const classes = out.shape[out.shape.length - 1] as number;
    let onehot = tf.oneHot(labels as tf.Tensor1D, classes);
    if (!probabilities) {
      return tf.losses.softmaxCrossEntropy(onehot, out, undefined, labelSmoothing) as tf.Scalar;
    }
    if (labelSmoothing > 0) onehot = tf.add(tf.mul(onehot, 1 - labelSmoothing), labelSmoothing / classes);
    const logp = tf.log(tf.clipByValue(out, 1e-7, 1));
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), -1))) as tf.Scalar;
  });
}

/**
 * Batch size of the test-accuracy evaluations during training (epoch ends, snapshots). Evaluation itself
 * is lib/models' `accuracy` (the one top-1 accuracy of the project; `evaluateLogits` adds the non-finite
 * share).
 */
export const TRAIN_EVAL_BATCH = 250;

/** Which trainable variables get weight decay: conv and dense kernels (not biases, not BN gamma/beta). */
export function decayMask(model: LayersModel): boolean[] {
  return model.trainableWeights.map((w) => /kernel/.test(w.originalName ?? w.name));
}

/** What {@link trainStep} works on: a model, its trainable variables and an optimizer over them. */
export interface TrainStepState {
  model: LayersModel;
  /** The model's trainable variables, in `model.trainableWeights` order. */
  vars: tf.Variable[];
  /** The optimizer over {@link vars}, weight decay on kernels only ({@link decayMask}). */
  optimizer: HandOptimizer;
  /** The model ends in a softmax ({@link outputsProbabilities}) rather than logits. */
  probabilities: boolean;
  /** Label smoothing of the cross-entropy (0 = none). */
  labelSmoothing: number;
  /** Which of {@link vars} are kernels (conv/dense: {@link decayMask}), the tensors training noise perturbs. */
  kernels: boolean[];
}

/** Training noise of one step ({@link trainStep}): σ = `sigma`·max|W| per kernel, streams `<key>:<index>`. */
export interface TrainNoise {
  sigma: number;
  key: string;
}

/**
 * Put Gaussian noise σ = `noise.sigma`·max|W| on every kernel of `st` (stream
 * `"<noise.key>:<i>"`, i = index in `st.vars`); returns the function that puts
 * the clean values back (bitwise).
 */
export function perturbKernels(st: TrainStepState, noise: TrainNoise): () => void {
  const saved: [tf.Variable, tf.Tensor][] = [];
  st.vars.forEach((v, i) => {
    if (!st.kernels[i]) return;
    const w = v.dataSync() as Float32Array;
    let m = 0;
    for (let j = 0; j < w.length; j++) m = Math.max(m, Math.abs(w[j]));
    const z = gaussianFill(makeRng(`${noise.key}:${i}`), new Float32Array(w.length));
    const s = noise.sigma * m;
    for (let j = 0; j < z.length; j++) z[j] = w[j] + s * z[j];
    saved.push([v, tf.clone(v)]);
    const t = tf.tensor(z, v.shape, "float32");
    v.assign(t);
    t.dispose();
  });
  return () => {
    for (const [v, c] of saved) {
      v.assign(c);
      c.dispose();
    }
  };
}

/**
 * Sets up {@link trainStep} for `model`: its trainable variables and a {@link HandOptimizer}
 * with `spec`'s hyper-parameters (a `TrainConfig` will do). Dispose `optimizer` when done.
 */
export function trainStepState(model: LayersModel, spec: OptimizerSpec, labelSmoothing = 0): TrainStepState {
  // LayerVariable.read() returns the underlying tf.Variable
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = decayMask(model);
  const optimizer = new HandOptimizer(spec, vars, kernels);
  return { model, vars, optimizer, probabilities: outputsProbabilities(model), labelSmoothing, kernels };
}

/**
 * One optimizer step of the training loop on one batch: the forward pass in training mode (BN
 * uses and updates batch statistics), the cross-entropy, the gradients of every trainable variable
 * and the optimizer update with learning rate `lr`. `x` holds `labels.length` NHWC 32x32x3 images.
 * Returns the batch's mean loss (possibly non-finite: the caller decides) and the predicted classes.
 * With `noise` (hardware-aware training, `TrainConfig.trainNoise`) the forward and backward pass
 * run on noisy kernels ({@link perturbKernels}) and the update applies to the clean ones.
 * {@link trainModel} runs exactly this; tools/bench.ts times it.
 */
export function trainStep(
  st: TrainStepState,
  x: Float32Array,
  labels: Uint8Array | Int32Array,
  lr: number,
  noise?: TrainNoise,
): { loss: number; predictions: Int32Array } {
  const m = labels.length;
  let predT: tf.Tensor | undefined;
  const restore = noise && noise.sigma > 0 ? perturbKernels(st, noise) : undefined;
  let value: tf.Scalar, grads: tf.NamedTensorMap;
  try {
    ({ value, grads } = tf.tidy(() => {
      const xb = tf.tensor4d(x, [m, 32, 32, 3]);
      const yb = tf.tensor1d(labels, "int32");
      return tf.variableGrads(() => {
        // BN + ReLU pairs run fused on the engine (bitwise the same values and gradients)
        const out = withLayerFusion(st.model, () => st.model.apply(xb, { training: true })) as tf.Tensor;
        predT = tf.keep(tf.argMax(out, -1));
        return crossEntropy(out, yb, st.probabilities, st.labelSmoothing);
      }, st.vars);
    }));
  } finally {
    restore?.();
  }
  st.optimizer.applyGradients(st.vars.map((v) => grads[v.name]), lr);
  const loss = value.dataSync()[0];
  const predictions = predT!.dataSync() as Int32Array;
  tf.dispose([value, predT!, ...Object.values(grads)]);
  return { loss, predictions };
}

/**
 * Throws the divergence error (a NoiselabError naming `lr`) when any weight of `model`
 * (BN's moving statistics included) is NaN or infinite, naming the first few tensors;
 * `when` says where in training. Run before every snapshot and checkpoint, so that no
 * model with non-finite weights is stored: with BN, the training loss (computed from
 * batch statistics) can stay finite while the moving variance overflows.
 */
export function assertFiniteWeights(model: LayersModel, when: string): void {
  const bad: string[] = [];
  let total = 0;
  for (const w of model.weights) {
    const v = w.read().dataSync() as Float32Array;
    let k = 0;
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) k++;
    if (k) {
      total += k;
      bad.push(`${w.originalName ?? w.name} (${k} of ${v.length})`);
    }
  }
  if (total) {
    throw new NoiselabError(
      `lr: training diverged (${total} non-finite weight values ${when}, in ${bad.length} tensors: ${
        bad.slice(0, 3).join(", ")
      }${bad.length > 3 ? ", ..." : ""}); lower the learning rate (--lr) or add warm-up (--warmup-epochs)`,
      "lr",
    );
  }
}

/** Options of {@link trainModel}. */
export interface TrainLoopOptions {
  /** Model folder: the checkpoint goes to `<dir>/checkpoint/`. */
  dir: string;
  /** Resume from this checkpoint. */
  checkpoint?: Checkpoint;
  onProgress?: (p: TrainProgress) => void;
  /** Abort between steps (the last checkpoint stays; rerunning resumes from it). */
  signal?: AbortSignal;
  /** Stop after this many completed epochs (the checkpoint is written first); simulates a killed run. */
  stopAfterEpoch?: number;
  /** Report progress at most every this many ms during an epoch (default 500). */
  progressIntervalMs?: number;
  /**
   * Trajectory snapshots: the weights are saved (and evaluated on the test subset) at
   * this many evenly spaced points before the end of training ({@link snapshotSteps}).
   * Default {@link DEFAULT_SNAPSHOTS}; 0 = none. Does not change training.
   */
  snapshots?: number;
}

/** Default number of trajectory snapshots per training run (plus the final model). */
export const DEFAULT_SNAPSHOTS = 7;

/**
 * The optimizer steps after which trajectory snapshots are taken: `round(total · j / (k + 1))`
 * for j = 1..k, deduplicated, each in 1..total-1 (the final model is the last point).
 */
export function snapshotSteps(totalSteps: number, k: number): number[] {
  const out = new Set<number>();
  for (let j = 1; j <= k; j++) {
    const s = Math.round((totalSteps * j) / (k + 1));
    if (s >= 1 && s < totalSteps) out.add(s);
  }
  return [...out].sort((a, b) => a - b);
}

/** Result of {@link trainModel}. */
export interface TrainLoopResult {
  /** False when stopped early (`stopAfterEpoch`). */
  completed: boolean;
  epochsDone: number;
  history: EpochRecord[];
  /** Test accuracy after the last epoch. */
  cleanAccuracy: number;
  wallSeconds: number;
  startedAt: string;
  resumedFromEpoch: number;
}

/** Error thrown when a run is aborted through its signal. */
export class TrainingAborted extends Error {
  constructor(epoch: number) {
    super(`training aborted during epoch ${epoch}; the checkpoint of the previous epoch is kept`);
    this.name = "TrainingAborted";
  }
}

/**
 * Train `model` (already built with the config's seed) on `data` per `cfg`,
 * checkpointing after every epoch. Resumes from `opts.checkpoint` when given.
 * @throws TrainingAborted when `opts.signal` aborts, InterruptedError (lib/util/interrupt.ts)
 *   on Kernel > Interrupt, NoiselabError naming `lr` when the loss diverges; in each case
 *   between optimizer steps, with the last epoch's checkpoint untouched.
 */
export async function trainModel(
  model: LayersModel,
  cfg: TrainConfig,
  data: PreparedData,
  opts: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const n = data.train.n;
  const bs = cfg.batchSize;
  const stepsPerEpoch = Math.ceil(n / bs);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const sched: ScheduleSpec = {
    schedule: cfg.schedule,
    lr: cfg.lr,
    totalSteps,
    stepsPerEpoch,
    warmupEpochs: cfg.warmupEpochs,
    stepMilestones: cfg.stepMilestones,
    stepGamma: cfg.stepGamma,
  };
  const st = trainStepState(model, cfg, cfg.labelSmoothing);
  const opt = st.optimizer;
  const fill = data.stats.mean.map((m, c) => -m / data.stats.std[c]); // black padding after normalisation

  let history: EpochRecord[] = [];
  let startEpoch = 0;
  let globalStep = 0;
  let wallBefore = 0;
  let startedAt = new Date().toISOString();
  if (opts.checkpoint) {
    const ck = opts.checkpoint;
    restoreWeights(model, ck.weights);
    opt.setState(ck.optimizer);
    history = ck.history;
    startEpoch = ck.epoch;
    globalStep = ck.globalStep;
    wallBefore = ck.wallSeconds;
    startedAt = ck.startedAt;
  }
  const resumedFromEpoch = startEpoch;
  const t0 = performance.now();
  const batchX = new Float32Array(bs * IMAGE_VALUES);
  const augX = new Float32Array(bs * IMAGE_VALUES);
  const batchY = new Uint8Array(bs);
  const interval = opts.progressIntervalMs ?? 500;
  let cleanAccuracy = history.length ? history[history.length - 1].testAccuracy : 0;
  const snapAt = new Set(snapshotSteps(totalSteps, opts.snapshots ?? DEFAULT_SNAPSHOTS));
  const checkInterrupt = interruptChecker(`training ${basename(opts.dir)}`);
  const bf16 = cfg.precision === "bf16";

  try {
    for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
      const epochStart = performance.now();
      const shuffleKey = `${cfg.seed}:shuffle:${epoch}`;
      const augmentKey = `${cfg.seed}:augment:${epoch}`;
      const perm = new Uint32Array(n);
      for (let i = 0; i < n; i++) perm[i] = i;
      shuffleInPlace(perm, makeRng(shuffleKey));
      const augRng = makeRng(augmentKey);
      let lossSum = 0, correct = 0, seen = 0, lr = 0;
      let lastReport = 0;
      for (let step = 0; step < stepsPerEpoch; step++) {
        if (opts.signal?.aborted) throw new TrainingAborted(epoch + 1);
        await yieldToEventLoop(); // lets the kernel's SIGINT listener and progress displays run
        checkInterrupt(); // once per batch; only between steps, so no file is ever left half written
        const idx = perm.subarray(step * bs, Math.min(n, (step + 1) * bs));
        const m = idx.length;
        gatherBatch(data.train.x, data.train.labels, idx, batchX, batchY);
        const xin = cfg.augment
          ? augmentBatch(batchX.subarray(0, m * IMAGE_VALUES), m, augRng, { out: augX, fill })
          : batchX;
        lr = learningRateAt(sched, globalStep);
        // mixed precision (TrainConfig.precision): bf16 convolutions for the step only, so the
        // clean-accuracy evaluations and snapshots below evaluate the fp32 weights in fp32
        if (bf16) setConvPrecision("bf16", "training");
        let stepOut;
        try {
          stepOut = trainStep(
            st,
            xin.subarray(0, m * IMAGE_VALUES),
            batchY.subarray(0, m),
            lr,
            cfg.trainNoise > 0
              ? { sigma: cfg.trainNoise, key: `${cfg.seed}:trainNoise:${globalStep}` }
              : undefined,
          );
        } finally {
          if (bf16) setConvPrecision("fp32");
        }
        const { loss: lossV, predictions: p } = stepOut;
        if (!Number.isFinite(lossV)) {
          // stop instead of storing a NaN model; the last epoch's checkpoint stays untouched
          throw new NoiselabError(
            `lr: training diverged (loss ${lossV} at epoch ${epoch + 1}, step ${step + 1}, lr ${lr}); ` +
              `lower the learning rate (--lr) or add warm-up (--warmup-epochs)`,
            "lr",
          );
        }
        for (let i = 0; i < m; i++) if (p[i] === batchY[i]) correct++;
        lossSum += lossV * m;
        seen += m;
        globalStep++;
        if (snapAt.has(globalStep)) {
          assertFiniteWeights(model, `at epoch ${epoch + 1}, step ${step + 1}, lr ${lr}`);
          await saveSnapshot(opts.dir, model, {
            step: globalStep,
            imagesSeen: epoch * n + Math.min(n, (step + 1) * bs),
            epochs: globalStep / stepsPerEpoch,
            testAccuracy: await accuracy(model, data.test.x, data.test.labels, TRAIN_EVAL_BATCH),
          });
        }
        const now = performance.now();
        if (opts.onProgress && (now - lastReport >= interval || step === stepsPerEpoch - 1)) {
          lastReport = now;
          const ips = seen / ((now - epochStart) / 1000);
          const left = (totalSteps - globalStep) * bs;
          opts.onProgress({
            phase: "train",
            epoch: epoch + 1,
            epochs: cfg.epochs,
            step: step + 1,
            steps: stepsPerEpoch,
            loss: lossSum / seen,
            accuracy: correct / seen,
            lr,
            imagesPerSec: ips,
            etaSeconds: left / ips,
          });
        }
      }
      const trainSeconds = (performance.now() - epochStart) / 1000;
      opts.onProgress?.({
        phase: "eval",
        epoch: epoch + 1,
        epochs: cfg.epochs,
        step: stepsPerEpoch,
        steps: stepsPerEpoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        lr,
        imagesPerSec: seen / trainSeconds,
        etaSeconds: ((cfg.epochs - epoch - 1) * stepsPerEpoch * bs) / (seen / trainSeconds),
      });
      cleanAccuracy = await accuracy(model, data.test.x, data.test.labels, TRAIN_EVAL_BATCH);
      const seconds = (performance.now() - epochStart) / 1000;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / seen,
        trainAccuracy: correct / seen,
        testAccuracy: cleanAccuracy,
        lr,
        seconds,
        imagesPerSec: seen / trainSeconds,
      };
      history = [...history, rec];
      const info: CheckpointInfo = {
        epoch: epoch + 1,
        globalStep,
        history,
        wallSeconds: wallBefore + (performance.now() - t0) / 1000,
        startedAt,
        rng: { shuffle: `${cfg.seed}:shuffle:${epoch + 1}`, augment: `${cfg.seed}:augment:${epoch + 1}` },
      };
      // the loss can stay finite while BN's moving statistics overflow (training uses the batch's)
      assertFiniteWeights(model, `after epoch ${epoch + 1}, lr ${lr}`);
      await saveCheckpoint(opts.dir, model, opt.getState(), info);
      opts.onProgress?.({
        phase: "epoch-end",
        epoch: epoch + 1,
        epochs: cfg.epochs,
        step: stepsPerEpoch,
        steps: stepsPerEpoch,
        loss: rec.loss,
        accuracy: rec.trainAccuracy,
        testAccuracy: cleanAccuracy,
        lr,
        imagesPerSec: rec.imagesPerSec,
        etaSeconds: (cfg.epochs - epoch - 1) * seconds,
      });
      if (opts.stopAfterEpoch !== undefined && epoch + 1 >= opts.stopAfterEpoch && epoch + 1 < cfg.epochs) {
        return {
          completed: false,
          epochsDone: epoch + 1,
          history,
          cleanAccuracy,
          wallSeconds: info.wallSeconds,
          startedAt,
          resumedFromEpoch,
        };
      }
    }
  } finally {
    opt.dispose();
  }
  const last = history[history.length - 1];
  opts.onProgress?.({
    phase: "done",
    epoch: cfg.epochs,
    epochs: cfg.epochs,
    step: stepsPerEpoch,
    steps: stepsPerEpoch,
    loss: last?.loss ?? NaN,
    accuracy: last?.trainAccuracy ?? NaN,
    testAccuracy: cleanAccuracy,
    lr: last?.lr ?? 0,
    imagesPerSec: last?.imagesPerSec ?? 0,
    etaSeconds: 0,
  });
  return {
    completed: true,
    epochsDone: cfg.epochs,
    history,
    cleanAccuracy,
    wallSeconds: wallBefore + (performance.now() - t0) / 1000,
    startedAt,
    resumedFromEpoch,
  };
}
