/**
 * The wasm backend's training kernels (lib/backend/wasm/mod.ts) against the pure-JS
 * `cpu` backend on random inputs: conv gradients (dW, dX) for the CIFAR
 * ResNet/VGG shapes, and the Tile fast path used by the BatchNorm gradient.
 * Never skipped: the wasm backend ships with the npm modules and Deno has
 * WebAssembly SIMD, so a backend that does not load fails every test here.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-layers"; // registers tfjs-core's gradient functions
import { gaussianFill, makeRng } from "../lib/util/rng.ts";
import { initWasmBackend, wasmBackendInfo, wasmInitError } from "../lib/backend/wasm/mod.ts";

const wasmOk = await initWasmBackend();
if (!wasmOk) console.error(`[wasm] backend failed to load: ${wasmInitError()}`);

/** Deno.test for this file: never skipped; fails first thing when the wasm backend did not load. */
function wasmTest(def: { name: string; fn: () => void | Promise<void> }) {
  Deno.test({
    name: def.name,
    fn: async () => {
      assert.ok(wasmOk, `the wasm backend failed to load: ${wasmInitError()}`);
      await def.fn();
    },
  });
}
await tf.setBackend("cpu"); // tfjs has one global engine: leave it on cpu between tests

/** Runs fn on `backend`, then restores the previous backend. */
function on<T>(backend: string, fn: () => T): T {
  const prev = tf.getBackend();
  tf.setBackend(backend);
  try {
    return fn();
  } finally {
    tf.setBackend(prev);
  }
}

function randn(seed: string, n: number): Float32Array {
  return gaussianFill(makeRng(seed), new Float32Array(n));
}

/** max |a-b| / max |b|; asserts same length. */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  assert.ok(m > 0, "reference is all zeros: the comparison would be meaningless");
  return d / m;
}

type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];
interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  stride: number;
  pad: Pad;
}

const cases: Case[] = [
  { x: [2, 8, 8, 3], f: [3, 3, 3, 8], stride: 1, pad: "same" },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 8], stride: 2, pad: "same" },
  { x: [3, 8, 8, 8], f: [3, 3, 8, 16], stride: 1, pad: "same" },
  { x: [3, 8, 8, 8], f: [3, 3, 8, 16], stride: 2, pad: "same" },
  { x: [2, 7, 7, 8], f: [3, 3, 8, 16], stride: 2, pad: "same" }, // odd size: asymmetric same-padding
  { x: [2, 9, 9, 3], f: [3, 3, 3, 8], stride: 1, pad: "valid" },
  { x: [2, 9, 9, 8], f: [3, 3, 8, 16], stride: 2, pad: "valid" },
  { x: [2, 8, 8, 8], f: [3, 3, 8, 16], stride: 2, pad: "valid" }, // last input row unused
  { x: [2, 8, 8, 8], f: [1, 1, 8, 16], stride: 1, pad: "same" },
  { x: [2, 8, 8, 8], f: [1, 1, 8, 16], stride: 2, pad: "same" },
  { x: [2, 8, 8, 3], f: [1, 1, 3, 8], stride: 2, pad: "valid" },
  { x: [2, 10, 10, 3], f: [3, 3, 3, 8], stride: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 8, 8, 8], f: [3, 3, 8, 16], stride: 1, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
];

/** dX and dW of sum(conv(x, w) * g) — i.e. the backprop kernels with upstream gradient g. */
function convGrads(backend: string, c: Case, seed: string): Float32Array[] {
  return on(backend, () =>
    tf.tidy(() => {
      const x = tf.tensor4d(randn(`${seed}:x`, c.x.reduce((a, b) => a * b)), c.x);
      const w = tf.tensor4d(randn(`${seed}:w`, c.f.reduce((a, b) => a * b)), c.f);
      const yShape = tf.conv2d(x, w, c.stride, c.pad).shape;
      const g = tf.tensor(randn(`${seed}:g`, yShape.reduce((a, b) => a * b)), yShape);
      const f = (xx: tf.Tensor, ww: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad), g));
      const [dx, dw] = tf.grads(f)([x, w]);
      assert.deepEqual(dx.shape, c.x);
      assert.deepEqual(dw.shape, c.f);
      return [dx.dataSync() as Float32Array, dw.dataSync() as Float32Array];
    }));
}

wasmTest({
  name: "wasm: backend reports SIMD, 1 thread",
  fn() {
    const info = wasmBackendInfo()!;
    assert.equal(info.simd, true);
    assert.ok(info.threads >= 1);
    assert.match(info.detail, /tfjs-backend-wasm 4\.22\.0/);
  },
});

