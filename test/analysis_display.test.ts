/**
 * Inline charts must show everywhere: a trusted notebook (SVG), an untrusted one in the classic Jupyter
 * 6.4 UI, and `jupyter nbconvert --to html` (File > Download as > HTML), which strips inline SVG.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { bandChart, figureBundle, markdownBundle, renderSvg } from "../lib/analysis/mod.ts";

function chart() {
  const pts = [0, 0.1, 0.2].flatMap((x) =>
    ["A + BN", "A no BN"].map((s, i) => ({
      series: s,
      x,
      y: 90 - (i + 1) * 100 * x,
      lo: 80 - 100 * x,
      hi: 95,
    }))
  );
  return bandChart(pts, { xLabel: "η", yLabel: "acc (%)", title: "Chart T1", caption: "provenance here" });
}

Deno.test("figureBundle: an <img> of the SVG as text/html, the SVG, a PNG fallback (scale 1.5) and text", () => {
  const fig = chart();
  const b = figureBundle(fig);
  const svg = renderSvg(fig, { caption: false });
  assert.equal(b["image/svg+xml"], svg);
  assert.match(String(b["image/svg+xml"]), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const html = String(b["text/html"]);
  const m = /^<img alt="\[figure\] Chart T1" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"\/>$/.exec(
    html,
  );
  assert.ok(m, html.slice(0, 200));
  assert.equal(Buffer.from(m[1], "base64").toString("utf8"), svg);
  const png = Buffer.from(String(b["image/png"]), "base64");
  assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  assert.equal(png.readUInt32BE(16), Math.round(720 * 1.5), "PNG width = 1.5 x the SVG width");
  assert.equal(b["text/plain"], "[figure] Chart T1");
  // sane size: well under 200 kB for a two-series chart
  const total = Object.values(b).reduce((n, v) => n + String(v).length, 0);
  assert.ok(total < 200_000, `bundle is ${total} characters`);
});

const PY = "/usr/bin/python3";
const hasNbconvert = (() => {
  try {
    return new Deno.Command(PY, { args: ["-c", "import nbconvert"], stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "nbconvert --to html shows the chart (the <img> survives; inline SVG alone would be stripped blank)",
  ignore: !hasNbconvert,
  async fn() {
    const fig = chart();
    const dir = await Deno.makeTempDir();
    try {
      const out = (data: unknown) => ({ output_type: "display_data", data, metadata: {} });
      const nb = {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
        cells: [
          {
            cell_type: "code",
            id: "c1",
            execution_count: 1,
            metadata: {},
            source: "show",
            outputs: [out(figureBundle(fig))],
          },
          {
            cell_type: "code",
            id: "c2",
            execution_count: 2,
            metadata: {},
            source: "svg only",
            outputs: [
              out({ "image/svg+xml": renderSvg(fig, { caption: false }), "text/plain": "[figure] old" }),
            ],
          },
        ],
      };
      await Deno.writeTextFile(join(dir, "t.ipynb"), JSON.stringify(nb));
      const r = await new Deno.Command(PY, {
        args: ["-m", "nbconvert", "--to", "html", join(dir, "t.ipynb")],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(r.success, new TextDecoder().decode(r.stderr));
      const html = await Deno.readTextFile(join(dir, "t.html"));
      // the new bundle: an image of the full SVG, intact
      const m = /<img alt="\[figure\] Chart T1" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(
        html,
      );
      assert.ok(m, "no <img> of the chart in the HTML export");
      const svg = Buffer.from(m[1], "base64").toString("utf8");
      assert.ok((svg.match(/<text/g) ?? []).length > 10, "the exported image has its text");
      // the control: an SVG-only output is passed through nbconvert's cleaner and loses its drawing
      const i = html.indexOf('data-mime-type="image/svg+xml"');
      assert.ok(i > 0);
      const block = html.slice(i, html.indexOf("</div>", i));
      assert.equal((block.match(/<text|<path/g) ?? []).length, 0, "nbconvert no longer strips inline SVG?");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const SANITIZER = "/usr/lib/python3/dist-packages/notebook/static/components/sanitizer/index.js";
const hasSanitizer = (() => {
  try {
    return Deno.statSync(SANITIZER).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "classic Jupyter 6.4, untrusted notebook: its HTML sanitizer keeps the chart <img> (data: URL)",
  ignore: !hasSanitizer,
  fn() {
    // The classic UI renders an untrusted text/html output after `defaultSanitizer.sanitize(html,
    // {allowedStyles: {}})` (notebook/static/base/js/security.js); run that very bundle here.
    let mod: { defaultSanitizer: { sanitize(html: string, o: unknown): string } } | undefined;
    const g = globalThis as unknown as { define?: unknown };
    const saved = g.define;
    g.define = (f: () => typeof mod) => {
      mod = f();
    };
    try {
      (0, eval)(Deno.readTextFileSync(SANITIZER));
    } finally {
      g.define = saved;
    }
    assert.ok(mod, "sanitizer bundle did not load");
    const html = String(figureBundle(chart())["text/html"]);
    const clean = mod.defaultSanitizer.sanitize(html, { allowedStyles: {} });
    assert.equal(clean.replace(/\s*\/>$/, "/>"), html);
    // whereas inline SVG markup is reduced to its bare text
    assert.doesNotMatch(
      mod.defaultSanitizer.sanitize(renderSvg(chart()), { allowedStyles: {} }),
      /<svg|<path/,
    );
  },
});

Deno.test("markdownBundle: rendered HTML beside the Markdown (untrusted notebooks and nbconvert show HTML, not raw Markdown)", () => {
  const b = markdownBundle("### What these numbers say\n\n- **ResNet-20**: 68.0% [56.8–79.1]\n\n| a | b |\n| - | - |\n| 1 | 2 |");
  const html = String(b["text/html"]);
  assert.match(html, /<h3[^>]*>What these numbers say<\/h3>/);
  assert.match(html, /<li><strong>ResNet-20<\/strong>: 68.0% \[56.8–79.1\]<\/li>/);
  assert.match(html, /<table>/);
  assert.equal(b["text/markdown"], b["text/plain"]);
});
