/**
 * The index page is the study's front page: every executed notebook with its status in THIS invocation
 * (or "not run in this invocation" with its own last run), finding, figures, tables, parameters, run
 * time, and the error message first.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { errorSummary, type IndexEntry, type IndexFile, writeIndex } from "../lib/cli/index_page.ts";
import { manifestPathFor, type RunManifest } from "../lib/notebook/manifest.ts";

const STEMS = ["01-bn-vs-no-bn", "02-bn-layer-count", "03-where-bn-breaks", "04-cifar100", "05-robustness"];

function rec(stem: string, seconds: number, extra: Partial<IndexEntry> = {}): IndexEntry {
  return {
    id: stem.slice(0, 2),
    stem,
    path: `/x/${stem}.ipynb`,
    status: "ok",
    seconds,
    error: null,
    ipynb: `/o/${stem}.ipynb`,
    html: `/o/${stem}.html`,
    params: { profile: "quick" },
    cellsRun: 1,
    cellsTotal: 1,
    kernelLeft: false,
    ...extra,
  };
}

/** The `<tr>` of one notebook. */
function rowOf(html: string, stem: string): string {
  const m = new RegExp(`<tr id="${stem}"[^>]*>.*?</tr>`, "s").exec(html);
  assert.ok(m, `no row for ${stem}`);
  return m[0];
}

/** Text content of an HTML fragment (tags removed, entities of escapeXml undone). */
function text(html: string): string {
  return html.replace(/<[^>]+>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "noiselab-index-" });
}

