/**
 * Executes EVERY notebook at the `smoke` profile through the real reproduce
 * path (tools/run_notebook.py on the Deno Jupyter kernel) into a temporary
 * results folder. Trained smoke models are shared with results/models (the
 * store is keyed by config + code version, so this only skips retraining
 * identical models); sweeps, figures, tables and notebooks are fresh.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { processAlive, type RunStatus } from "../lib/cli/notebook_runner.ts";
import { reproduce } from "../lib/cli/reproduce.ts";
import { projectRoot } from "../lib/util/paths.ts";

type Output = { output_type: string; data?: Record<string, string | string[]> };
type Cell = { cell_type: string; outputs?: Output[] };
const str = (v: string | string[] | undefined) => Array.isArray(v) ? v.join("") : v ?? "";

const EXPECTED_FIGURES: Record<string, string[]> = {
  "01-bn-vs-no-bn": ["01-accuracy-vs-eta", "01-normalized-vs-eta"],
  "02-bn-layer-count": ["02-normalized-vs-bn-layers"],
  "03-where-bn-breaks": ["03-attribution-bars", "03-attribution-resnet8", "03-attribution-vgg11"],
  "04-cifar100": ["04-accuracy-vs-eta", "04-normalized-vs-eta", "04-nonfinite-vs-eta"],
  "05-robustness-over-training": ["05-trajectory-resnet8", "05-nonfinite-along-training"],
  "06-analog-hardware": ["06-normalized-vs-time-resnet8", "06-mitigations-vs-time-resnet8"],
};

/** Parse a CSV written by lib/analysis exportTable (header + rows; quoted fields allowed). */
function readCsv(text: string): Record<string, string>[] {
  const parseLine = (line: string) => {
    const out: string[] = [];
    let cur = "", q = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (q) {
        if (ch === '"' && line[i + 1] === '"') (cur += '"', i++);
        else if (ch === '"') q = false;
        else cur += ch;
      } else if (ch === '"') q = true;
      else if (ch === ",") (out.push(cur), cur = "");
      else cur += ch;
    }
    out.push(cur);
    return out;
  };
  const lines = text.trim().split(/\r?\n/);
  const head = parseLine(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(parseLine(l).map((v, i) => [head[i], v])));
}

/** A table cell is a finite number, a non-numeric label, or an explicit marker ("undefined (1 draw)", empty for null). */
function cellOk(v: string): boolean {
  if (v === "" || /undefined/.test(v)) return true;
  if (/^-?[0-9.eE+-]+$/.test(v)) return Number.isFinite(Number(v));
  return !/^(NaN|Infinity|-Infinity)$/.test(v) && !/NaN/.test(v);
}

