// Kernel-by-kernel checks of the native `noiselab` engine against the reference
// tfjs `cpu` backend: random finite inputs of several shapes, and inputs holding
// NaN, +Inf and -Inf, which must come out exactly as tfjs `cpu` gives them (NaN
// where it gives NaN, the same infinities; finite values within tolerance).
// Every comparison also asserts from the engine's own counters which path ran:
// the native one, or (named so in the label) a cpu fallback the engine takes on
// purpose.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  BN_TRAIN,
  engineSkipReason,
  engineStats,
  engineUnavailableReason,
  registerEngine,
  setEngineProfiling,
  skipTagged,
} from "../lib/backend/engine/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

const nat = registerEngine();
// Skipped only where the shim cannot be built (no oneDNN headers / no g++); where it
// can, a shim that does not load fails these tests.
const skip = nat == null ? engineSkipReason() : null;
if (nat == null) {
  console.error(`[engine] ${engineUnavailableReason()}${skip ? ` (tests skipped: ${skip})` : ""}`);
}

function engineTest(name: string, fn: () => Promise<void> | void) {
  Deno.test({ name: skipTagged(`engine: ${name}`, skip), ignore: skip != null, fn });
}

function rand(shape: number[], seed: string, scale = 1): Float32Array {
  const rng = makeRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}

/** The special-value mixes fed to every kernel. */
const SPECIALS: Record<string, number[]> = {
  "NaN": [NaN],
  "+Inf": [Infinity],
  "-Inf": [-Infinity],
  "NaN/+Inf/-Inf": [NaN, Infinity, -Infinity],
};

/** A copy of `a` with `count` entries at seeded random positions set to `values` (cycled). */
function sprinkle(a: Float32Array, seed: string, values: number[], count = 3): Float32Array {
  const b = a.slice();
  const rng = makeRng(seed);
  for (let k = 0; k < count; k++) b[Math.floor(rng() * b.length)] = values[k % values.length];
  return b;
}

/** Which engine paths a comparison must have taken (kernel names, from engineStats()). */
interface Paths {
  /** each ran natively at least once */
  native?: string[];
  /** each ran through the cpu fallback, and never natively */
  fallback?: string[];
}

function assertPaths(label: string, st: Record<string, { native: number; fallback: number }>, paths: Paths) {
  const all = [...(paths.native ?? []), ...(paths.fallback ?? [])];
  assert.ok(all.length > 0, `${label}: the test names no kernel path to check`);
  for (const k of paths.native ?? []) {
    assert.ok((st[k]?.native ?? 0) > 0, `${label}: ${k} did not run natively (${JSON.stringify(st[k])})`);
  }
  for (const k of paths.fallback ?? []) {
    assert.ok(
      (st[k]?.fallback ?? 0) > 0 && (st[k]?.native ?? 0) === 0,
      `${label}: ${k} was expected to take the cpu fallback (${JSON.stringify(st[k])})`,
    );
  }
}

type Fn = () => tf.Tensor | tf.Tensor[];

async function runOn(backend: string, fn: Fn) {
  await tf.setBackend(backend);
  const r = tf.tidy(fn);
  const arr = Array.isArray(r) ? r : [r];
  const vals = arr.map((t) => t.dataSync().slice() as Float32Array);
  const shapes = arr.map((t) => t.shape);
  tf.dispose(arr);
  return { vals, shapes };
}

/** Runs `ref` on cpu and `eng` on the engine (profiled), checks the engine's paths, returns both results. */
async function both(label: string, ref: Fn, eng: Fn, paths: Paths) {
  const r = await runOn("cpu", ref);
  setEngineProfiling(true);
  let e;
  try {
    e = await runOn("onednn", eng);
    assertPaths(label, engineStats(), paths);
  } finally {
    setEngineProfiling(false);
  }
  assert.deepEqual(e.shapes, r.shapes, `${label}: output shapes differ`);
  return { ref: r.vals, eng: e.vals };
}

/**
 * NaN-aware comparison: NaN exactly where the reference has NaN, the same
 * infinities where it has infinities, finite values within atol + rtol * scale
 * (scale: the largest finite |reference| value).
 */
function assertClose(ref: Float32Array, got: Float32Array, label: string, rtol = 1e-4, atol = 1e-5) {
  assert.equal(got.length, ref.length, `${label}: length`);
  let scale = 0;
  for (const v of ref) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], g = got[i];
    if (Number.isNaN(r) || Number.isNaN(g)) {
      assert.ok(Number.isNaN(r) && Number.isNaN(g), `${label}: at ${i} reference ${r}, engine ${g}`);
    } else if (!Number.isFinite(r) || !Number.isFinite(g)) {
      assert.equal(g, r, `${label}: at ${i} reference ${r}, engine ${g}`);
    } else {
      const d = Math.abs(r - g);
      if (d > worst) {
        worst = d;
        at = i;
      }
    }
  }
  assert.ok(
    worst <= atol + rtol * scale,
    `${label}: max |diff| ${worst} at ${at} (ref ${ref[at]}, got ${got[at]}, scale ${scale})`,
  );
}

/** Counts of non-finite reference values, so that a special-value case provably produced some. */
function nonFinite(a: Float32Array): number {
  let k = 0;
  for (const v of a) if (!Number.isFinite(v)) k++;
  return k;
}