wasmTest({
  name: "wasm: the conv gradient kernels are registered (stock wasm lacks Conv2DBackpropFilter)",
  fn() {
    assert.ok(tf.getKernel("Conv2DBackpropFilter", "wasm"));
    assert.ok(tf.getKernel("Conv2DBackpropInput", "wasm"));
  },
});

for (const [i, c] of cases.entries()) {
  wasmTest({
    name: `wasm: conv grads match cpu: x${c.x.join("x")} f${c.f.join("x")} s${c.stride} ${
      JSON.stringify(c.pad)
    }`,
    fn() {
      const [dxW, dwW] = convGrads("wasm", c, `case${i}`);
      const [dxC, dwC] = convGrads("cpu", c, `case${i}`);
      const ex = relErr(dxW, dxC), ew = relErr(dwW, dwC);
      assert.ok(ex < 1e-4, `dX relative error ${ex}`);
      assert.ok(ew < 1e-4, `dW relative error ${ew}`);
    },
  });
}

wasmTest({
  name: "wasm: conv2dTranspose (forward use of Conv2DBackpropInput) matches cpu",
  fn() {
    const run = (b: string) =>
      on(b, () =>
        tf.tidy(() => {
          const y = tf.tensor4d(randn("ct:y", 2 * 4 * 4 * 16), [2, 4, 4, 16]);
          const w = tf.tensor4d(randn("ct:w", 3 * 3 * 8 * 16), [3, 3, 8, 16]);
          return tf.conv2dTranspose(y, w, [2, 8, 8, 8], 2, "same").dataSync() as Float32Array;
        }));
    assert.ok(relErr(run("wasm"), run("cpu")) < 1e-4);
  },
});

wasmTest({
  name: "wasm: Tile (fast broadcast path and stock fallback) matches cpu",
  fn() {
    const specs: [number[], number[]][] = [
      [[1, 1, 1, 5], [2, 3, 4, 1]], // BN-gradient pattern: fast path
      [[1, 6], [7, 1]], // fast path, rank 2
      [[3], [4]], // fast path, rank 1
      [[2, 3], [2, 2]], // general: stock kernel
      [[1, 2, 1, 3], [2, 1, 3, 1]], // general (reps after a non-unit axis)
    ];
    for (const [shape, reps] of specs) {
      const n = shape.reduce((a, b) => a * b);
      const run = (b: string) =>
        on(
          b,
          () => tf.tidy(() => tf.tile(tf.tensor(randn("tile", n), shape), reps).dataSync() as Float32Array),
        );
      assert.deepEqual(run("wasm"), run("cpu"), `tile ${shape} by ${reps}`);
    }
    const ints = on(
      "wasm",
      () => tf.tidy(() => Array.from(tf.tile(tf.tensor1d([1, 2], "int32"), [3]).dataSync())),
    );
    assert.deepEqual(ints, [1, 2, 1, 2, 1, 2]);
  },
});

wasmTest({
  name: "wasm: conv gradients do not leak backend memory",
  fn() {
    on("wasm", () => {
      const c = cases[3];
      convGrads("wasm", c, "warm");
      const before = tf.memory().numTensors;
      const bytes = tf.memory().numBytes;
      for (let k = 0; k < 3; k++) convGrads("wasm", c, "leak");
      assert.equal(tf.memory().numTensors, before);
      assert.equal(tf.memory().numBytes, bytes);
      // Backend-side buffers too (intermediates are freed with disposeData).
      // deno-lint-ignore no-explicit-any
      const be = tf.backend() as any;
      const live = be.dataIdMap.numDataIds();
      for (let k = 0; k < 3; k++) convGrads("wasm", c, "leak2");
      assert.equal(be.dataIdMap.numDataIds(), live);
    });
  },
});

