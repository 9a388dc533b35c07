/**
 * Executes EVERY notebook at the `smoke` profile through the real reproduce
 * path (tools/run_notebook.py on the Deno Jupyter kernel) into a temporary
 * results folder. Trained smoke models are shared with results/models (the
 * store is keyed by config + code version, so this only skips retraining
 * identical models); sweeps, figures, tables and notebooks are fresh.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { processAlive, reproduce, type RunStatus } from "../lib/notebook/mod.ts";
import { exists } from "../lib/util/fs.ts";
import { dataDir, projectRoot } from "../lib/util/paths.ts";

type Output = { output_type: string; data?: Record<string, string | string[]> };
type Cell = { cell_type: string; outputs?: Output[] };
const str = (v: string | string[] | undefined) => Array.isArray(v) ? v.join("") : v ?? "";

const EXPECTED_FIGURES: Record<string, string[]> = {
  "01-bn-vs-no-bn": ["01-accuracy-vs-eta", "01-normalized-vs-eta"],
  "02-bn-layer-count": ["02-normalized-vs-bn-layers"],
  "03-where-bn-breaks": ["03-attribution-bars", "03-attribution-resnet8", "03-attribution-vgg11"],
  "04-cifar100": ["04-accuracy-vs-eta", "04-normalized-vs-eta"],
};

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
      const cifar100 = await exists(join(dataDir(), "cifar-100-binary")) ||
        await exists(join(dataDir(), "cifar-100-binary.tar.gz"));
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
        const svgs = outputs.filter((o) => str(o.data?.["image/svg+xml"]).startsWith("<svg xmlns="));
        const tables = outputs.filter((o) => /<table/.test(str(o.data?.["text/html"])));
        assert.ok(tables.length >= 1, `${stem}: no HTML table`);
        assert.ok(
          (await Deno.stat(join(out, `${stem}.html`))).size > 10_000,
          `${stem}: HTML export missing/small`,
        );
        if (stem === "04-cifar100" && !cifar100) {
          // no CIFAR-100 here: a clear displayed message instead of charts, and no error
          const md = outputs.map((o) => str(o.data?.["text/markdown"])).join("\n");
          assert.match(md, /CIFAR-100 is not available/);
          assert.match(md, /cifar-100-binary/);
          assert.equal(svgs.length, 0);
          continue;
        }
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
      assert.equal(code, 0);
    } finally {
      if (before === undefined) Deno.env.delete("NOISELAB_RESULTS_DIR");
      else Deno.env.set("NOISELAB_RESULTS_DIR", before);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