Deno.test({
  name: "reproduce --profile smoke runs every notebook without errors, with charts, tables and figure files",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "noiselab-smoke-" });
    const sharedModels = join(projectRoot, "results", "models");
    await Deno.mkdir(sharedModels, { recursive: true });
    await Deno.symlink(sharedModels, join(tmp, "models"));
    const before = Deno.env.get("NOISELAB_RESULTS_DIR");
    Deno.env.set("NOISELAB_RESULTS_DIR", tmp);
    try {
      const out = join(tmp, "notebooks");
      const code = await reproduce(["--profile", "smoke", "--out", out]);
      const index = await Deno.readTextFile(join(out, "index.html"));
      for (const stem of Object.keys(EXPECTED_FIGURES)) {
        const st: RunStatus = JSON.parse(await Deno.readTextFile(join(out, `${stem}.status.json`)));
        assert.equal(st.status, "ok", `${stem}: ${st.status} ${st.error ?? ""}`);
        assert.equal(st.cellsRun, st.cellsTotal, `${stem}: not every cell ran`);
        assert.equal(processAlive(st.kernelPid), false, `${stem}: kernel ${st.kernelPid} still running`);
        assert.match(index, new RegExp(stem));
        const nb = JSON.parse(await Deno.readTextFile(join(out, `${stem}.ipynb`)));
        const outputs = (nb.cells as Cell[]).filter((c) => c.cell_type === "code").flatMap((c) =>
          c.outputs ?? []
        );
        const errors = outputs.filter((o) => o.output_type === "error");
        assert.equal(errors.length, 0, `${stem}: error outputs ${JSON.stringify(errors).slice(0, 500)}`);
        // no stray `Out[..]: 4` under a cell: everything shown is an explicit display
        const stray = outputs.filter((o) => o.output_type === "execute_result");
        assert.equal(stray.length, 0, `${stem}: stray cell results ${JSON.stringify(stray).slice(0, 300)}`);
        // every chart carries a PNG fallback (untrusted notebooks, GitHub's viewer)
        for (const o of outputs.filter((o) => o.data?.["image/svg+xml"])) {
          assert.match(str(o.data?.["image/png"]), /^iVBOR/, `${stem}: a chart without a PNG fallback`);
        }
        // the index shows the notebook's one-line finding (a verdict of its interpretation)
        const manifest = JSON.parse(await Deno.readTextFile(join(out, `${stem}.manifest.json`)));
        assert.ok(manifest.findings?.length >= 1, `${stem}: no finding recorded`);
        assert.match(manifest.findings[0], /Finding|Inconclusive|No difference shown|No trend|Not interpretable/i, `${stem}: ${manifest.findings[0]}`);
        const svgs = outputs.filter((o) => str(o.data?.["image/svg+xml"]).startsWith("<svg xmlns="));
        const tables = outputs.filter((o) => /<table/.test(str(o.data?.["text/html"])));
        assert.ok(tables.length >= 1, `${stem}: no HTML table`);
        assert.ok(
          (await Deno.stat(join(out, `${stem}.html`))).size > 10_000,
          `${stem}: HTML export missing/small`,
        );
        assert.ok(svgs.length >= 1, `${stem}: no image/svg+xml chart`);
        // the HTML export carries the charts intact (as data-URL images, not sanitized inline SVG)
        const html = await Deno.readTextFile(join(out, `${stem}.html`));
        assert.ok(
          (html.match(/<img alt="\[figure\][^>]*src="data:image\/svg\+xml;base64,/g) ?? []).length >=
            svgs.length,
        );
        for (const f of EXPECTED_FIGURES[stem]) {
          const base = join(tmp, "figures", f);
          assert.match(
            await Deno.readTextFile(`${base}.svg`),
            /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
          );
          const png = await Deno.readFile(`${base}.png`);
          assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${f}.png magic`);
          assert.ok(png.length > 10_000, `${f}.png is only ${png.length} bytes`);
          const pdf = await Deno.readFile(`${base}.pdf`);
          assert.equal(new TextDecoder().decode(pdf.slice(0, 5)), "%PDF-", `${f}.pdf magic`);
        }
        // every figure has a provenance line under it
        const prov = outputs.filter((o) => /Provenance:/.test(str(o.data?.["text/html"])));
        assert.ok(
          prov.length >= svgs.length,
          `${stem}: ${svgs.length} charts but ${prov.length} provenance lines`,
        );
      }
      // the numbers are sane, not just present
      const tables = join(tmp, "tables");
      for (const f of ["01-sweep-summary", "04-sweep-summary"]) {
        const rows = readCsv(await Deno.readTextFile(join(tables, `${f}.csv`)));
        assert.ok(rows.length > 0, `${f}: empty`);
        for (const r of rows.filter((r) => Number(r.eta) === 0)) {
          assert.equal(Number(r.normalized), 1, `${f}: normalized accuracy at η = 0 must be exactly 1`);
          assert.equal(Number(r.nonFiniteShare), 0, `${f}: a clean model with non-finite logits`);
        }
        for (const r of rows) {
          for (const k of ["accuracy", "normalized", "nonFiniteShare"]) {
            assert.ok(Number.isFinite(Number(r[k])), `${f}: ${k} = ${r[k]} (${JSON.stringify(r)})`);
          }
        }
      }
      for (
        const f of [
          "01-average-normalized-accuracy",
          "02-bn-layer-table",
          "03-attribution",
          "04-average-normalized-accuracy",
          "05-trajectory-points",
          "06-analog-conditions",
        ]
      ) {
        const rows = readCsv(await Deno.readTextFile(join(tables, `${f}.csv`)));
        assert.ok(rows.length > 0, `${f}: empty`);
        for (const r of rows) {
          for (const [k, v] of Object.entries(r)) assert.ok(cellOk(v), `${f}: ${k} = "${v}"`);
        }
      }
      // smoke models learn something: every CIFAR-10 model clearly above chance (10%); on CIFAR-100
      // (chance 1%, 500 test images: a chance-level model scores 1% ± 0.45%) the mean over models
      const c10 = readCsv(await Deno.readTextFile(join(tables, "01-average-normalized-accuracy.csv")));
      for (const r of c10) {
        assert.ok(Number(r["clean acc. (%)"]) > 15, `01: ${r.model} at ${r["clean acc. (%)"]}% clean`);
      }
      const c100 = readCsv(await Deno.readTextFile(join(tables, "04-average-normalized-accuracy.csv")))
        .filter((r) => r["training point"] === "end of training");
      const mean100 = c100.reduce((a, r) => a + Number(r["clean acc. (%)"]), 0) / c100.length;
      assert.ok(mean100 > 2, `04: CIFAR-100 smoke models average ${mean100}% clean (chance 1%)`);
      assert.equal(code, 0);
    } finally {
      if (before === undefined) Deno.env.delete("NOISELAB_RESULTS_DIR");
      else Deno.env.set("NOISELAB_RESULTS_DIR", before);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
