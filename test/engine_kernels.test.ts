// Kernel-by-kernel checks of the native `noiselab` engine against the reference
// tfjs `cpu` backend, on random inputs of several shapes.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { engineUnavailableReason, registerEngine } from "../lib/backend/engine/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

const nat = registerEngine();
const ignore = nat == null;
if (ignore) console.error(`[engine tests skipped] ${engineUnavailableReason()}`);

function rand(shape: number[], seed: string, scale = 1): Float32Array {
  const rng = makeRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}

/** Runs fn on both backends and returns the flattened results per output. */
async function both(
  fn: () => tf.Tensor | tf.Tensor[],
): Promise<{ ref: Float32Array[]; eng: Float32Array[]; shapes: number[][] }> {
  const run = async (b: string) => {
    await tf.setBackend(b);
    const r = tf.tidy(fn);
    const arr = Array.isArray(r) ? r : [r];
    const vals = arr.map((t) => t.dataSync().slice() as Float32Array);
    const shapes = arr.map((t) => t.shape);
    tf.dispose(arr);
    return { vals, shapes };
  };
  const ref = await run("cpu");
  const eng = await run("noiselab");
  assert.deepEqual(eng.shapes, ref.shapes, "output shapes differ");
  return { ref: ref.vals, eng: eng.vals, shapes: ref.shapes };
}

function assertClose(ref: Float32Array, got: Float32Array, label: string, rtol = 1e-4, atol = 1e-5) {
  assert.equal(got.length, ref.length, `${label}: length`);
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i] - got[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(
    worst <= atol + rtol * scale,
    `${label}: max |diff| ${worst} at ${at} (ref ${ref[at]}, got ${got[at]}, scale ${scale})`,
  );
}

async function check(label: string, fn: () => tf.Tensor | tf.Tensor[], rtol = 1e-4) {
  const { ref, eng } = await both(fn);
  ref.forEach((r, i) => assertClose(r, eng[i], `${label}[${i}]`, rtol));
}

type ConvCase = { x: number[]; f: number[]; s: number; pad: "same" | "valid" | number; d?: number };
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
  { x: [2, 10, 9, 3], f: [5, 3, 3, 4], s: 1, pad: 1 }, // tfjs numeric pad + non-square filter: cpu fallback
  { x: [2, 10, 9, 3], f: [5, 3, 3, 4], s: 2, pad: "same" },
  { x: [2, 12, 12, 3], f: [3, 3, 3, 4], s: 1, pad: "same", d: 2 },
];