/** The same computation on cpu and on the engine; compares every output. */
async function check(label: string, fn: Fn, paths: Paths, rtol = 1e-4, opts: { special?: boolean } = {}) {
  const { ref, eng } = await both(label, fn, fn, paths);
  ref.forEach((r, i) => assertClose(r, eng[i], `${label}[${i}]`, rtol));
  if (opts.special) {
    assert.ok(
      ref.some((r) => nonFinite(r) > 0),
      `${label}: the reference has no NaN/Inf: the case tests nothing`,
    );
  }
}

engineTest("the native shim loads here (oneDNN headers and g++ are present)", () => {
  assert.ok(nat, `the shim should build and load on this machine: ${engineUnavailableReason()}`);
});

type ConvCase = {
  x: number[];
  f: number[];
  s: number;
  pad: "same" | "valid" | number;
  d?: number;
  fallback?: boolean;
};
const CONV_CASES: ConvCase[] = [
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], s: 1, pad: "same" },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], s: 2, pad: "same" },
  { x: [3, 8, 8, 4], f: [3, 3, 4, 8], s: 2, pad: "same" }, // TF's asymmetric padding (bottom/right)
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], s: 1, pad: "valid" },
  { x: [2, 11, 10, 6], f: [3, 3, 6, 4], s: 2, pad: "valid" },
  { x: [4, 16, 16, 16], f: [3, 3, 16, 32], s: 2, pad: "same" }, // ResNet downsampling shape
  { x: [8, 32, 32, 16], f: [3, 3, 16, 16], s: 1, pad: "same" }, // ResNet stage-1 shape
  { x: [2, 8, 8, 5], f: [1, 1, 5, 7], s: 2, pad: "valid" },
  { x: [2, 10, 9, 3], f: [5, 5, 3, 4], s: 1, pad: 1 },
  // tfjs' numeric padding with a non-square filter gives output sizes oneDNN rejects:
  // the engine sends this one to the cpu kernel on purpose
  { x: [2, 10, 9, 3], f: [5, 3, 3, 4], s: 1, pad: 1, fallback: true },
  { x: [2, 10, 9, 3], f: [5, 3, 3, 4], s: 2, pad: "same" },
  { x: [2, 12, 12, 3], f: [3, 3, 3, 4], s: 1, pad: "same", d: 2 },
];
const convLabel = (c: ConvCase) => `${JSON.stringify(c)}${c.fallback ? " (cpu fallback)" : ""}`;
const convPaths = (c: ConvCase, ...names: string[]): Paths =>
  c.fallback ? { fallback: names } : { native: names };

engineTest("conv2d forward (strides, same/valid/explicit padding, dilation, odd sizes)", async () => {
  for (const c of CONV_CASES) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`);
    await check(
      `conv ${convLabel(c)}`,
      () =>
        tf.conv2d(
          tf.tensor4d(X, c.x as any),
          tf.tensor4d(F, c.f as any),
          c.s,
          c.pad as any,
          "NHWC",
          c.d ?? 1,
        ),
      convPaths(c, "Conv2D"),
    );
  }
});

engineTest("fused conv2d with bias and relu", async () => {
  for (const c of CONV_CASES.slice(0, 6)) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`), B = rand([c.f[3]], "b");
    for (const activation of ["linear", "relu"] as const) {
      await check(`fused ${activation} ${JSON.stringify(c)}`, () =>
        tf.fused.conv2d({
          x: tf.tensor4d(X, c.x as any),
          filter: tf.tensor4d(F, c.f as any),
          strides: c.s,
          pad: c.pad as any,
          bias: tf.tensor1d(B),
          activation,
        }), { native: ["FusedConv2D"] });
    }
  }
});

engineTest("conv2d and fused conv2d (relu) with NaN/+Inf/-Inf in the input, filter or bias", async () => {
  for (const c of [CONV_CASES[0], CONV_CASES[5]]) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`), B = rand([c.f[3]], "b");
    for (const [kind, values] of Object.entries(SPECIALS)) {
      const Xs = sprinkle(X, `sx${kind}`, values), Fs = sprinkle(F, `sf${kind}`, values, 1);
      const Bs = sprinkle(B, `sb${kind}`, values, 1);
      const cases: [string, Float32Array, Float32Array, Float32Array][] = [
        ["x", Xs, F, B],
        ["filter", X, Fs, B],
        ["bias", X, F, Bs],
      ];
      for (const [where, x, f, b] of cases) {
        const label = `${kind} in ${where} ${JSON.stringify(c)}`;
        if (where !== "bias") {
          await check(
            `conv ${label}`,
            () => tf.conv2d(tf.tensor4d(x, c.x as any), tf.tensor4d(f, c.f as any), c.s, c.pad as any),
            { native: ["Conv2D"] },
            1e-4,
            { special: true },
          );
        }
        for (const activation of ["linear", "relu"] as const) {
          await check(
            `fused ${activation} ${label}`,
            () =>
              tf.fused.conv2d({
                x: tf.tensor4d(x, c.x as any),
                filter: tf.tensor4d(f, c.f as any),
                strides: c.s,
                pad: c.pad as any,
                bias: tf.tensor1d(b),
                activation,
              }),
            { native: ["FusedConv2D"] },
            1e-4,
            { special: !(activation === "relu" && kind === "-Inf" && where === "bias") }, // relu(-Inf) = 0
          );
        }
      }
    }
  }
});

engineTest("conv2d gradients (backprop input and filter)", async () => {
  for (const c of CONV_CASES.filter((c) => (c.d ?? 1) === 1)) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`);
    await check(
      `conv grads ${convLabel(c)}`,
      () => {
        const x = tf.tensor4d(X, c.x as any), f = tf.tensor4d(F, c.f as any);
        const g = tf.grads((x: tf.Tensor, f: tf.Tensor) => {
          const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad as any);
          return tf.sum(tf.mul(y, tf.sin(y))); // a non-trivial dy
        });
        return g([x, f]);
      },
      convPaths(c, "Conv2DBackpropInput", "Conv2DBackpropFilter"),
    );
  }
});