Deno.test("writeIndex: --only 01 after a full run keeps 02-05, marked 'not run in this invocation' with their own run time", async () => {
  const dir = await tempDir();
  try {
    const full = STEMS.map((s, i) => rec(s, 10 + i, { finishedAt: `2024-05-01T10:0${i}:00.000Z` }));
    await writeIndex(dir, full, "quick");
    await writeIndex(dir, [rec(STEMS[0], 3)], "quick"); // reproduce --only 01
    const idx: IndexFile = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    assert.deepEqual(idx.invocation.ran, [STEMS[0]]);
    assert.deepEqual(
      idx.runs.map((r) => [r.stem, r.seconds]),
      STEMS.map((s, i) => [s, i === 0 ? 3 : 10 + i]),
    );
    assert.deepEqual(
      idx.runs.slice(1).map((r) => r.finishedAt),
      [1, 2, 3, 4].map((i) => `2024-05-01T10:0${i}:00.000Z`),
    );
    assert.ok(Date.parse(idx.runs[0].finishedAt!) > Date.parse("2024-06-01"), "01 is stamped with now");
    const html = await Deno.readTextFile(join(dir, "index.html"));
    const r1 = rowOf(html, STEMS[0]);
    assert.match(r1, /class="status status-ok"><b[^>]*>ok</);
    assert.doesNotMatch(r1, /not run in this invocation/);
    for (const [i, s] of STEMS.entries()) {
      if (i === 0) continue;
      const row = rowOf(html, s);
      const status = /<td class="status[^"]*">.*?<\/td>/s.exec(row)![0];
      assert.match(status, /status-not-run/);
      assert.ok(
        text(status).startsWith(
          `not run in this invocationlast run 2024-05-01 10:0${i} UTC (profile quick): ok`,
        ),
        text(status),
      );
      assert.match(row, new RegExp(`finished 2024-05-01 10:0${i} UTC`));
      assert.match(row, new RegExp(`href="${s}\\.html"`)); // relative links
    }
    assert.match(text(html), /ran 1 notebook\(s\): 01 ok\./);
    assert.match(text(html), /4 row\(s\) marked not run in this invocation show their own last run/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeIndex: repeated calls of one invocation keep its rows' times; another profile's rows are kept and marked", async () => {
  const dir = await tempDir();
  try {
    const a = rec("01-a", 10), b = rec("02-b", 20);
    await writeIndex(dir, [a], "quick");
    const t1 = a.finishedAt;
    await new Promise((r) => setTimeout(r, 5));
    await writeIndex(dir, [a, b], "quick");
    let idx: IndexFile = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    assert.equal(idx.runs[0].finishedAt, t1);
    assert.deepEqual(idx.runs.map((r) => [r.stem, r.seconds]), [["01-a", 10], ["02-b", 20]]);
    await writeIndex(dir, [rec("03-c", 1)], "smoke");
    idx = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    assert.deepEqual(idx.runs.map((r) => [r.stem, r.profile]), [["01-a", "quick"], ["02-b", "quick"], [
      "03-c",
      "smoke",
    ]]);
    const html = await Deno.readTextFile(join(dir, "index.html"));
    assert.match(rowOf(html, "01-a"), /not run in this invocation.*\(profile quick\)/s);
    assert.doesNotMatch(rowOf(html, "03-c"), /not run in this invocation/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** What tools/run_notebook.py keeps of nbclient's error (its last 20 lines): cell source first. */
const CELL_SOURCE = Array.from({ length: 12 }, (_, i) => `const v${i} = ${i};`);
const RUNNER_ERROR = [
  ...CELL_SOURCE,
  "------------------",
  "",
  "NoiselabError: etas must be >= 0, got -1 (parameter etas)",
  "    at <anonymous>:16:7",
  "NoiselabError: etas must be >= 0, got -1 (parameter etas)",
].join("\n");

Deno.test("writeIndex: the error column starts with the message when the runner's error text starts with 12 lines of cell source", async () => {
  const dir = await tempDir();
  try {
    await writeIndex(dir, [
      rec("01-a", 2, { status: "error", error: RUNNER_ERROR, cellsRun: 3, cellsTotal: 7 }),
    ], "quick");
    const html = await Deno.readTextFile(join(dir, "index.html"));
    const row = rowOf(html, "01-a");
    const cell = /<td class="error">(.*?)<\/td>/s.exec(row)![1];
    assert.ok(
      text(cell).startsWith(
        "NoiselabError: etas must be >= 0, got -1 (parameter etas)traceback and cell source",
      ),
      text(cell).slice(0, 200),
    );
    // the rest (cell source, traceback) is there, folded away
    assert.match(
      cell,
      /<details><summary>traceback and cell source<\/summary><pre>const v0 = 0;\nconst v1 = 1;/,
    );
    assert.match(row, /class="status status-error"><b[^>]*>failed</);
    assert.match(text(html), /1 notebook\(s\) of this invocation failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errorSummary: message first, whatever the runner's error text looks like", () => {
  assert.equal(
    errorSummary(RUNNER_ERROR).message,
    "NoiselabError: etas must be >= 0, got -1 (parameter etas)",
  );
  // the full nbclient frame, a multi-line message, ANSI colours, and a note reproduce appends
  const full = [
    "An error occurred while executing the following cell:",
    "------------------",
    'throw new TypeError("bad\\nsecond line");',
    "------------------",
    "",
    "\x1b[31mTypeError: bad\x1b[0m",
    "second line",
    "    at <anonymous>:1:7",
    "TypeError: bad",
    "second line",
    "kernel process was still running after the runner exited (killed)",
  ].join("\n");
  assert.equal(
    errorSummary(full).message,
    "TypeError: bad\nsecond line\nkernel process was still running after the runner exited (killed)",
  );
  assert.ok(!errorSummary(full).details.includes("\x1b"), "ANSI codes removed");
  assert.equal(
    errorSummary("cell 4 ran longer than 60s (per-cell timeout)").message,
    "cell 4 ran longer than 60s (per-cell timeout)",
  );
  assert.equal(errorSummary("runner exited with code 1").message, "runner exited with code 1");
  assert.equal(
    errorSummary("const a = 1;\n------------------\n\nNotFound: No such file (os error 2)").message,
    "NotFound: No such file (os error 2)",
  );
});

Deno.test("writeIndex: finding, figure thumbnails and tables from the run manifest, relative links; stale manifests and skips", async () => {
  const root = await tempDir();
  const out = join(root, "notebooks");
  const figs = join(root, "figures");
  await Deno.mkdir(out, { recursive: true });
  try {
    const now = new Date().toISOString();
    const manifest = (findings: string[], updated = now): RunManifest => ({
      version: 1,
      pid: 1,
      started: updated,
      updated,
      findings,
      parameters: { profile: "quick", draws: 4 },
      artifacts: [
        {
          kind: "figure",
          name: "01-acc",
          title: "Accuracy <vs> η",
          recorded: updated,
          files: {
            svg: join(figs, "01-acc.svg"),
            png: join(figs, "01-acc.png"),
            pdf: join(figs, "01-acc.pdf"),
            json: join(figs, "01-acc.json"),
            "captioned.png": join(figs, "01-acc.captioned.png"),
          },
        },
        {
          kind: "table",
          name: "01-summary",
          recorded: updated,
          files: { csv: join(root, "tables", "01-summary.csv") },
        },
      ],
    });
    await Deno.writeTextFile(
      manifestPathFor(out, "01-a"),
      JSON.stringify(manifest(["BN keeps 68% vs 89%."])),
    );
    // 02 ran now but its manifest is from a run a day ago: not shown
    const old = new Date(Date.now() - 86400_000).toISOString();
    await Deno.writeTextFile(manifestPathFor(out, "02-b"), JSON.stringify(manifest(["stale finding"], old)));
    await writeIndex(out, [
      rec("01-a", 5, { ipynb: join(out, "01-a.ipynb"), html: join(out, "01-a.html") }),
      rec("02-b", 5),
      rec("03-c", 0, {
        status: "skipped",
        reason: "needs CIFAR-100 (data/cifar-100-binary missing)",
        cellsRun: 0,
      }),
    ], "quick");
    const html = await Deno.readTextFile(join(out, "index.html"));
    const r1 = rowOf(html, "01-a");
    assert.match(r1, /<p class="finding">BN keeps 68% vs 89%\.<\/p>/);
    assert.match(
      r1,
      /<a href="\.\.\/figures\/01-acc\.svg"><img src="\.\.\/figures\/01-acc\.png" alt="Accuracy &lt;vs&gt; η \(01-acc\)"/,
    );
    assert.match(r1, /<a href="\.\.\/figures\/01-acc\.pdf">PDF<\/a>/);
    assert.match(r1, /<a href="\.\.\/figures\/01-acc\.captioned\.png">captioned<\/a>/);
    assert.match(r1, /<a href="\.\.\/tables\/01-summary\.csv">01-summary\.csv<\/a>/);
    assert.match(r1, /<code>draws=4<\/code>/); // resolved parameters from the manifest
    assert.match(r1, /href="01-a\.html"/);
    assert.doesNotMatch(html, /href="\//, "no absolute links");
    const r2 = rowOf(html, "02-b");
    assert.doesNotMatch(r2, /stale finding|01-acc/);
    assert.match(r2, /no finding recorded/);
    const r3 = rowOf(html, "03-c");
    assert.match(text(r3), /skipped: needs CIFAR-100 \(data\/cifar-100-binary missing\)/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
