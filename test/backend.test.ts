// Backend selection (lib/backend/mod.ts).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { backendInfo, initBackend } from "../lib/backend/mod.ts";
import { engineSkipReason, engineUnavailableReason } from "../lib/backend/engine/mod.ts";
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

Deno.test("backend: no tfjs 'install our node backend' banner, also for tensors made before initBackend and on cpu", async () => {
  // a fresh process: tfjs-backend-cpu prints the banner once per backend instance, on its first tensor.
  // The first tensor goes to tfjs's default cpu backend before initBackend, as the noise CLI loads its model.
  const mod = new URL("../lib/backend/mod.ts", import.meta.url).href;
  const script = [
    'import * as tf from "@tensorflow/tfjs-core";',
    `import { initBackend } from ${JSON.stringify(mod)};`,
    "tf.tensor([1, 2]).dataSync();",
    'await initBackend("cpu");',
    "tf.tensor([3]).dataSync();",
    'await initBackend("auto");',
    "tf.tensor([4]).dataSync();",
    'console.log("done");',
  ].join("\n");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    cwd: new URL("..", import.meta.url),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stdout.trim(), "done");
  assert.doesNotMatch(stderr, /node backend|TensorFlow\.js in Node\.js/, stderr);
});

/** Runs `fn` with console.error captured; returns its result and the captured lines. */
async function capturingErrors<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.error = orig;
  }
}

Deno.test("backend: auto picks the noiselab engine where its shim can be built, else wasm with the reason", async () => {
  const skip = engineSkipReason();
  const { value: name, lines } = await capturingErrors(() => initBackend("auto"));
  const notices = lines.filter((l) => l.startsWith("[noiselab] "));
  if (skip == null) {
    // oneDNN's headers and g++ are here: the shim must have been built and must load
    assert.equal(name, "onednn", `the engine should load on this machine: ${engineUnavailableReason()}`);
    assert.deepEqual(notices, [], "no fallback notice is expected");
    const info = backendInfo();
    assert.equal(info.name, "onednn");
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
    // no shim possible here (the reason is checked by tools/test.sh for skips): the next
    // backend in the order is wasm, and the one-line notice names why the engine is absent
    assert.equal(name, "wasm", `expected the wasm fallback (${skip}), got ${name}`);
    assert.deepEqual(notices, [`[noiselab] using the wasm backend (onednn: ${engineUnavailableReason()})`]);
  }
  assert.equal(await initBackend("auto"), name);
});

const ROOT = new URL("..", import.meta.url).pathname;

/** initBackend("auto") in a fresh process whose engine shim is `lib` (NOISELAB_ENGINE_LIB). */
async function autoInSubprocess(lib: string) {
  const mod = new URL("../lib/backend/mod.ts", import.meta.url).href;
  const code = `import { backendInfo, initBackend } from ${JSON.stringify(mod)};
const name = await initBackend("auto");
console.log(JSON.stringify({ name, detail: backendInfo().detail }));`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${ROOT}deno.json`, code],
    cwd: ROOT,
    env: { NOISELAB_ENGINE_LIB: lib, NOISELAB_THREADS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout), stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, stderr);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  return {
    result: JSON.parse(last) as { name: string; detail: string },
    notices: stderr.split("\n").filter((l) => l.startsWith("[noiselab] ")),
  };
}

Deno.test("backend: without a shim file, auto falls back to wasm with a notice naming the missing shim", async () => {
  const missing = `${ROOT}lib/backend/engine/native/build/does-not-exist.so`;
  const { result, notices } = await autoInSubprocess(missing);
  assert.equal(result.name, "wasm");
  assert.match(result.detail, /tfjs-backend-wasm/);
  assert.deepEqual(notices, [
    `[noiselab] using the wasm backend (onednn: native shim not built (${missing} missing; run lib/backend/engine/native/build.sh))`,
  ]);
});

Deno.test("backend: with a shim that fails to load, auto falls back to wasm with a notice naming the error", async () => {
  const bad = await Deno.makeTempFile({ suffix: ".so" });
  try {
    await Deno.writeTextFile(bad, "not a shared library\n");
    const { result, notices } = await autoInSubprocess(bad);
    assert.equal(result.name, "wasm");
    assert.equal(notices.length, 1, notices.join("\n"));
    assert.match(
      notices[0],
      /^\[noiselab\] using the wasm backend \(onednn: native shim failed to load: .+\)$/,
    );
    assert.ok(notices[0].includes(bad), notices[0]);
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("backend rename: 'noiselab' is accepted as the old name of 'onednn', and stored ids keep the old name", async () => {
  const { canonicalBackendName, storeBackendName } = await import("../lib/backend/mod.ts");
  const { modelId } = await import("../lib/train/store.ts");
  const { resolveTrainConfig } = await import("../lib/train/mod.ts");
  assert.equal(canonicalBackendName("noiselab"), "onednn");
  assert.equal(canonicalBackendName("cpu"), "cpu");
  assert.equal(storeBackendName("onednn"), "noiselab");
  assert.equal(storeBackendName("wasm"), "wasm");
  const cfg = resolveTrainConfig({ model: "resnet8", epochs: 1 });
  // a model stored by the engine under its old name keeps its id
  assert.equal(modelId(cfg, "cifar10-jpeg-x", "onednn"), modelId(cfg, "cifar10-jpeg-x", "noiselab"));
  assert.notEqual(modelId(cfg, "cifar10-jpeg-x", "onednn"), modelId(cfg, "cifar10-jpeg-x", "cpu"));
  const { resolveParams } = await import("../lib/notebook/profiles.ts");
  assert.equal(resolveParams("01", "smoke", { backend: "noiselab" }).backend, "onednn");
});

Deno.test("storeBackendName: the engine keeps its stored name; another reduction layout is named in ids", async () => {
  const { storeBackendName, engineReductionThreads } = await import("../lib/backend/mod.ts");
  const before = Deno.env.get("NOISELAB_REDUCTION_THREADS");
  try {
    Deno.env.delete("NOISELAB_REDUCTION_THREADS");
    assert.equal(engineReductionThreads(), 2);
    assert.equal(storeBackendName("onednn"), "noiselab");
    assert.equal(storeBackendName("noiselab"), "noiselab");
    assert.equal(storeBackendName("wasm"), "wasm");
    Deno.env.set("NOISELAB_REDUCTION_THREADS", "4");
    assert.equal(storeBackendName("onednn"), "noiselab-r4");
    assert.equal(storeBackendName("cpu"), "cpu");
    Deno.env.set("NOISELAB_REDUCTION_THREADS", "0"); // out of range: the default, as the shim reads it
    assert.equal(storeBackendName("onednn"), "noiselab");
  } finally {
    if (before === undefined) Deno.env.delete("NOISELAB_REDUCTION_THREADS");
    else Deno.env.set("NOISELAB_REDUCTION_THREADS", before);
  }
});