engineTest("conv2d gradients with NaN/+Inf/-Inf in dy, the input or the filter", async () => {
  for (const c of [CONV_CASES[2], CONV_CASES[4]]) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`);
    const yShape = tf.tidy(() =>
      tf.conv2d(tf.zeros(c.x as any) as tf.Tensor4D, tf.zeros(c.f as any) as tf.Tensor4D, c.s, c.pad as any)
        .shape
    );
    const R = rand(yShape, "dy");
    for (const [kind, values] of Object.entries(SPECIALS)) {
      for (const where of ["dy", "x", "filter"]) {
        const x = where === "x" ? sprinkle(X, `gx${kind}`, values, 2) : X;
        const f = where === "filter" ? sprinkle(F, `gf${kind}`, values, 1) : F;
        const r = where === "dy" ? sprinkle(R, `gr${kind}`, values, 2) : R;
        await check(
          `conv grads ${kind} in ${where} ${JSON.stringify(c)}`,
          () =>
            tf.grads((x: tf.Tensor, f: tf.Tensor) =>
              tf.sum(
                tf.mul(
                  tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad as any),
                  tf.tensor(r, yShape),
                ),
              )
            )([tf.tensor4d(x, c.x as any), tf.tensor4d(f, c.f as any)]),
          { native: ["Conv2DBackpropInput", "Conv2DBackpropFilter"] },
          1e-4,
          { special: true },
        );
      }
    }
  }
});

engineTest("fused conv2d gradients with bias", async () => {
  const c = CONV_CASES[2];
  const X = rand(c.x, "x"), F = rand(c.f, "f"), B = rand([c.f[3]], "b");
  await check("fused conv grads", () => {
    const g = tf.grads((x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.square(
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: f as tf.Tensor4D,
            strides: c.s,
            pad: c.pad as any,
            bias: b,
          }),
        ),
      )
    );
    return g([tf.tensor4d(X, c.x as any), tf.tensor4d(F, c.f as any), tf.tensor1d(B)]);
  }, { native: ["FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"] });
});

const MATMUL_CASES: [number[], number[], boolean, boolean][] = [
  [[7, 5], [5, 3], false, false],
  [[5, 7], [5, 3], true, false],
  [[7, 5], [3, 5], false, true],
  [[5, 7], [3, 5], true, true],
  [[2, 6, 4], [2, 4, 9], false, false],
  [[64, 256], [256, 10], false, false],
];

engineTest("matmul (transposes, batch) and fused matmul with bias/relu, and gradients", async () => {
  for (const [as, bs, ta, tb] of MATMUL_CASES) {
    const A = rand(as, `a${as}`), B = rand(bs, `b${bs}`);
    await check(
      `matmul ${as} ${bs} ${ta} ${tb}`,
      () => tf.matMul(tf.tensor(A, as), tf.tensor(B, bs), ta, tb),
      { native: ["BatchMatMul"] },
    );
    if (as.length === 2) {
      const n = tb ? bs[0] : bs[1];
      const bias = rand([n], "bias");
      await check(
        `fused matmul ${as} ${bs}`,
        () =>
          tf.fused.matMul({
            a: tf.tensor2d(A, as as any),
            b: tf.tensor2d(B, bs as any),
            transposeA: ta,
            transposeB: tb,
            bias: tf.tensor1d(bias),
            activation: "relu",
          }),
        { native: ["_FusedMatMul"] },
      );
      await check(
        `matmul grads ${as} ${bs}`,
        () =>
          tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, ta, tb))))([
            tf.tensor(A, as),
            tf.tensor(B, bs),
          ]),
        { native: ["BatchMatMul"] },
      );
    }
  }
});

engineTest("matmul and fused matmul (relu) with NaN/+Inf/-Inf in either operand or the bias", async () => {
  for (const [as, bs, ta, tb] of [MATMUL_CASES[1], MATMUL_CASES[5]]) {
    const A = rand(as, `a${as}`), B = rand(bs, `b${bs}`);
    const n = tb ? bs[0] : bs[1];
    const bias = rand([n], "bias");
    for (const [kind, values] of Object.entries(SPECIALS)) {
      for (const where of ["a", "b", "bias"]) {
        const a = where === "a" ? sprinkle(A, `ma${kind}`, values) : A;
        const b = where === "b" ? sprinkle(B, `mb${kind}`, values) : B;
        const bi = where === "bias" ? sprinkle(bias, `mbias${kind}`, values, 1) : bias;
        const label = `${kind} in ${where} ${as} ${bs}`;
        if (where !== "bias") {
          await check(
            `matmul ${label}`,
            () => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs), ta, tb),
            { native: ["BatchMatMul"] },
            1e-4,
            { special: true },
          );
        }
        for (const activation of ["linear", "relu"] as const) {
          await check(
            `fused matmul ${activation} ${label}`,
            () =>
              tf.fused.matMul({
                a: tf.tensor2d(a, as as any),
                b: tf.tensor2d(b, bs as any),
                transposeA: ta,
                transposeB: tb,
                bias: tf.tensor1d(bi),
                activation,
              }),
            { native: ["_FusedMatMul"] },
            1e-4,
            { special: !(activation === "relu" && kind === "-Inf" && where === "bias") }, // relu(-Inf) = 0
          );
        }
      }
    }
  }
});

type PoolCase = [number[], number, number, "same" | "valid"];
const POOL_CASES: PoolCase[] = [
  [[2, 8, 8, 3], 2, 2, "valid"],
  [[2, 8, 8, 3], 2, 2, "same"], // "same" without padding
  [[2, 9, 7, 4], 2, 2, "same"],
  [[2, 9, 9, 4], 3, 2, "same"],
  [[3, 7, 7, 5], 3, 1, "valid"],
  [[4, 16, 16, 32], 2, 2, "valid"], // VGG-like: 2 blocks of 16 channels
  [[2, 10, 10, 40], 3, 2, "same"], // overlapping windows, 16 + 16 + 8 channels
];

/** True when tfjs pads this pooling (the engine's AvgPoolGrad leaves those to the cpu kernel). */
function poolPadded(xs: number[], k: number, s: number, pad: "same" | "valid"): boolean {
  const pi = tf.backend_util.computePool2DInfo(xs as [number, number, number, number], k, s, 1, pad);
  return pi.padInfo.top + pi.padInfo.bottom + pi.padInfo.left + pi.padInfo.right > 0;
}

function poolOp(kind: "max" | "avg", k: number, s: number, pad: "same" | "valid") {
  return (x: tf.Tensor) =>
    kind === "max" ? tf.maxPool(x as tf.Tensor4D, k, s, pad) : tf.avgPool(x as tf.Tensor4D, k, s, pad);
}

/** Paths of a pooling gradient: AvgPoolGrad with padding is a deliberate cpu fallback (tfjs divides by the full window there). */
function poolGradPaths(kind: "max" | "avg", padded: boolean): { paths: Paths; note: string } {
  const fwd = kind === "max" ? "MaxPool" : "AvgPool";
  const bwd = kind === "max" ? "MaxPoolGrad" : "AvgPoolGrad";
  if (kind === "avg" && padded) {
    return {
      paths: { native: [fwd], fallback: [bwd] },
      note: " (AvgPoolGrad: cpu fallback, tfjs divides padded windows by the full window size)",
    };
  }
  return { paths: { native: [fwd, bwd] }, note: "" };
}

engineTest("max/avg pooling forward and gradients", async () => {
  for (const [xs, k, s, pad] of POOL_CASES) {
    const X = rand(xs, `p${xs}`);
    const padded = poolPadded(xs, k, s, pad);
    for (const kind of ["max", "avg"] as const) {
      const op = poolOp(kind, k, s, pad);
      await check(
        `${kind}pool ${xs} k${k} s${s} ${pad}`,
        () => op(tf.tensor4d(X, xs as any)),
        { native: [kind === "max" ? "MaxPool" : "AvgPool"] },
      );
      const { paths, note } = poolGradPaths(kind, padded);
      await check(
        `${kind}pool grad ${xs} k${k} s${s} ${pad}${note}`,
        () => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(op(x), tf.cos(op(x)))))(tf.tensor4d(X, xs as any)),
        paths,
      );
    }
  }
});

engineTest(
  "max/avg pooling and gradients with NaN/+Inf/-Inf (tfjs: NaN never wins a max window)",
  async () => {
    for (const [xs, k, s, pad] of POOL_CASES.slice(2)) {
      const X = rand(xs, `p${xs}`);
      const padded = poolPadded(xs, k, s, pad);
      const yShape = tf.tidy(() => tf.maxPool(tf.zeros(xs as any) as tf.Tensor4D, k, s, pad).shape);
      const R = rand(yShape, "pdy");
      for (const [kind, values] of Object.entries(SPECIALS)) {
        const Xs = sprinkle(X, `px${kind}`, values, 6), Rs = sprinkle(R, `pr${kind}`, values, 3);
        for (const op of ["max", "avg"] as const) {
          const f = poolOp(op, k, s, pad);
          const label = `${op}pool ${xs} k${k} s${s} ${pad} ${kind}`;
          await check(
            `${label} in x`,
            () => f(tf.tensor4d(Xs, xs as any)),
            { native: [op === "max" ? "MaxPool" : "AvgPool"] },
            1e-4,
            { special: op === "avg" },
          );
          const { paths, note } = poolGradPaths(op, padded);
          for (const [where, x, r] of [["x", Xs, R], ["dy", X, Rs]] as const) {
            await check(
              `${label} in ${where}, gradient${note}`,
              () =>
                tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), tf.tensor(r, yShape))))(
                  tf.tensor4d(x, xs as any),
                ),
              paths,
              1e-4,
              { special: where === "dy" },
            );
          }
        }
      }
    }
    // windows holding only -Inf and NaN: tfjs' max pooling gives -Inf and sends no gradient there
    const xs = [2, 8, 8, 32];
    const X = rand(xs, "pw");
    for (let i = 0; i < X.length; i++) {
      const c = i % 32, w = Math.floor(i / 32) % 8;
      if (c < 16 && w < 4) X[i] = (i % 3 === 0) ? NaN : -Infinity;
    }
    const yShape = [2, 4, 4, 32];
    const R = rand(yShape, "pwr");
    await check(
      "maxpool windows of only -Inf/NaN",
      () => tf.maxPool(tf.tensor4d(X, xs as any), 2, 2, "valid"),
      {
        native: ["MaxPool"],
      },
      1e-4,
      { special: true },
    );
    await check(
      "maxpool gradient, windows of only -Inf/NaN",
      () =>
        tf.grad((v: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, "valid"), tf.tensor(R, yShape)))
        )(
          tf.tensor4d(X, xs as any),
        ),
      { native: ["MaxPool", "MaxPoolGrad"] },
    );
  },
);

const EW_SHAPE = [4, 9, 7, 16];

engineTest(
  "relu (+grad), add/sub/mul with broadcasting, sum over leading axes, inference batchNorm",
  async () => {
    const shape = EW_SHAPE;
    const A = rand(shape, "A"), B = rand(shape, "B"), c = rand([16], "c");
    await check("relu", () => tf.relu(tf.tensor(A, shape)), { native: ["Relu"] });
    await check(
      "relu grad",
      () => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), tf.tensor(B, shape))))(tf.tensor(A, shape)),
      { native: ["Relu", "NoiselabReluGrad"] },
    );
    for (const [op, kernel] of [[tf.add, "Add"], [tf.sub, "Sub"], [tf.mul, "Multiply"]] as const) {
      const p = { native: [kernel] };
      await check(`${op.name} same`, () => op(tf.tensor(A, shape), tf.tensor(B, shape)), p);
      await check(`${op.name} bcast`, () => op(tf.tensor(A, shape), tf.tensor1d(c)), p);
      await check(`${op.name} bcast rev`, () => op(tf.tensor1d(c), tf.tensor(A, shape)), p);
      await check(`${op.name} bcast 4d`, () => op(tf.tensor(A, shape), tf.tensor(c, [1, 1, 1, 16])), p);
      await check(`${op.name} bcast 4d rev`, () => op(tf.tensor(c, [1, 1, 1, 16]), tf.tensor(A, shape)), p);
    }
    await check("sum leading", () => tf.sum(tf.tensor(A, shape), [0, 1, 2]), { native: ["Sum"] }, 1e-5);
    await check(
      "sum leading keepDims",
      () => tf.sum(tf.tensor(A, shape), [0, 1, 2], true),
      { native: ["Sum"] },
      1e-5,
    );
    await check(
      "sum other axes (cpu fallback: only sums over all leading axes are native)",
      () => tf.sum(tf.tensor(A, shape), [1, 2]),
      { fallback: ["Sum"] },
      1e-5,
    );
    const mean = rand([16], "m"),
      v = rand([16], "v").map((x) => x * x + 0.1),
      g = rand([16], "g"),
      b = rand([16], "bb");
    await check(
      "batchNorm inference",
      () =>
        tf.batchNorm(
          tf.tensor(A, shape),
          tf.tensor1d(mean),
          tf.tensor1d(v),
          tf.tensor1d(b),
          tf.tensor1d(g),
          1e-3,
        ),
      { native: ["FusedBatchNorm"] },
    );
    await check(
      "batchNorm inference no affine",
      () => tf.batchNorm(tf.tensor(A, shape), tf.tensor1d(mean), tf.tensor1d(v), undefined, undefined, 1e-3),
      { native: ["FusedBatchNorm"] },
    );
  },
);

engineTest("relu and its gradient with NaN/+Inf/-Inf in x or dy (tfjs: relu(NaN) = NaN)", async () => {
  const shape = EW_SHAPE;
  const A = rand(shape, "A"), B = rand(shape, "B");
  for (const [kind, values] of Object.entries(SPECIALS)) {
    const As = sprinkle(A, `ra${kind}`, values, 40), Bs = sprinkle(B, `rb${kind}`, values, 40);
    await check(`relu ${kind}`, () => tf.relu(tf.tensor(As, shape)), { native: ["Relu"] }, 1e-4, {
      special: kind !== "-Inf",
    });
    for (const [where, x, dy] of [["x", As, B], ["dy", A, Bs], ["x and dy", As, Bs]] as const) {
      await check(
        `relu grad ${kind} in ${where}`,
        () =>
          tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), tf.tensor(dy, shape))))(tf.tensor(x, shape)),
        { native: ["Relu", "NoiselabReluGrad"] },
        1e-4,
        { special: kind === "NaN" || kind === "NaN/+Inf/-Inf" || where !== "x" }, // Inf in x alone: a finite step
      );
    }
  }
  // signed zeros and the infinities themselves through relu and its gradient
  const Z = Float32Array.from({ length: 2048 }, (_, i) => [0, -0, Infinity, -Infinity, NaN, 1, -1][i % 7]);
  const D = Float32Array.from({ length: 2048 }, (_, i) => [2, -3, Infinity, -Infinity, NaN][i % 5]);
  await check("relu of 0, -0, +-Inf, NaN", () => tf.relu(tf.tensor1d(Z)), { native: ["Relu"] }, 0, {
    special: true,
  });
  await check(
    "relu grad of 0, -0, +-Inf, NaN with finite and non-finite dy",
    () => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), tf.tensor1d(D))))(tf.tensor1d(Z)),
    { native: ["NoiselabReluGrad"] },
    0,
    { special: true },
  );
});

engineTest("add/sub/mul (incl. broadcasting and scalars), sum and mean with NaN/+Inf/-Inf", async () => {
  const shape = EW_SHAPE;
  const A = rand(shape, "A"), B = rand(shape, "B"), c = rand([16], "c");
  for (const [kind, values] of Object.entries(SPECIALS)) {
    const As = sprinkle(A, `ea${kind}`, values, 20), Bs = sprinkle(B, `eb${kind}`, values, 20);
    const cs = sprinkle(c, `ec${kind}`, values, 2);
    for (const [op, kernel] of [[tf.add, "Add"], [tf.sub, "Sub"], [tf.mul, "Multiply"]] as const) {
      const p = { native: [kernel] };
      const sp = { special: true };
      const l = `${op.name} ${kind}`;
      await check(`${l} same`, () => op(tf.tensor(As, shape), tf.tensor(Bs, shape)), p, 1e-4, sp);
      await check(`${l} bcast`, () => op(tf.tensor(A, shape), tf.tensor1d(cs)), p, 1e-4, sp);
      await check(`${l} bcast rev`, () => op(tf.tensor1d(cs), tf.tensor(A, shape)), p, 1e-4, sp);
      await check(`${l} bcast big`, () => op(tf.tensor(As, shape), tf.tensor1d(c)), p, 1e-4, sp);
      for (const s of values) {
        await check(`${l} scalar ${s}`, () => op(tf.tensor(A, shape), tf.scalar(s)), p, 1e-4, sp);
        await check(`${l} scalar ${s} rev`, () => op(tf.scalar(s), tf.tensor(A, shape)), p, 1e-4, sp);
      }
    }
    await check(
      `sum leading ${kind}`,
      () => tf.sum(tf.tensor(As, shape), [0, 1, 2]),
      { native: ["Sum"] },
      1e-5,
      {
        special: true,
      },
    );
    await check(`mean hw ${kind}`, () => tf.mean(tf.tensor(As, shape), [1, 2]), { native: ["Mean"] }, 1e-5, {
      special: true,
    });
    await check(
      `mean hw grad ${kind} in dy`,
      () =>
        tf.grad((x: tf.Tensor) =>
          tf.sum(tf.mul(tf.mean(x, [1, 2]), tf.tensor(sprinkle(rand([4, 16], "md"), kind, values), [4, 16])))
        )(
          tf.tensor(A, shape),
        ),
      { native: ["Mean", "NoiselabSpatialMeanGrad"] },
      1e-5,
      { special: true },
    );
  }
  // Inf - Inf, Inf * 0 and friends, element by element
  const P = Float32Array.from({ length: 2048 }, (_, i) => [Infinity, -Infinity, NaN, 0, -0, 2][i % 6]);
  const Q = Float32Array.from({ length: 2048 }, (_, i) => [Infinity, -Infinity, NaN, 0, -0, 3, -1][i % 7]);
  for (const [op, kernel] of [[tf.add, "Add"], [tf.sub, "Sub"], [tf.mul, "Multiply"]] as const) {
    await check(
      `${op.name} of specials pairwise`,
      () => op(tf.tensor1d(P), tf.tensor1d(Q)),
      {
        native: [kernel],
      },
      0,
      { special: true },
    );
  }
});

/** BN inference parameters for a case; channels 0..15. */
function bnParams(seed: string): Record<"mean" | "v" | "g" | "b", Float32Array> {
  return {
    mean: rand([16], `${seed}m`),
    v: rand([16], `${seed}v`).map((x) => x * x + 0.1),
    g: rand([16], `${seed}g`),
    b: rand([16], `${seed}b`),
  };
}

engineTest("inference batchNorm with negative variance and NaN/+Inf/-Inf in x or any parameter", async () => {
  const shape = EW_SHAPE;
  const A = rand(shape, "A");
  const run = (
    label: string,
    x: Float32Array,
    p: ReturnType<typeof bnParams>,
    affine = true,
    special = true,
  ) =>
    check(
      label,
      () =>
        tf.batchNorm(
          tf.tensor(x, shape),
          tf.tensor1d(p.mean),
          tf.tensor1d(p.v),
          affine ? tf.tensor1d(p.b) : undefined,
          affine ? tf.tensor1d(p.g) : undefined,
          1e-3,
        ),
      { native: ["FusedBatchNorm"] },
      1e-4,
      { special },
    );
  // the paper's case: noise pushes moving variances below zero (sqrt of a negative: NaN)
  const neg = bnParams("n");
  neg.v[1] = -0.5;
  neg.v[5] = -1e-3 - 1e-6;
  neg.v[9] = Math.fround(-1e-3); // var + eps is exactly 0 in float32 (inv = Inf), tiny and negative in double
  await run("batchNorm negative variance", A, neg);
  await run("batchNorm negative variance, no affine", A, neg, false);
  for (const [kind, values] of Object.entries(SPECIALS)) {
    await run(`batchNorm ${kind} in x`, sprinkle(A, `bx${kind}`, values, 30), bnParams("p"));
    for (const name of ["mean", "v", "g", "b"] as const) {
      const p = bnParams("p");
      p[name] = sprinkle(p[name], `bp${name}${kind}`, values, 3);
      // an infinite variance scales x by 0: y = beta, finite
      await run(
        `batchNorm ${kind} in ${name === "v" ? "variance" : name}`,
        A,
        p,
        true,
        !(name === "v" && kind === "+Inf"),
      );
    }
  }
  // gamma = 0 with an infinite x (Inf * 0), and Inf gamma with x equal to the mean (0 * Inf)
  const p = bnParams("q");
  p.g[2] = 0;
  p.g[3] = Infinity;
  const X = A.slice();
  for (let i = 0; i < X.length; i += 16) {
    X[i + 2] = i % 32 === 0 ? Infinity : -Infinity;
    if (i % 48 === 0) X[i + 3] = p.mean[3];
  }
  await run("batchNorm Inf * 0 corners", X, p);
});

/** tfjs-layers' training-mode BN, as composed by the stock code: moments + batchNorm. */
function stockBn(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, axes: number[]) {
  const m = tf.moments(x, axes);
  return [tf.batchNorm(x, m.mean, m.variance, b, g, 1e-3), m.mean, m.variance];
}
function fusedBn(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) {
  return tf.engine().runKernel(BN_TRAIN, { x, gamma: g, beta: b }, { epsilon: 1e-3 }) as tf.Tensor[];
}

/** y, mean, variance and the gradients wrt x, gamma, beta of sum(y * R), stock on cpu vs fused on the engine. */
async function checkBnTrain(
  label: string,
  shape: number[],
  X: Float32Array,
  G: Float32Array,
  Bt: Float32Array,
  R: Float32Array,
  opts: { special?: boolean } = {},
) {
  const axes = shape.slice(0, -1).map((_, i) => i);
  const C = shape[shape.length - 1];
  const make = (bn: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor[]) => () => {
    const [y, m, v] = bn(tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt));
    const grads = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(bn(x, g, b)[0], tf.tensor(R, shape)))
    )([tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt)]);
    return [y, m, v, ...grads];
  };
  const { ref, eng } = await both(
    label,
    make((x, g, b) => stockBn(x, g, b, axes)),
    make(fusedBn),
    { native: ["NoiselabBatchNormTrain", "NoiselabBatchNormTrainGrad"] },
  );
  ["y", "mean", "variance", "dx", "dgamma", "dbeta"].forEach((n, i) =>
    assertClose(ref[i], eng[i], `${label} ${n} (C=${C})`, 2e-4)
  );
  if (opts.special) assert.ok(ref.some((r) => nonFinite(r) > 0), `${label}: the reference has no NaN/Inf`);
}

engineTest("batch-norm training kernel vs moments + batchNorm (values and gradients)", async () => {
  for (const shape of [[4, 9, 7, 16], [8, 4, 4, 3], [6, 10], [4, 6, 6, 40]]) {
    const C = shape[shape.length - 1];
    // offset the data so that a naive single-pass variance would lose precision
    const X = rand(shape, `bx${shape}`).map((x) => 3 + 2 * x);
    await checkBnTrain(`bn train ${shape}`, shape, X, rand([C], "g"), rand([C], "b"), rand(shape, "r"));
  }
});

engineTest("batch-norm training kernel with NaN/+Inf/-Inf in x, dy, gamma or beta", async () => {
  const shape = [4, 9, 7, 16];
  const n = 4 * 9 * 7;
  const X = rand(shape, "tx").map((x) => 3 + 2 * x), R = rand(shape, "tr");
  const G = rand([16], "tg"), Bt = rand([16], "tb");
  const at = (row: number, c: number) => row * 16 + c;
  // one special per channel, at varying rows (the first row too: the kernel's variance shift)
  const Xs = X.slice(), Rs = R.slice(), Gs = G.slice(), Bs = Bt.slice();
  Xs[at(0, 0)] = NaN;
  Xs[at(17, 1)] = Infinity;
  Xs[at(0, 2)] = Infinity; // an infinite first row
  Xs[at(n - 1, 3)] = -Infinity;
  Xs[at(5, 4)] = Infinity;
  Xs[at(6, 4)] = -Infinity; // +Inf and -Inf in one channel
  Rs[at(3, 5)] = NaN;
  Rs[at(11, 6)] = Infinity;
  Rs[at(12, 7)] = -Infinity;
  Rs[at(12, 8)] = Infinity;
  Rs[at(13, 8)] = Infinity;
  Gs[9] = NaN;
  Gs[10] = Infinity;
  Gs[11] = 0;
  Rs[at(20, 11)] = Infinity; // Inf * gamma 0
  Bs[12] = NaN;
  Bs[13] = -Infinity;
  await checkBnTrain("bn train specials in x", shape, Xs, G, Bt, R, { special: true });
  await checkBnTrain("bn train specials in dy", shape, X, G, Bt, Rs, { special: true });
  await checkBnTrain("bn train specials in gamma/beta", shape, X, Gs, Bs, Rs, { special: true });
  await checkBnTrain("bn train specials everywhere", shape, Xs, Gs, Bs, Rs, { special: true });
  // a whole channel of +Inf; a channel that is constant (zero variance)
  const Xc = X.slice();
  for (let r = 0; r < n; r++) {
    Xc[at(r, 14)] = Infinity;
    Xc[at(r, 15)] = 1.5;
  }
  await checkBnTrain("bn train infinite and constant channels", shape, Xc, G, Bt, R, { special: true });
});

engineTest("slice, pad (incl. their gradients), spatial mean and its gradient", async () => {
  const shape = EW_SHAPE;
  const A = rand(shape, "A");
  await check("slice 4d", () => tf.slice(tf.tensor(A, shape), [1, 2, 0, 3], [3, 6, 7, 9]), {
    native: ["Slice"],
  });
  await check("slice 3d", () => tf.slice(tf.tensor(A, [36, 7, 16]), [2, 1, 4], [30, 5, 12]), {
    native: ["Slice"],
  });
  await check("slice 2d", () => tf.slice(tf.tensor(A, [252, 16]), [7, 0], [200, 16]), { native: ["Slice"] });
  await check(
    "slice below the native size (cpu fallback: under 1024 elements the JS loop is as fast)",
    () => tf.slice(tf.tensor(A, shape), [1, 2, 0, 3], [3, 5, 7, 9]),
    { fallback: ["Slice"] },
  );
  await check("pad 4d channels", () => tf.pad(tf.tensor(A, shape), [[0, 0], [0, 0], [0, 0], [8, 8]]), {
    native: ["PadV2"],
  });
  await check(
    "pad 4d spatial value",
    () => tf.pad(tf.tensor(A, shape), [[1, 0], [2, 1], [0, 3], [1, 2]], 0.5),
    { native: ["PadV2"] },
  );
  await check("pad grad", () =>
    tf.grad((x: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.pad(x, [[0, 0], [1, 1], [0, 0], [4, 4]]),
          tf.sin(tf.pad(x, [[0, 0], [1, 1], [0, 0], [4, 4]])),
        ),
      )
    )(
      tf.tensor(A, shape),
    ), { native: ["PadV2", "Slice"] });
  await check("mean hw", () => tf.mean(tf.tensor(A, shape), [1, 2]), { native: ["Mean"] }, 1e-5);
  await check(
    "mean hw keepDims",
    () => tf.mean(tf.tensor(A, shape), [2, 1], true),
    { native: ["Mean"] },
    1e-5,
  );
  await check(
    "mean other axes (cpu fallback: only means over H and W are native)",
    () => tf.mean(tf.tensor(A, shape), [0, 3]),
    { fallback: ["Mean"] },
    1e-5,
  );
  await check(
    "mean hw grad",
    () => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.mean(x, [1, 2]))))(tf.tensor(A, shape)),
    { native: ["Mean", "NoiselabSpatialMeanGrad"] },
  );
  await check("scalar mul/add/sub", () => {
    const x = tf.tensor(A, shape);
    return [
      tf.mul(x, tf.scalar(0.3)),
      tf.add(tf.scalar(2), x),
      tf.sub(x, tf.scalar(1.5)),
      tf.sub(tf.scalar(1.5), x),
    ];
  }, { native: ["Multiply", "Add", "Sub"] });
});

engineTest("slice, pad and concat carry NaN/+Inf/-Inf (and pad with a NaN/Inf constant)", async () => {
  const shape = EW_SHAPE;
  for (const [kind, values] of Object.entries(SPECIALS)) {
    const A = sprinkle(rand(shape, "A"), `sa${kind}`, values, 60);
    const sp = { special: true };
    await check(
      `slice ${kind}`,
      () => tf.slice(tf.tensor(A, shape), [1, 2, 0, 3], [3, 6, 7, 9]),
      {
        native: ["Slice"],
      },
      0,
      sp,
    );
    await check(
      `pad ${kind}`,
      () => tf.pad(tf.tensor(A, shape), [[1, 0], [2, 1], [0, 3], [1, 2]], 0.5),
      {
        native: ["PadV2"],
      },
      0,
      sp,
    );
    await check(
      `pad with constant ${values[0]}`,
      () => tf.pad(tf.tensor(rand(shape, "A"), shape), [[0, 0], [1, 1], [1, 1], [0, 0]], values[0]),
      { native: ["PadV2"] },
      0,
      sp,
    );
    await check(
      `concat ${kind}`,
      () => tf.concat([tf.tensor(A, shape), tf.tensor(rand(shape, "B"), shape)], 3),
      { native: ["Concat"] },
      0,
      sp,
    );
  }
});

engineTest("recycled output buffers never leak into values callers hold", async () => {
  await tf.setBackend("onednn");
  setEngineProfiling(true);
  try {
    const shape = [8, 32, 32, 16]; // large enough to be recycled
    const A = rand(shape, "pa"), B = rand(shape, "pb");
    // dataSync() of a recycled buffer is a copy
    const a = tf.relu(tf.tensor(A, shape));
    const seen = a.dataSync();
    const expect = Float32Array.from(A, (v) => Math.max(v, 0));
    a.dispose();
    const b = tf.relu(tf.tensor(B, shape)); // would reuse a's buffer
    assertClose(expect, seen as Float32Array, "dataSync copy", 0, 0);
    b.dispose();
    // a cpu kernel whose outputs are views of a recycled input (contiguous slices in Split)
    const c = tf.relu(tf.tensor(A, shape));
    const [p] = tf.split(c, 2, 0);
    c.dispose();
    const d = tf.relu(tf.tensor(B, shape));
    assertClose(expect.subarray(0, expect.length / 2), p.dataSync() as Float32Array, "split view", 0, 0);
    tf.dispose([p, d]);
    assertPaths("recycled buffers", engineStats(), { native: ["Relu"], fallback: ["SplitV"] });
  } finally {
    setEngineProfiling(false);
  }
});

engineTest("concat (1-D flat vectors and inner axes)", async () => {
  const parts = [[432], [16], [2304], [1], [5000]].map((s, i) => ({ s, v: rand(s, `c${i}`) }));
  await check("concat 1d", () => tf.concat(parts.map((p) => tf.tensor1d(p.v)), 0), { native: ["Concat"] });
  const A = rand([4, 9, 7, 16], "ca"), B = rand([4, 9, 7, 5], "cb");
  await check(
    "concat last axis",
    () => tf.concat([tf.tensor(A, [4, 9, 7, 16]), tf.tensor(B, [4, 9, 7, 5])], 3),
    { native: ["Concat"] },
  );
  await check(
    "concat axis 1",
    () => tf.concat([tf.tensor(A, [4, 63, 16]), tf.tensor(A, [4, 63, 16])], 1),
    { native: ["Concat"] },
  );
});