wasmTest({
  name: "wasm: initWasmBackend returns false (no throw) when the binary is missing",
  async fn() {
    // A fresh process: in this one the backend is already initialised.
    const code = `import { initWasmBackend, wasmInitError } from "${
      new URL("../lib/backend/wasm/mod.ts", import.meta.url).href
    }";
const ok = await initWasmBackend({ wasmDir: "/nonexistent-noiselab-wasm" });
console.log(JSON.stringify({ ok, err: wasmInitError() }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      cwd: new URL("..", import.meta.url).pathname,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(text);
    assert.equal(r.ok, false);
    assert.match(r.err, /nonexistent-noiselab-wasm/);
  },
});

/** Hand oracle for max-pool backprop (valid padding): dy goes to the first max of each window. */
function maxPoolGradOracle(
  x: Float32Array,
  xs: number[],
  k: number,
  s: number,
  dy: Float32Array,
): Float32Array {
  const [n, h, w, c] = xs;
  const oh = Math.floor((h - k) / s) + 1, ow = Math.floor((w - k) / s) + 1;
  const dx = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity, at = -1;
          for (let a = 0; a < k; a++) {
            for (let e = 0; e < k; e++) {
              const idx = ((b * h + i * s + a) * w + j * s + e) * c + ch;
              if (x[idx] > best) [best, at] = [x[idx], idx];
            }
          }
          dx[at] += dy[((b * oh + i) * ow + j) * c + ch];
        }
      }
    }
  }
  return dx;
}

wasmTest({
  name: "wasm: MaxPoolGrad matches a hand oracle and cpu (stock wasm is wrong for 2x2 windows)",
  fn() {
    const specs: {
      xs: [number, number, number, number];
      k: number;
      s: number;
      pad: "valid" | "same";
      relu: boolean;
    }[] = [
      { xs: [2, 8, 8, 4], k: 2, s: 2, pad: "valid", relu: false }, // VGG pooling
      { xs: [2, 8, 8, 4], k: 2, s: 2, pad: "valid", relu: true }, // with ties at 0
      { xs: [2, 6, 6, 3], k: 2, s: 1, pad: "valid", relu: false },
      { xs: [2, 7, 7, 3], k: 3, s: 2, pad: "valid", relu: false },
      { xs: [2, 7, 7, 3], k: 2, s: 2, pad: "same", relu: false },
      { xs: [1, 5, 5, 2], k: 3, s: 1, pad: "same", relu: true },
    ];
    for (const [i, sp] of specs.entries()) {
      const n = sp.xs.reduce((a, b) => a * b);
      const xv = randn(`mp${i}:x`, n).map((v) => sp.relu ? Math.max(v, 0) : v);
      const run = (b: string) =>
        on(b, () =>
          tf.tidy(() => {
            const x = tf.tensor4d(xv, sp.xs);
            const yShape = tf.maxPool(x, sp.k, sp.s, sp.pad).shape;
            const dy = tf.tensor(randn(`mp${i}:dy`, yShape.reduce((a, b) => a * b)), yShape);
            const g = tf.grad((t: tf.Tensor) =>
              tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, sp.k, sp.s, sp.pad), dy))
            );
            return { dx: g(x).dataSync() as Float32Array, dy: dy.dataSync() as Float32Array };
          }));
      const w = run("wasm"), c = run("cpu");
      const label = `maxPool grad ${JSON.stringify(sp)}`;
      assert.ok(relErr(w.dx, c.dx) < 1e-6, label);
      if (sp.pad === "valid") {
        assert.ok(relErr(w.dx, maxPoolGradOracle(xv, sp.xs, sp.k, sp.s, w.dy)) < 1e-6, `${label} vs oracle`);
      }
    }
  },
});

wasmTest({
  name: "wasm: Sum/Mean (leading-axes fast path and stock fallback) match cpu",
  fn() {
    const shape = [4, 5, 6, 7];
    const xv = randn("reduce", 4 * 5 * 6 * 7);
    const specs: [number | number[] | undefined, boolean][] = [
      [[0, 1, 2], false], // BN statistics: fast path
      [[2, 0, 1], true], // same axes unsorted, keepDims
      [[0], false],
      [[-4, -3], false], // negative axes, fast path
      [[1, 2], false], // not leading: stock
      [[3], true], // trailing: stock
      [undefined, false], // all axes: stock
    ];
    for (const [axis, keepDims] of specs) {
      for (const op of ["sum", "mean"] as const) {
        const run = (b: string) =>
          on(b, () =>
            tf.tidy(() => {
              const r = tf[op](tf.tensor(xv, shape), axis, keepDims);
              return { shape: r.shape, v: r.dataSync() as Float32Array };
            }));
        const w = run("wasm"), c = run("cpu");
        assert.deepEqual(w.shape, c.shape, `${op} ${axis} ${keepDims}`);
        assert.ok(relErr(w.v, c.v) < 1e-5, `${op} ${axis} ${keepDims}: ${relErr(w.v, c.v)}`);
      }
    }
    const ints = on(
      "wasm",
      () => tf.tidy(() => Array.from(tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], "int32"), 0).dataSync())),
    );
    assert.deepEqual(ints, [4, 6]);
  },
});
