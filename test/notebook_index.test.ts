/** The index page lists every executed notebook: a `--only` run keeps the others' entries (same profile). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunRecord, writeIndex } from "../lib/notebook/reproduce.ts";

function rec(stem: string, seconds: number): RunRecord {
  return {
    id: stem.slice(0, 2),
    stem,
    path: `/x/${stem}.ipynb`,
    status: "ok",
    seconds,
    error: null,
    ipynb: `/o/${stem}.ipynb`,
    html: `/o/${stem}.html`,
    params: {},
    cellsRun: 1,
    cellsTotal: 1,
    kernelLeft: false,
  } as RunRecord;
}

Deno.test("writeIndex merges a partial run into the previous index of the same profile only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-index-" });
  try {
    await writeIndex(dir, [rec("01-a", 10), rec("02-b", 20)], "quick");
    await writeIndex(dir, [rec("02-b", 3)], "quick");
    let idx = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    assert.deepEqual(idx.runs.map((r: RunRecord) => [r.stem, r.seconds]), [["01-a", 10], ["02-b", 3]]);
    const html = await Deno.readTextFile(join(dir, "index.html"));
    assert.match(html, /01-a\.html/);
    assert.match(html, /02-b\.html/);
    // another profile starts a fresh index
    await writeIndex(dir, [rec("03-c", 1)], "smoke");
    idx = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    assert.deepEqual(idx.runs.map((r: RunRecord) => r.stem), ["03-c"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
