import assert from "node:assert/strict";
import { join } from "node:path";
import {
  accuracyVsEtaChart,
  barChart,
  bnCountChart,
  exportFigure,
  exportTable,
  meanInterval,
  provenanceLine,
  renderSvg,
  summarizeByEta,
  svgToPng,
  table,
  toFigure,
} from "../lib/analysis/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import * as Plot from "@observablehq/plot";
import { plotDocument } from "../lib/analysis/dom.ts";
import { Resvg } from "@resvg/resvg-js";

function rows() {
  const out = [];
  for (const [s, k] of [["A + BN", 3], ["A no BN", 0.5]] as const) {
    for (const eta of [0, 0.2, 0.4]) {
      for (let d = 0; d < 4; d++) {
        const acc = 0.9 * Math.exp(-k * eta) + 0.01 * d;
        out.push({
          modelId: s,
          eta,
          draw: d,
          accuracy: acc,
          cleanAccuracy: 0.9,
          normalizedAccuracy: acc / 0.9,
        });
      }
    }
  }
  return out;
}

Deno.test("meanInterval: t interval against a hand computation; one value has no interval", () => {
  const r = meanInterval([1, 2, 3, 4]);
  assert.equal(r.mean, 2.5);
  const sd = Math.sqrt(5 / 3);
  assert.ok(Math.abs(r.sd - sd) < 1e-12);
  assert.ok(Math.abs(r.hi - (2.5 + 3.182446 * sd / 2)) < 1e-6);
  // n = 1: the mean is the value, the interval is undefined (NaN bounds), never a zero-width band
  const one = meanInterval([7]);
  assert.equal(one.mean, 7);
  assert.equal(one.n, 1);
  for (const k of ["sd", "lo", "hi", "halfWidth"] as const) assert.ok(Number.isNaN(one[k]), k);
});

Deno.test("summarizeByEta groups by series and eta", () => {
  const s = summarizeByEta(rows(), (r) => r.modelId);
  assert.equal(s.length, 6);
  assert.deepEqual(s.map((x) => x.series), ["A + BN", "A + BN", "A + BN", "A no BN", "A no BN", "A no BN"]);
  const first = s[0];
  assert.equal(first.n, 4);
  assert.ok(Math.abs(first.accuracy - (0.9 + 0.015)) < 1e-12);
  assert.ok(first.accuracyLo < first.accuracy && first.accuracyHi > first.accuracy);
  assert.equal(first.singleModel, true);
  assert.ok(s.every((x) => x.accuracyLo >= 0 && x.accuracyHi <= 1), "accuracy bands stay within [0, 1]");
});

Deno.test("exportFigure writes standalone SVG (xmlns, legend, title), PNG and PDF", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const prov = provenanceLine({
      dataset: "CIFAR-10 test copy",
      models: ["m1"],
      etas: [0, 0.2, 0.4],
      draws: 4,
    });
    const fig = accuracyVsEtaChart(summarizeByEta(rows(), (r) => r.modelId), { chance: 0.1, caption: prov });
    const out = await exportFigure(fig, "acc_test", { dir });
    const svg = await Deno.readTextFile(out.svg!);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /DejaVu Sans/);
    assert.match(svg, /A \+ BN/); // legend entry
    assert.match(svg, /Test accuracy under weight noise/);
    assert.match(svg, /CIFAR-10 test copy/); // caption
    assert.doesNotMatch(svg, /<figure|<div|<span/); // no HTML left in the SVG
    const png = await Deno.readFile(out.png!);
    assert.deepEqual([...png.slice(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.length > 20_000, `PNG too small (${png.length} bytes): nothing drawn?`);
    const pdf = await Deno.readFile(out.pdf!);
    assert.equal(new TextDecoder().decode(pdf.slice(0, 5)), "%PDF-");
    assert.ok(pdf.length > 5_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the rendered raster really shows the chart: pixels in the first series colour", () => {
  const fig = bnCountChart([0, 2, 4].flatMap((b) =>
    [0.1].map((eta) => ({
      bnLayers: b,
      eta,
      normalized: 1 - b / 8,
      normalizedLo: 0.9 - b / 8,
      normalizedHi: 1.05 - b / 8,
    }))
  ));
  const r = new Resvg(renderSvg(fig), { background: "white" }).render();
  const px = r.pixels;
  let blue = 0, dark = 0;
  for (let i = 0; i < px.length; i += 4) {
    // first palette colour #4269d0 (66,105,208), the line and dots
    if (Math.abs(px[i] - 66) < 12 && Math.abs(px[i + 1] - 105) < 12 && Math.abs(px[i + 2] - 208) < 12) blue++;
    if (px[i] < 60 && px[i + 1] < 60 && px[i + 2] < 60) dark++; // text and axes
  }
  assert.ok(blue > 200, `only ${blue} pixels of the series colour`);
  assert.ok(dark > 500, `only ${dark} dark (text/axis) pixels: fonts not rendered?`);
  assert.ok(svgToPng(renderSvg(fig), 1).length > 10_000);
});

Deno.test("a Plot <figure> (title + legend) is converted into one SVG", () => {
  const el = Plot.plot({
    document: plotDocument() as never,
    title: "T1",
    color: { legend: true },
    marks: [Plot.dot([{ x: 1, y: 2, c: "u" }, { x: 2, y: 1, c: "v" }], { x: "x", y: "y", fill: "c" })],
  });
  assert.equal((el as unknown as { tagName: string }).tagName.toLowerCase(), "figure");
  const f = toFigure(el as never);
  assert.equal(f.title, "T1");
  assert.deepEqual(f.legend.map((l) => l.label), ["u", "v"]);
  const svg = renderSvg(f);
  assert.match(svg, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(svg, /<figure|<h2/);
});

Deno.test("barChart and bad export names", async () => {
  const fig = barChart([{ label: "x", value: 50, lo: 40, hi: 60, group: "g1" }, {
    label: "x",
    value: 20,
    group: "g2",
  }], {
    xLabel: "value (%)",
  });
  assert.match(renderSvg(fig), /g1/);
  await assert.rejects(() => exportFigure(fig, "../evil"), NoiselabError);
  await assert.rejects(() => exportTable([{ a: 1 }], "a/b"), NoiselabError);
});

Deno.test("table: rounding, integer columns, HTML display and CSV export", async () => {
  const df = table([{ model: "r", bn: 3, acc: 91.23456 }, { model: "v", bn: 0, acc: null }]);
  const bundle = (df as unknown as Record<symbol, () => Record<string, string>>)
    [Symbol.for("Jupyter.display")]();
  assert.match(bundle["text/html"], /<table/);
  assert.match(bundle["text/html"], /91\.23/);
  const dir = await Deno.makeTempDir();
  try {
    const path = await exportTable(df, "t1", { dir });
    assert.equal(path, join(dir, "t1.csv"));
    assert.equal(await Deno.readTextFile(path), "model,bn,acc\nr,3,91.23\nv,0,\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
