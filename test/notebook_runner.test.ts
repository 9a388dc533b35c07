import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseReproduceArgs, reproduce } from "../lib/cli/reproduce.ts";
import { processAlive, type RunStatus } from "../lib/cli/notebook_runner.ts";
import { NotebookProgress, resolveParams, trainProgress } from "../lib/notebook/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";

function cell(source: string, tags: string[] = []) {
  // with an id (nbformat 4.5), so nbformat does not warn about missing ids
  const id = crypto.randomUUID().slice(0, 8);
  return { cell_type: "code", execution_count: null, id, metadata: { tags }, outputs: [], source };
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
    // the override is written into the parameters cell itself (which resolves the parameters), marked
    const injected = code_cells.find((c: { metadata: { tags?: string[] } }) =>
      c.metadata.tags?.includes("injected-parameters")
    );
    assert.ok(injected.metadata.tags.includes("parameters"), "injected into the parameters cell, not a new cell");
    assert.match(
      Array.isArray(injected.source) ? injected.source.join("") : injected.source,
      /let n = 5; \/\/ injected by reproduce .*the notebook says: 1/,
    );
    const all = JSON.stringify(nb);
    assert.match(all, /before smoke 5/);
    assert.match(all, /"output_type": ?"error"/);
    assert.doesNotMatch(
      code_cells.map((c: { outputs: unknown[] }) => JSON.stringify(c.outputs)).join(""),
      /after/,
    );
    const index = await Deno.readTextFile(join(out, "index.html"));
    assert.match(index, /91-fail/);
    assert.match(index, /<td class="status status-error"><b[^>]*>failed</);
    assert.ok((await Deno.stat(join(out, "91-fail.html"))).size > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce: a cell timeout saves the partial notebook, fails, and kills the kernel", async () => {
  // Margins that hold with another process busy on both cores: the per-cell timeout (15 s) is far
  // above what the quick cells need even when starved (failedCell checks that the slow one timed out),
  // and the slow cell sleeps 300 s, so a run under 250 s can only mean the timeout cut it (it takes
  // ~20 s, also under load). A runner that ignored the timeout would end with status "ok" after 300 s.
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    await writeNb(dir, "92-slow.ipynb", [
      cell('const profile = "quick";', ["parameters"]),
      cell("1 + 41"),
      cell("await new Promise((r) => setTimeout(r, 300_000));"),
      cell('"never"'),
    ]);
    const t0 = performance.now();
    const code = await reproduce(["--notebooks", dir, "--out", out, "--profile", "smoke", "--timeout", "15"]);
    assert.equal(code, 1);
    assert.ok(
      performance.now() - t0 < 250_000,
      "the runner waited for the slow cell instead of timing it out",
    );
    const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, "92-slow.status.json")));
    assert.equal(st.status, "timeout");
    // cells: 0 parameters (overrides are injected into it), 1 "1 + 41", 2 the slow one
    assert.equal(st.failedCell, 2, "the slow cell (not an earlier one) timed out");
    assert.match(st.error ?? "", /timeout/);
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

/** Rows of index.html as {stem: status} (the runner status; "not-run" for rows of earlier invocations). */
function indexRows(html: string): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const m of html.matchAll(/<tr id="([^"]+)"[^>]*>.*?<td class="status status-([\w-]+)">/g)) {
    rows[m[1]] = m[2];
  }
  return rows;
}
interface CodeCell {
  cell_type: string;
  source: string | string[];
  outputs: never[];
  metadata: { tags?: string[] };
}
function codeCells(nb: { cells: CodeCell[] }): CodeCell[] {
  return nb.cells.filter((c) => c.cell_type === "code");
}
const src = (c: { source: string | string[] }) => Array.isArray(c.source) ? c.source.join("") : c.source;

