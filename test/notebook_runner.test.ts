import assert from "node:assert/strict";
import { join } from "node:path";
import {
  NotebookProgress,
  parseReproduceArgs,
  processAlive,
  reproduce,
  resolveParams,
  type RunStatus,
  trainProgress,
} from "../lib/notebook/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";

function cell(source: string, tags: string[] = []) {
  return { cell_type: "code", execution_count: null, metadata: { tags }, outputs: [], source };
}
function notebook(cells: unknown[]) {
  return {
    cells,
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  };
}
async function writeNb(dir: string, name: string, cells: unknown[]) {
  await Deno.writeTextFile(join(dir, name), JSON.stringify(notebook(cells)));
}
function textOf(out: { text?: string | string[]; data?: Record<string, string | string[]> }): string {
  const t = out.text ?? out.data?.["text/plain"] ?? "";
  return Array.isArray(t) ? t.join("") : t;
}

Deno.test("reproduce: a failing cell gives a non-zero exit, a partial notebook, an index, and no kernel left", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    await writeNb(dir, "91-fail.ipynb", [
      cell('let profile = "quick";\nlet n = 1;', ["parameters"]),
      cell('console.log("before " + profile + " " + n);'),
      cell('throw new Error("deliberate failure");'),
      cell('console.log("after");'),
    ]);
    const code = await reproduce([
      "--notebooks",
      dir,
      "--out",
      out,
      "--profile",
      "smoke",
      "-p",
      "n=5",
      "--timeout",
      "120",
    ]);
    assert.equal(code, 1);
    const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, "91-fail.status.json")));
    assert.equal(st.status, "error");
    assert.match(st.error ?? "", /deliberate failure/);
    assert.ok(st.kernelPid && st.kernelPid > 0);
    assert.equal(processAlive(st.kernelPid), false, "kernel process still running");
    const nb = JSON.parse(await Deno.readTextFile(join(out, "91-fail.ipynb")));
    const code_cells = nb.cells.filter((c: { cell_type: string }) => c.cell_type === "code");
    // injected cell re-uses the parameters cell's keyword (let)
    const injected = code_cells.find((c: { metadata: { tags?: string[] } }) =>
      c.metadata.tags?.includes("injected-parameters")
    );
    assert.match(Array.isArray(injected.source) ? injected.source.join("") : injected.source, /let n = 5;/);
    const all = JSON.stringify(nb);
    assert.match(all, /before smoke 5/);
    assert.match(all, /"output_type": ?"error"/);
    assert.doesNotMatch(
      code_cells.map((c: { outputs: unknown[] }) => JSON.stringify(c.outputs)).join(""),
      /after/,
    );
    const index = await Deno.readTextFile(join(out, "index.html"));
    assert.match(index, /91-fail/);
    assert.match(index, />error</);
    assert.ok((await Deno.stat(join(out, "91-fail.html"))).size > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce: a cell timeout saves the partial notebook, fails, and kills the kernel", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    await writeNb(dir, "92-slow.ipynb", [
      cell('const profile = "quick";', ["parameters"]),
      cell("1 + 41"),
      cell("await new Promise((r) => setTimeout(r, 120000));"),
      cell('"never"'),
    ]);
    const t0 = performance.now();
    const code = await reproduce(["--notebooks", dir, "--out", out, "--profile", "smoke", "--timeout", "4"]);
    assert.equal(code, 1);
    assert.ok(performance.now() - t0 < 60_000);
    const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, "92-slow.status.json")));
    assert.equal(st.status, "timeout");
    assert.equal(processAlive(st.kernelPid), false);
    const nb = JSON.parse(await Deno.readTextFile(join(out, "92-slow.ipynb")));
    const outputs = nb.cells.filter((c: { cell_type: string }) => c.cell_type === "code").flatMap((
      c: { outputs: [] },
    ) => c.outputs);
    assert.ok(
      outputs.some((o: never) => textOf(o) === "42"),
      "output of the cell before the timeout is kept",
    );
    assert.doesNotMatch(JSON.stringify(nb), /"text\/plain": ?"\\"never\\""/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce: argument and parameter errors are NoiselabErrors raised before any run", async () => {
  assert.throws(() => parseReproduceArgs(["--profile", "huge"]), NoiselabError);
  assert.throws(() => parseReproduceArgs(["-p", "novalue"]), NoiselabError);
  assert.throws(() => parseReproduceArgs(["--timeout", "-3"]), NoiselabError);
  assert.throws(() => parseReproduceArgs(["--bogus"]), NoiselabError);
  const o = parseReproduceArgs([
    "--profile",
    "smoke",
    "-p",
    "etas=0,0.1",
    "-p",
    'models=["resnet8"]',
    "--only",
    "01,03",
  ]);
  assert.deepEqual(o.params, { etas: [0, 0.1], models: ["resnet8"] });
  assert.deepEqual(o.only, ["01", "03"]);
  assert.equal(o.timeout, 900);
  const dir = await Deno.makeTempDir();
  try {
    await writeNb(dir, "01-tmp.ipynb", [
      cell('const profile = "quick";\nconst draws = null;', ["parameters"]),
    ]);
    const base = ["--notebooks", dir, "--out", join(dir, "out")];
    await assert.rejects(() => reproduce([...base, "--only", "77"]), NoiselabError);
    await assert.rejects(() => reproduce([...base, "-p", "nosuchparam=1"]), /nosuchparam/);
    await assert.rejects(() => reproduce([...base, "-p", "draws=0"]), /draws/);
    // nothing ran
    await assert.rejects(() => Deno.stat(join(dir, "out")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("profiles: resolveParams merges non-null overrides and validates", () => {
  const p = resolveParams("01", "smoke", { draws: 7, models: null });
  assert.equal(p.draws, 7);
  assert.equal(p.profile, "smoke");
  assert.ok(p.models.length > 0);
  assert.equal(resolveParams("04", "quick").dataset, "cifar100");
  assert.throws(() => resolveParams("01", "nope"), NoiselabError);
  assert.throws(() => resolveParams("01", "smoke", { etas: [0.1, -1] }), /etas/);
  assert.throws(() => resolveParams("01", "smoke", { unknownKnob: 1 }), /unknownKnob/);
});

Deno.test("progress: stderr fallback is throttled and always shows the final state", async () => {
  const bar = new NotebookProgress("t", { stderr: true, intervalMs: 60_000 });
  for (let i = 0; i <= 100; i++) bar.update(i, 100);
  await bar.finish("done");
  // first update, the completed state (done == total) and finish; nothing in between
  assert.equal(bar.rendered, 3);
  assert.match(bar.text(), /100\/100 \(100%/);
  const cb = trainProgress("m", { stderr: true, intervalMs: 60_000 });
  cb({
    phase: "train",
    epoch: 2,
    epochs: 2,
    step: 3,
    steps: 4,
    loss: 1,
    accuracy: 0.5,
    imagesPerSec: 10,
    etaSeconds: 1,
  });
  assert.match(cb.bar.text(), /7\/8/);
});