Deno.test({
  name: "engine: conv2d forward (strides, same/valid/explicit padding, dilation, odd sizes)",
  ignore,
}, async () => {
  for (const c of CONV_CASES) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`);
    await check(
      `conv ${JSON.stringify(c)}`,
      () =>
        tf.conv2d(
          tf.tensor4d(X, c.x as any),
          tf.tensor4d(F, c.f as any),
          c.s,
          c.pad as any,
          "NHWC",
          c.d ?? 1,
        ),
    );
  }
});

Deno.test({ name: "engine: fused conv2d with bias and relu", ignore }, async () => {
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
        }));
    }
  }
});

Deno.test({ name: "engine: conv2d gradients (backprop input and filter)", ignore }, async () => {
  for (const c of CONV_CASES.filter((c) => (c.d ?? 1) === 1)) {
    const X = rand(c.x, `x${c.x}`), F = rand(c.f, `f${c.f}`);
    await check(`conv grads ${JSON.stringify(c)}`, () => {
      const x = tf.tensor4d(X, c.x as any), f = tf.tensor4d(F, c.f as any);
      const g = tf.grads((x: tf.Tensor, f: tf.Tensor) => {
        const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad as any);
        return tf.sum(tf.mul(y, tf.sin(y))); // a non-trivial dy
      });
      return g([x, f]);
    });
  }
});

Deno.test({ name: "engine: fused conv2d gradients with bias", ignore }, async () => {
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
  });
});

Deno.test({
  name: "engine: matmul (transposes, batch) and fused matmul with bias/relu, and gradients",
  ignore,
}, async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[7, 5], [5, 3], false, false],
    [[5, 7], [5, 3], true, false],
    [[7, 5], [3, 5], false, true],
    [[5, 7], [3, 5], true, true],
    [[2, 6, 4], [2, 4, 9], false, false],
    [[64, 256], [256, 10], false, false],
  ];
  for (const [as, bs, ta, tb] of cases) {
    const A = rand(as, `a${as}`), B = rand(bs, `b${bs}`);
    await check(
      `matmul ${as} ${bs} ${ta} ${tb}`,
      () => tf.matMul(tf.tensor(A, as), tf.tensor(B, bs), ta, tb),
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
      );
      await check(
        `matmul grads ${as} ${bs}`,
        () =>
          tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, ta, tb))))([
            tf.tensor(A, as),
            tf.tensor(B, bs),
          ]),
      );
    }
  }
});

Deno.test({ name: "engine: max/avg pooling forward and gradients", ignore }, async () => {
  const cases: [number[], number, number, "same" | "valid"][] = [
    [[2, 8, 8, 3], 2, 2, "valid"],
    [[2, 9, 7, 4], 2, 2, "same"],
    [[2, 9, 9, 4], 3, 2, "same"],
    [[3, 7, 7, 5], 3, 1, "valid"],
  ];
  for (const [xs, k, s, pad] of cases) {
    const X = rand(xs, `p${xs}`);
    for (const kind of ["max", "avg"] as const) {
      const op = (x: tf.Tensor) =>
        kind === "max" ? tf.maxPool(x as tf.Tensor4D, k, s, pad) : tf.avgPool(x as tf.Tensor4D, k, s, pad);
      await check(`${kind}pool ${xs} k${k} s${s} ${pad}`, () => op(tf.tensor4d(X, xs as any)));
      await check(
        `${kind}pool grad ${xs} k${k} s${s} ${pad}`,
        () => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(op(x), tf.cos(op(x)))))(tf.tensor4d(X, xs as any)),
      );
    }
  }
});

Deno.test({
  name: "engine: relu (+grad), add/sub/mul with broadcasting, sum over leading axes, inference batchNorm",
  ignore,
}, async () => {
  const shape = [4, 9, 7, 16];
  const A = rand(shape, "A"), B = rand(shape, "B"), c = rand([16], "c");
  await check("relu", () => tf.relu(tf.tensor(A, shape)));
  await check(
    "relu grad",
    () => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), tf.tensor(B, shape))))(tf.tensor(A, shape)),
  );
  for (const op of [tf.add, tf.sub, tf.mul]) {
    await check(`${op.name} same`, () => op(tf.tensor(A, shape), tf.tensor(B, shape)));
    await check(`${op.name} bcast`, () => op(tf.tensor(A, shape), tf.tensor1d(c)));
    await check(`${op.name} bcast rev`, () => op(tf.tensor1d(c), tf.tensor(A, shape)));
    await check(`${op.name} bcast 4d`, () => op(tf.tensor(A, shape), tf.tensor(c, [1, 1, 1, 16])));
  }
  await check("sum leading", () => tf.sum(tf.tensor(A, shape), [0, 1, 2]), 1e-5);
  await check("sum leading keepDims", () => tf.sum(tf.tensor(A, shape), [0, 1, 2], true), 1e-5);
  await check("sum other axes (fallback)", () => tf.sum(tf.tensor(A, shape), [1, 2]), 1e-5);
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
  );
  await check(
    "batchNorm inference no affine",
    () => tf.batchNorm(tf.tensor(A, shape), tf.tensor1d(mean), tf.tensor1d(v), undefined, undefined, 1e-3),
  );
});

Deno.test({
  name: "engine: batch-norm training kernel vs moments + batchNorm (values and gradients)",
  ignore,
}, async () => {
  const { BN_TRAIN } = await import("../lib/backend/engine/kernels.ts");
  for (const shape of [[4, 9, 7, 16], [8, 4, 4, 3], [6, 10]]) {
    const C = shape[shape.length - 1];
    // offset the data so that a naive single-pass variance would lose precision
    const X = rand(shape, `bx${shape}`).map((x) => 3 + 2 * x),
      G = rand([C], "g"),
      Bt = rand([C], "b"),
      R = rand(shape, "r");
    const axes = shape.slice(0, -1).map((_, i) => i);
    const stock = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const m = tf.moments(x, axes);
      return [tf.batchNorm(x, m.mean, m.variance, b, g, 1e-3), m.mean, m.variance];
    };
    const { ref } = await both(() => {
      const [y, m, v] = stock(tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt));
      const grads = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(stock(x, g, b)[0], tf.tensor(R, shape)))
      )(
        [tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt)],
      );
      return [y, m, v, ...grads];
    });
    await tf.setBackend("noiselab");
    const got = tf.tidy(() => {
      const fused = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.engine().runKernel(BN_TRAIN, { x, gamma: g, beta: b }, { epsilon: 1e-3 }) as tf.Tensor[];
      const [y, m, v] = fused(tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt));
      const grads = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(fused(x, g, b)[0], tf.tensor(R, shape)))
      )(
        [tf.tensor(X, shape), tf.tensor1d(G), tf.tensor1d(Bt)],
      );
      return [y, m, v, ...grads].map((t) => t.dataSync().slice() as Float32Array);
    });
    ["y", "mean", "variance", "dx", "dgamma", "dbeta"].forEach((n, i) =>
      assertClose(ref[i], got[i], `bn ${shape} ${n}`, 2e-4)
    );
  }
});

Deno.test(
  { name: "engine: slice, pad (incl. their gradients), spatial mean and its gradient", ignore },
  async () => {
    const shape = [4, 9, 7, 16];
    const A = rand(shape, "A");
    await check("slice 4d", () => tf.slice(tf.tensor(A, shape), [1, 2, 0, 3], [3, 5, 7, 9]));
    await check("slice 3d", () => tf.slice(tf.tensor(A, [36, 7, 16]), [2, 1, 4], [30, 5, 12]));
    await check("slice 2d", () => tf.slice(tf.tensor(A, [252, 16]), [7, 0], [200, 16]));
    await check("pad 4d channels", () => tf.pad(tf.tensor(A, shape), [[0, 0], [0, 0], [0, 0], [8, 8]]));
    await check(
      "pad 4d spatial value",
      () => tf.pad(tf.tensor(A, shape), [[1, 0], [2, 1], [0, 3], [1, 2]], 0.5),
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
      ));
    await check("mean hw", () => tf.mean(tf.tensor(A, shape), [1, 2]), 1e-5);
    await check("mean hw keepDims", () => tf.mean(tf.tensor(A, shape), [2, 1], true), 1e-5);
    await check("mean other axes (fallback)", () => tf.mean(tf.tensor(A, shape), [0, 3]), 1e-5);
    await check(
      "mean hw grad",
      () => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.mean(x, [1, 2]))))(tf.tensor(A, shape)),
    );
    await check("scalar mul/add/sub", () => {
      const x = tf.tensor(A, shape);
      return [
        tf.mul(x, tf.scalar(0.3)),
        tf.add(tf.scalar(2), x),
        tf.sub(x, tf.scalar(1.5)),
        tf.sub(tf.scalar(1.5), x),
      ];
    });
  },
);

Deno.test(
  { name: "engine: recycled output buffers never leak into values callers hold", ignore },
  async () => {
    await tf.setBackend("noiselab");
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
    // a cpu fallback kernel whose outputs are views of a recycled input (contiguous slices in Split)
    const c = tf.relu(tf.tensor(A, shape));
    const [p] = tf.split(c, 2, 0);
    c.dispose();
    const d = tf.relu(tf.tensor(B, shape));
    assertClose(expect.subarray(0, expect.length / 2), p.dataSync() as Float32Array, "split view", 0, 0);
    tf.dispose([p, d]);
  },
);

Deno.test({ name: "engine: concat (1-D flat vectors and inner axes)", ignore }, async () => {
  const parts = [[432], [16], [2304], [1], [5000]].map((s, i) => ({ s, v: rand(s, `c${i}`) }));
  await check("concat 1d", () => tf.concat(parts.map((p) => tf.tensor1d(p.v)), 0));
  const A = rand([4, 9, 7, 16], "ca"), B = rand([4, 9, 7, 5], "cb");
  await check(
    "concat last axis",
    () => tf.concat([tf.tensor(A, [4, 9, 7, 16]), tf.tensor(B, [4, 9, 7, 5])], 3),
  );
  await check("concat axis 1", () => tf.concat([tf.tensor(A, [4, 63, 16]), tf.tensor(A, [4, 63, 16])], 1));
});