Deno.test("reproduce: a cell calling Deno.exit(0) or Deno.exit(3) fails its notebook, saves the partial notebook, leaves no kernel", async () => {
  // A kernel that exits mid-run (even with code 0) did not run the notebook: never "ok".
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    for (const n of [0, 3]) {
      await writeNb(dir, `8${n}-exit${n}.ipynb`, [
        cell('const profile = "quick";', ["parameters"]),
        cell(`console.log("before exit ${n}");`),
        cell(`Deno.exit(${n});`),
        cell(`console.log("after exit ${n}");`),
      ]);
    }
    const code = await reproduce([
      "--notebooks",
      dir,
      "--out",
      out,
      "--profile",
      "smoke",
      "--timeout",
      "300",
    ]);
    assert.notEqual(code, 0);
    const rows = indexRows(await Deno.readTextFile(join(out, "index.html")));
    for (const n of [0, 3]) {
      const stem = `8${n}-exit${n}`;
      const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, `${stem}.status.json`)));
      assert.equal(st.status, "dead", `${stem}: ${JSON.stringify(st)}`);
      // cells: 0 parameters (profile injected into it), 1 console.log, 2 Deno.exit
      assert.equal(st.failedCell, 2);
      assert.match(st.error ?? "", /kernel died while running cell 2/);
      assert.match(st.error ?? "", new RegExp(`exit code ${n}\\b`));
      assert.ok(st.cellsRun < st.cellsTotal);
      assert.ok(st.kernelPid && st.kernelPid > 0);
      assert.equal(processAlive(st.kernelPid), false, "kernel process still running");
      const nb = JSON.parse(await Deno.readTextFile(join(out, `${stem}.ipynb`)));
      assert.equal(nb.metadata.noiselab.status, "dead");
      const cells = codeCells(nb);
      assert.match(src(cells[2]), /Deno\.exit/);
      const outs = JSON.stringify(cells.map((c) => c.outputs));
      assert.match(outs, new RegExp(`before exit ${n}`), "the partial notebook keeps earlier outputs");
      assert.doesNotMatch(outs, /after exit/);
      assert.ok(
        nb.cells.some((c: { cell_type: string; source: string | string[] }) =>
          c.cell_type === "markdown" && /kernel died/.test(src(c))
        ),
        "the notebook says where execution stopped",
      );
      assert.equal(rows[stem], "dead", `index.html row of ${stem}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce: one failing notebook among several: the others still run and succeed, exit 1, index lists all", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    await writeNb(dir, "71-first.ipynb", [
      cell('let profile = "quick";', ["parameters"]),
      cell('console.log("first ran with " + profile);'),
    ]);
    await writeNb(dir, "72-broken.ipynb", [
      cell('let profile = "quick";', ["parameters"]),
      cell('throw new Error("broken on purpose in 72");'),
      cell('console.log("72 went on");'),
    ]);
    await writeNb(dir, "73-last.ipynb", [
      cell('let profile = "quick";', ["parameters"]),
      cell('console.log("last ran with " + profile);'),
    ]);
    const code = await reproduce([
      "--notebooks",
      dir,
      "--out",
      out,
      "--profile",
      "smoke",
      "--timeout",
      "300",
    ]);
    assert.equal(code, 1);
    const want: Record<string, string> = { "71-first": "ok", "72-broken": "error", "73-last": "ok" };
    for (const [stem, status] of Object.entries(want)) {
      const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, `${stem}.status.json`)));
      assert.equal(st.status, status, `${stem}: ${JSON.stringify(st)}`);
      assert.equal(processAlive(st.kernelPid), false, `${stem}: kernel process still running`);
      const outs = JSON.stringify(
        codeCells(JSON.parse(await Deno.readTextFile(join(out, `${stem}.ipynb`)))).map((c) => c.outputs),
      );
      if (status === "ok") {
        assert.equal(st.error, null);
        assert.equal(st.cellsRun, st.cellsTotal);
        assert.match(outs, new RegExp(`${stem.slice(3)} ran with smoke`));
      } else {
        assert.match(st.error ?? "", /broken on purpose in 72/);
        assert.doesNotMatch(outs, /72 went on/);
      }
    }
    const html = await Deno.readTextFile(join(out, "index.html"));
    assert.deepEqual(indexRows(html), want);
    assert.match(html, /broken on purpose in 72/, "the index shows the failing notebook's error");
    assert.match(html, /1 notebook\(s\) of this invocation failed/);
    const index = JSON.parse(await Deno.readTextFile(join(out, "index.json")));
    assert.deepEqual(
      index.runs.map((r: { stem: string; status: string }) => [r.stem, r.status]),
      Object.entries(want),
    );
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

Deno.test({
  name: "reproduce: errors that escape a cell (unawaited rejection, timer throw, export without await) fail that cell, message first, and stop the notebook",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // inside the project, so that the kernel finds deno.json (the import map of lib/)
    const tmpRoot = fileURLToPath(new URL("../results/tmp/", import.meta.url));
    await Deno.mkdir(tmpRoot, { recursive: true });
    const dir = await Deno.makeTempDir({ dir: tmpRoot });
    const out = join(dir, "out");
    const analysis = new URL("../lib/analysis/mod.ts", import.meta.url).href;
    const cases: Record<string, { code: string; message: RegExp }> = {
      "71-rejection": { code: 'Promise.reject(new Error("lost promise")); "done";', message: /lost promise/ },
      "72-timer": { code: 'setTimeout(() => { throw new Error("timer boom"); }, 5); "done";', message: /timer boom/ },
      "73-export": {
        code: `import * as an from "${analysis}";\nan.exportFigure("<svg xmlns='http://www.w3.org/2000/svg'/>", "bad name!");`,
        message: /bad figure name/,
      },
    };
    try {
      for (const [stem, c] of Object.entries(cases)) {
        await writeNb(dir, `${stem}.ipynb`, [
          cell('const profile = "quick";', ["parameters"]),
          cell(c.code),
          cell('console.log("after the escaped error");'),
        ]);
      }
      const code = await reproduce(["--notebooks", dir, "--out", out, "--profile", "smoke", "--timeout", "120"]);
      assert.equal(code, 1);
      for (const [stem, c] of Object.entries(cases)) {
        const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, `${stem}.status.json`)));
        assert.equal(st.status, "error", `${stem}: an escaped error passed as success: ${JSON.stringify(st)}`);
        assert.equal(st.failedCell, 1, `${stem}: the cell that let the error escape fails`);
        const first = (st.error ?? "").split("\n")[0];
        assert.match(first, /^EscapedError: the cell finished, but an error escaped it/, `${stem}: ${first}`);
        assert.match(first + (st.error ?? ""), c.message);
        const nb = JSON.parse(await Deno.readTextFile(join(out, `${stem}.ipynb`)));
        assert.doesNotMatch(JSON.stringify(nb), /after the escaped error"/, `${stem}: the next cell ran`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("reproduce: runs from a clean copy (no stale outputs of an interactive session survive in cells that did not run)", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  try {
    const stale = (source: string) => ({
      ...cell(source),
      execution_count: 7,
      outputs: [{ output_type: "stream", name: "stdout", text: "STALE OUTPUT FROM THE UI\n" }],
    });
    await writeNb(dir, "74-stale.ipynb", [
      cell('const profile = "quick";', ["parameters"]),
      stale('throw new Error("stops here");'),
      stale('console.log("never runs");'),
    ]);
    assert.equal(await reproduce(["--notebooks", dir, "--out", out, "--profile", "smoke", "--timeout", "120"]), 1);
    const text = await Deno.readTextFile(join(out, "74-stale.ipynb"));
    assert.doesNotMatch(text, /STALE OUTPUT/);
    assert.doesNotMatch(text, /"execution_count": 7/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce: warns about notebooks whose code differs from the last commit, not about outputs", async () => {
  const { uncommittedNotebooks } = await import("../lib/cli/notebook_runner.ts");
  const dir = await Deno.makeTempDir();
  const git = (...args: string[]) =>
    new Deno.Command("git", {
      args: ["-c", "user.name=t", "-c", "user.email=t@t", ...args],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
  try {
    await git("init", "-q");
    await writeNb(dir, "75-a.ipynb", [cell('const profile = "quick";\nconst draws = null;', ["parameters"])]);
    await git("add", ".");
    await git("commit", "-qm", "nb");
    const nb = { id: "75", stem: "75-a", path: join(dir, "75-a.ipynb") };
    assert.deepEqual(await uncommittedNotebooks([nb]), []);
    // outputs only (an executed copy saved over it): no warning
    const j = JSON.parse(await Deno.readTextFile(nb.path));
    j.cells[0].outputs = [{ output_type: "stream", name: "stdout", text: "x" }];
    await Deno.writeTextFile(nb.path, JSON.stringify(j));
    assert.deepEqual(await uncommittedNotebooks([nb]), []);
    // a parameter edited and autosaved in the UI: warned, naming the file
    j.cells[0].source = 'const profile = "quick";\nconst draws = 9;';
    await Deno.writeTextFile(nb.path, JSON.stringify(j));
    const w = await uncommittedNotebooks([nb]);
    assert.equal(w.length, 1);
    assert.match(w[0], /75-a\.ipynb has edits that are not committed/);
    // a notebook never committed
    await writeNb(dir, "76-new.ipynb", [cell('const profile = "quick";', ["parameters"])]);
    const w2 = await uncommittedNotebooks([{ id: "76", stem: "76-new", path: join(dir, "76-new.ipynb") }]);
    assert.match(w2[0] ?? "", /76-new\.ipynb is not committed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "reproduce: an error that surfaces after the last cell finished (a late timer) fails the notebook",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out = join(dir, "out");
    try {
      await writeNb(dir, "77-late.ipynb", [
        cell('const profile = "quick";', ["parameters"]),
        cell('setTimeout(() => { throw new Error("late last boom"); }, 700);\nconsole.log("scheduled");'),
      ]);
      const code = await reproduce(["--notebooks", dir, "--out", out, "--profile", "smoke", "--timeout", "120"]);
      assert.equal(code, 1, "a late error after the last cell passed as success");
      const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, "77-late.status.json")));
      assert.equal(st.status, "error");
      assert.equal(st.failedCell, 1);
      assert.match((st.error ?? "").split("\n")[0], /^EscapedError: an error escaped a cell that had already finished: Error: late last boom/);
      assert.match(st.error ?? "", /after In \[\d+\] had finished/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
