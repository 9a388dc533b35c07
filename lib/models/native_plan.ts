/**
 * Translates a fused inference plan (fused.ts) into a program of the engine's
 * native inference plans (lib/backend/engine plan.ts), so that a whole forward
 * pass runs in one call into the shim: weights reordered once per plan (= once
 * per noise draw), no per-layer round trips through tfjs, a ResNet block's
 * residual add + ReLU fused into its second convolution (oneDNN sum + relu
 * post-ops), and — under bf16 precision — activations kept in bf16 between
 * layers.
 *
 * Returns null, and the fused plan runs layer by layer through tfjs as before,
 * whenever anything is outside what the native ops do exactly: another backend
 * than the engine, a shim without plans, a layer or configuration not listed
 * below, a BN that could not be folded (its chain runs unfused, NaN semantics
 * included), or a non-finite weight. Supported layers: Conv2D (NHWC, linear or
 * ReLU), ZeroPadding2D, AveragePooling2D with a 1x1 window (a strided
 * subsample), MaxPooling2D, Add (two inputs), Activation relu/linear,
 * GlobalAveragePooling2D, Flatten, Dropout (identity in inference), Dense
 * (linear or ReLU) — everything the ResNet and VGG builders of lib/models use.
 *
 * Numerics: an fp32 plan computes the same bits as the layer-by-layer fused
 * path (the same oneDNN primitives and hand-written loops; test/native_plan.test.ts).
 * A bf16 plan rounds every activation to bf16 where the layer-by-layer bf16
 * path rounds only convolution inputs (a residual shortcut is rounded before
 * it is added, the logits' input of the global pooling is bf16), so its
 * logits differ from that path's by bf16 rounding.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { ENGINE_NAME } from "../backend/engine/name.ts";
import { createNativePlan, type NativePlan, PLAN_OP, PLAN_OP_INTS } from "../backend/engine/plan.ts";
import { convPrecision } from "../backend/engine/precision.ts";
import type { FusedStep } from "./fused.ts";

type Layer = tfl.LayersModel["layers"][number];

interface Op {
  op: number;
  ins: string[];
  /** The residual summand of a conv (added before its ReLU), if any. */
  sum?: string;
  out: string;
  params: number[];
}

class Unsupported extends Error {}
const no = (why: string): never => {
  throw new Unsupported(why);
};

