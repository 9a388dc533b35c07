// Backend selection (lib/backend/mod.ts).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { backendInfo, initBackend } from "../lib/backend/mod.ts";
import { loadNative } from "../lib/backend/engine/ffi.ts";
import { NoiselabError } from "../lib/util/errors.ts";

Deno.test("backend: a bad preference is a NoiselabError naming it", async () => {
  await assert.rejects(
    () => initBackend("gpu" as never),
    (e: unknown) => e instanceof NoiselabError && /"gpu"/.test(e.message),
  );
  Deno.env.set("NOISELAB_BACKEND", "nope");
  try {
    await assert.rejects(
      () => initBackend(),
      (e: unknown) => e instanceof NoiselabError && /NOISELAB_BACKEND/.test(e.message),
    );
  } finally {
    Deno.env.delete("NOISELAB_BACKEND");
  }
});

Deno.test("backend: a bad NOISELAB_THREADS is a NoiselabError naming it", async () => {
  Deno.env.set("NOISELAB_THREADS", "abc");
  try {
    await assert.rejects(
      () => initBackend("cpu"),
      (e: unknown) => e instanceof NoiselabError && /NOISELAB_THREADS/.test(e.message),
    );
  } finally {
    Deno.env.delete("NOISELAB_THREADS");
  }
});

Deno.test("backend: tensorflow (tfjs-node) is only tried through the import map, never fetched", async () => {
  const before = await Deno.readTextFile(new URL("../deno.lock", import.meta.url));
  await assert.rejects(
    () => initBackend("tensorflow"),
    (e: unknown) => e instanceof NoiselabError && /tfjs-node/.test(e.message),
  );
  const after = await Deno.readTextFile(new URL("../deno.lock", import.meta.url));
  assert.equal(after, before, "deno.lock changed: something fetched tfjs-node");
});

Deno.test("backend: cpu can be forced; backendInfo reports it; idempotent", async () => {
  assert.equal(await initBackend("cpu"), "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(await initBackend("cpu"), "cpu");
  const info = backendInfo();
  assert.equal(info.name, "cpu");
  assert.equal(info.threads, 1);
  assert.match(info.detail, /tfjs-backend-cpu/);
});

Deno.test("backend: auto prefers the noiselab engine when its shim loads", async () => {
  const name = await initBackend("auto");
  if (loadNative()) {
    assert.equal(name, "noiselab");
    const info = backendInfo();
    assert.equal(info.name, "noiselab");
    assert.ok(info.threads >= 1);
    assert.match(info.detail, /oneDNN \d+\.\d+/);
    // and the engine computes: a small conv matches a hand-computed value
    const y = tf.conv2d(
      tf.ones([1, 3, 3, 1]) as tf.Tensor4D,
      tf.ones([3, 3, 1, 1]) as tf.Tensor4D,
      1,
      "same",
    );
    assert.deepEqual(Array.from(y.dataSync()), [4, 6, 4, 6, 9, 6, 4, 6, 4]);
  } else {
    assert.notEqual(name, "noiselab");
  }
  assert.equal(await initBackend("auto"), name);
});