// deno-lint-ignore no-explicit-any
const cfgOf = (layer: Layer) => layer.getConfig() as Record<string, any>;
const pair = (v: number | number[] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

/** A built native plan with its input's and output's elements per image. */
export interface BuiltNativePlan {
  plan: NativePlan;
  inPer: number;
  outPer: number;
}

/**
 * A native plan for `steps` of `model` (see the module notes), in the engine's
 * convolution precision now in effect (lib/backend/engine `convPrecision`), or
 * `{ skip }` saying why the layer-by-layer path must run. There is deliberately no switch to turn native plans off: a bf16
 * sweep's key names the native plans' arithmetic (lib/noise
 * `BF16_FAST_PATH_ARITHMETIC`), so the path must follow from the model alone.
 */
export function nativeInferencePlan(
  model: tfl.LayersModel,
  steps: FusedStep[],
  output: string,
): BuiltNativePlan | { skip: string } {
  try {
    if (tf.getBackend() !== ENGINE_NAME) no(`backend ${tf.getBackend()} is not ${ENGINE_NAME}`);
    return build(model, steps, output);
  } catch (e) {
    if (e instanceof Unsupported) return { skip: e.message };
    throw e;
  }
}

function build(
  model: tfl.LayersModel,
  steps: FusedStep[],
  output: string,
): BuiltNativePlan {
  const inputName = model.inputLayers[0].name;
  const shapes = new Map<string, number[]>();
  const inShape = model.inputs[0].shape.slice(1) as number[];
  if (inShape.length !== 3 || inShape.some((d) => !(d > 0))) no("the input is not [H, W, C]");
  shapes.set(inputName, inShape);
  const shapeOfLayer = (l: Layer) => {
    const s = l.outputShape as (number | null)[];
    if (!Array.isArray(s) || Array.isArray(s[0])) no(`layer ${l.name} has several outputs`);
    return s.slice(1) as number[];
  };
  // flatten / dropout / linear activation: the output is the input's value under another name
  const alias = new Map<string, string>();
  const res = (n: string) => alias.get(n) ?? n;
  const shape = (n: string) => shapes.get(res(n)) ?? no(`no shape for ${n}`);

  const params: Float32Array[] = [];
  let paramLen = 0;
  const addParams = (a: Float32Array | null | undefined): number => {
    if (!a) return -1;
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) no("a weight is not finite");
    const off = paramLen;
    params.push(a);
    paramLen += a.length;
    return off;
  };

  const convOp = (
    input: string,
    out: string,
    filter: Float32Array,
    fshape: number[],
    bias: Float32Array | null,
    relu: boolean,
    strides: [number, number],
    pad: string,
    dil: [number, number],
  ): Op => {
    const [H, W, C] = shape(input);
    const [kh, kw, ic, oc] = fshape;
    if (ic !== C) no(`conv ${out}: ${ic} input channels for a ${C}-channel input`);
    if (pad !== "same" && pad !== "valid") no(`conv ${out}: padding ${pad}`);
    const ci = tf.backend_util.computeConv2DInfo(
      [1, H, W, C],
      [kh, kw, ic, oc],
      strides,
      dil,
      pad as "same" | "valid",
      undefined,
      false,
      "channelsLast",
    );
    const ok = (i: number, k: number, d: number, s: number, p0: number, p1: number, o: number) =>
      Math.floor((i + p0 + p1 - ((k - 1) * d + 1)) / s) + 1 === o;
    if (
      !ok(H, kh, dil[0], strides[0], ci.padInfo.top, ci.padInfo.bottom, ci.outHeight) ||
      !ok(W, kw, dil[1], strides[1], ci.padInfo.left, ci.padInfo.right, ci.outWidth)
    ) no(`conv ${out}: padding inconsistent with the output size`);
    shapes.set(out, [ci.outHeight, ci.outWidth, oc]);
    return {
      op: PLAN_OP.conv,
      ins: [input],
      out,
      params: [
        H,
        W,
        C,
        kh,
        kw,
        oc,
        ci.outHeight,
        ci.outWidth,
        strides[0],
        strides[1],
        dil[0],
        dil[1],
        ci.padInfo.top,
        ci.padInfo.left,
        ci.padInfo.bottom,
        ci.padInfo.right,
        relu ? 1 : 0,
        addParams(filter),
        addParams(bias),
      ],
    };
  };

  const ops: Op[] = [];
  for (const s of steps) {
    if (s.kind === "conv") {
      ops.push(convOp(
        res(s.input),
        s.out,
        s.filter.dataSync() as Float32Array,
        s.filter.shape,
        s.bias ? s.bias.dataSync() as Float32Array : null,
        s.relu,
        s.strides,
        s.pad,
        s.dilations,
      ));
      continue;
    }
    const { layer } = s;
    const cls = layer.getClassName();
    const c = cfgOf(layer);
    const ins = s.inputs.map(res);
    const out = layer.name;
    if (cls === "Flatten" || cls === "Dropout" || (cls === "Activation" && c.activation === "linear")) {
      if (ins.length !== 1) no(`${cls} ${out} with ${ins.length} inputs`);
      alias.set(out, ins[0]);
      if (cls === "Flatten") shapes.set(out, [shape(ins[0]).reduce((a, b) => a * b, 1)]);
      continue;
    }
    if (ins.length !== (cls === "Add" ? 2 : 1)) no(`${cls} ${out} with ${ins.length} inputs`);
    const ishape = shape(ins[0]);
    const oshape = shapeOfLayer(layer);
    if (cls === "Conv2D") {
      const act = c.activation ?? "linear";
      if ((c.dataFormat ?? "channelsLast") !== "channelsLast" || (act !== "linear" && act !== "relu")) {
        no(`Conv2D ${out}: ${c.dataFormat} / ${act}`);
      }
      const kernel = layer.weights.find((v) => v.originalName.split("/").at(-1) === "kernel")!;
      const bias = layer.weights.find((v) => v.originalName.split("/").at(-1) === "bias");
      ops.push(convOp(
        ins[0],
        out,
        kernel.read().dataSync() as Float32Array,
        kernel.shape as number[],
        bias ? bias.read().dataSync() as Float32Array : null,
        act === "relu",
        pair(c.strides, 1),
        c.padding,
        pair(c.dilationRate, 1),
      ));
      continue;
    }
    shapes.set(out, oshape);
    if (cls === "ZeroPadding2D") {
      if (ishape.length !== 3 || oshape.length !== 3) no(`ZeroPadding2D ${out}: rank`);
      const p = c.padding as [[number, number], [number, number]];
      // channelsFirst on an NHWC tensor (the option-A shortcut's channel padding) pads its last two axes
      const before = (c.dataFormat ?? "channelsLast") === "channelsLast"
        ? [p[0][0], p[1][0], 0]
        : [0, p[0][0], p[1][0]];
      for (let k = 0; k < 3; k++) if (oshape[k] < ishape[k] + before[k]) no(`ZeroPadding2D ${out}: shape`);
      ops.push({ op: PLAN_OP.pad, ins, out, params: [...ishape, ...oshape, ...before] });
    } else if (cls === "AveragePooling2D") {
      const [ph, pw] = pair(c.poolSize, 2);
      const [sh, sw] = pair(c.strides ?? c.poolSize, 1);
      if (ph !== 1 || pw !== 1 || (c.dataFormat ?? "channelsLast") !== "channelsLast") {
        no(`AveragePooling2D ${out}: only 1x1 windows (a strided subsample) run natively`);
      }
      ops.push({ op: PLAN_OP.subsample, ins, out, params: [...ishape, sh, sw, oshape[0], oshape[1]] });
    } else if (cls === "MaxPooling2D") {
      if ((c.dataFormat ?? "channelsLast") !== "channelsLast") no(`MaxPooling2D ${out}: channelsFirst`);
      const pool = pair(c.poolSize, 2), strides = pair(c.strides ?? c.poolSize, 1);
      const pi = tf.backend_util.computePool2DInfo(
        [1, ...ishape] as [number, number, number, number],
        pool,
        strides,
        1,
        c.padding,
      );
      if (pi.outHeight !== oshape[0] || pi.outWidth !== oshape[1]) no(`MaxPooling2D ${out}: shape`);
      ops.push({
        op: PLAN_OP.maxpool,
        ins,
        out,
        params: [
          ...ishape,
          pool[0],
          pool[1],
          strides[0],
          strides[1],
          pi.outHeight,
          pi.outWidth,
          pi.padInfo.top,
          pi.padInfo.left,
        ],
      });
    } else if (cls === "Add") {
      const n = ishape.reduce((a, b) => a * b, 1);
      if (shape(ins[1]).join() !== ishape.join()) no(`Add ${out}: broadcasting`);
      ops.push({ op: PLAN_OP.add, ins, out, params: [n, 0] });
    } else if (cls === "Activation" && c.activation === "relu") {
      ops.push({ op: PLAN_OP.relu, ins, out, params: [ishape.reduce((a, b) => a * b, 1)] });
    } else if (cls === "GlobalAveragePooling2D") {
      if (ishape.length !== 3 || (c.dataFormat ?? "channelsLast") !== "channelsLast") no(`GAP ${out}`);
      ops.push({ op: PLAN_OP.gap, ins, out, params: [ishape[0] * ishape[1], ishape[2]] });
    } else if (cls === "Dense") {
      const act = c.activation ?? "linear";
      // a flattened input keeps its [H, W, C] value (the same memory, row-major)
      const flat = shapes.get(s.inputs[0]);
      if (flat?.length !== 1 || (act !== "linear" && act !== "relu")) no(`Dense ${out}: input rank / ${act}`);
      const kernel = layer.weights.find((v) => v.originalName.split("/").at(-1) === "kernel")!;
      const bias = layer.weights.find((v) => v.originalName.split("/").at(-1) === "bias");
      const [K, U] = kernel.shape as number[];
      if (K !== flat![0]) no(`Dense ${out}: shape`);
      ops.push({
        op: PLAN_OP.dense,
        ins,
        out,
        params: [
          K,
          U,
          act === "relu" ? 1 : 0,
          addParams(kernel.read().dataSync() as Float32Array),
          addParams(bias ? bias.read().dataSync() as Float32Array : null),
        ],
      });
    } else {
      no(`layer ${out} (${cls}) has no native op`);
    }
  }
  const outName = res(output);
  const outShape = shape(outName);
  if (outShape.length !== 1) no("the output is not [N, classes]");

  // Residual add + ReLU. bf16: conv (no ReLU) -> Add -> ReLU, where the conv's and the add's outputs
  // have one reader each, becomes one conv with the add's other input as its sum post-op, placed where
  // the add was (the shortcut may be computed after the conv in layer order). oneDNN's kernels add the
  // summand into the accumulator before the bias, which changes the float rounding: fp32 plans keep
  // the conv and fuse only the ReLU into the add (one pass, the same operations as Add then Relu).
  const precision = convPrecision();
  const readers = (name: string) => ops.filter((o) => o.ins.includes(name) || o.sum === name).length;
  for (let i = 0; i < ops.length; i++) {
    const add = ops[i];
    if (add.op !== PLAN_OP.add || add.params[1]) continue;
    const relu = ops.find((o) => o.op === PLAN_OP.relu && o.ins[0] === add.out);
    if (!relu || readers(add.out) !== 1 || add.out === outName) continue;
    const conv = precision === "bf16" && add.ins[0] !== add.ins[1]
      ? [0, 1].map((k) => ({ k, o: ops.find((o) => o.op === PLAN_OP.conv && o.out === add.ins[k]) }))
        .find(({ o }) => o && !o.sum && o.params[16] === 0 && readers(o.out) === 1 && o.out !== outName)
      : undefined;
    shapes.set(relu.out, shape(add.out));
    ops.splice(ops.indexOf(relu), 1);
    if (conv) {
      const c = conv.o!;
      c.sum = add.ins[1 - conv.k];
      c.params[16] = 1;
      c.out = relu.out;
      ops.splice(ops.indexOf(c), 1);
      ops.splice(ops.indexOf(add), 1, c);
    } else {
      add.params[1] = 1;
      add.out = relu.out;
    }
  }

  // slots: 0 the input, 1 the output; the rest reused once their value's last reader has run
  const per = (n: string) => shape(n).reduce((a, b) => a * b, 1);
  const kindOf = (n: string) => (shape(n).length === 3 ? 1 : 0);
  const lastRead = new Map<string, number>();
  ops.forEach((o, i) => [...o.ins, ...(o.sum ? [o.sum] : [])].forEach((n) => lastRead.set(n, i)));
  const slots: { kind: number; per: number }[] = [{ kind: 1, per: per(inputName) }, {
    kind: 0,
    per: per(outName),
  }];
  if (kindOf(inputName) !== 1) no("the input is not an image batch");
  const slotOf = new Map<string, number>([[inputName, 0]]);
  const free: number[] = [];
  const program = new Int32Array(ops.length * PLAN_OP_INTS);
  ops.forEach((o, i) => {
    const rec = program.subarray(i * PLAN_OP_INTS, (i + 1) * PLAN_OP_INTS);
    const slot = (n: string) => slotOf.get(n) ?? no(`${n} is read before it is computed`);
    let out: number;
    if (o.out === outName) {
      if (kindOf(o.out) !== 0) no("the output is not f32");
      out = 1;
    } else if (o.sum && lastRead.get(o.sum) === i && slot(o.sum) > 1 && slot(o.sum) !== slot(o.ins[0])) {
      out = slot(o.sum); // in place: the conv adds into its shortcut's buffer
    } else {
      const kind = kindOf(o.out);
      const j = free.findIndex((s) => slots[s].kind === kind);
      out = j >= 0 ? free.splice(j, 1)[0] : slots.push({ kind, per: 0 }) - 1;
    }
    slots[out].per = Math.max(slots[out].per, per(o.out));
    slotOf.set(o.out, out);
    rec[0] = o.op;
    rec[1] = slot(o.ins[0]);
    rec[2] = o.op === PLAN_OP.add ? slot(o.ins[1]) : o.sum ? slot(o.sum) : -1;
    rec[3] = out;
    rec.set(o.params, 4);
    for (const n of new Set([...o.ins, ...(o.sum ? [o.sum] : [])])) {
      const s = slotOf.get(n)!;
      if (lastRead.get(n) === i && s > 1 && s !== out) free.push(s);
    }
  });
  const all = new Float32Array(paramLen);
  let off = 0;
  for (const p of params) {
    all.set(p, off);
    off += p.length;
  }
  const plan = createNativePlan(
    program,
    Int32Array.from(slots.flatMap((s) => [s.kind, s.per])),
    all,
    precision,
  ) ?? no("the engine's shim has no native plans");
  return { plan, inPer: per(inputName), outPer: per(outName) };
}
