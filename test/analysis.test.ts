import assert from "node:assert/strict";
import { join } from "node:path";
import {
  accuracyVsEtaChart,
  bandChart,
  barChart,
  bnCountChart,
  exportFigure,
  exportTable,
  meanInterval,
  provenanceLine,
  renderSvg,
  seriesStyles,
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

/** Text chunks of a PNG (tEXt: Latin-1; iTXt: UTF-8, uncompressed), keyword -> text. */
function pngText(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let i = 8; i + 8 <= png.length;) {
    const n = view.getUint32(i);
    const type = new TextDecoder("latin1").decode(png.slice(i + 4, i + 8));
    const data = png.slice(i + 8, i + 8 + n);
    const z = data.indexOf(0);
    if (type === "tEXt") {
      out[new TextDecoder("latin1").decode(data.slice(0, z))] = new TextDecoder("latin1").decode(
        data.slice(z + 1),
      );
    }
    if (type === "iTXt" && data[z + 1] === 0) {
      let p = z + 3;
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      out[new TextDecoder().decode(data.slice(0, z))] = new TextDecoder().decode(data.slice(p));
    }
    i += 12 + n;
  }
  return out;
}

/** The text drawn in an SVG: the content of its <text> elements (not <title>/<desc>/<metadata>). */
function drawnText(svg: string): string {
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).join("\n");
}

Deno.test("exportFigure: paper variant draws the plot alone, keeps title/subtitle/provenance as metadata; captioned variant; side file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const prov = provenanceLine({
      dataset: "CIFAR-10 test copy",
      models: ["m1"],
      etas: [0, 0.2, 0.4],
      draws: 4,
    });
    const fig = accuracyVsEtaChart(summarizeByEta(rows(), (r) => r.modelId), {
      chance: 0.1,
      caption: prov,
      subtitle: "two models, η on the weights",
    });
    const out = await exportFigure(fig, "acc_test", { dir });
    assert.deepEqual(Object.keys(out).sort(), ["captioned", "json", "pdf", "png", "svg"]);
    // paper SVG: standalone, legend + plot, no title/subtitle/footer drawn; metadata inline
    const svg = await Deno.readTextFile(out.svg!);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /DejaVu Sans/);
    assert.match(drawnText(svg), /A \+ BN/); // legend entry
    assert.doesNotMatch(drawnText(svg), /Test accuracy under weight noise/);
    assert.doesNotMatch(drawnText(svg), /two models/);
    assert.doesNotMatch(drawnText(svg), /CIFAR-10 test copy/);
    assert.match(svg, /<title>Test accuracy under weight noise<\/title>/);
    assert.match(svg, /<desc>two models, η on the weights\nProvenance: [^<]*CIFAR-10 test copy/);
    assert.match(svg, /<metadata><rdf:RDF[^]*<dc:source>[^<]*CIFAR-10 test copy[^<]*<\/dc:source>/);
    assert.match(svg, /<dc:subject>A \+ BN; A no BN<\/dc:subject>/);
    assert.doesNotMatch(svg, /<figure|<div|<span/); // no HTML left in the SVG
    // paper PNG: text chunks
    const png = await Deno.readFile(out.png!);
    assert.deepEqual([...png.slice(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.length > 20_000, `PNG too small (${png.length} bytes): nothing drawn?`);
    const text = pngText(png);
    assert.equal(text.Title, "Test accuracy under weight noise");
    assert.equal(text.Description, "two models, η on the weights");
    assert.match(text.Comment, /^Provenance: .*CIFAR-10 test copy/);
    // paper PDF: Info dictionary (read back with exiftool)
    const pdf = await Deno.readFile(out.pdf!);
    assert.equal(new TextDecoder().decode(pdf.slice(0, 5)), "%PDF-");
    assert.ok(pdf.length > 5_000);
    const info = JSON.parse(
      new TextDecoder().decode(
        (await new Deno.Command("exiftool", { args: ["-j", "-PDF:all", out.pdf!], stdout: "piped" }).output())
          .stdout,
      ),
    )[0];
    assert.equal(info.Title, "Test accuracy under weight noise");
    assert.match(info.Subject, /^two models, η on the weights\. Provenance: .*CIFAR-10 test copy/);
    // (exiftool reads PDF Keywords back as a list, split at the commas)
    assert.deepEqual([info.Keywords].flat(), ["noiselab", "acc_test", "A + BN", "A no BN"]);
    // the captioned variant draws title, subtitle and footer: taller than the paper one
    const cap = await Deno.readTextFile(out.captioned!.svg!);
    assert.match(drawnText(cap), /Test accuracy under weight noise/);
    assert.match(drawnText(cap), /two models/);
    assert.match(drawnText(cap), /CIFAR-10 test copy/);
    const h = (s: string) => Number(/height="(\d+)"/.exec(s)![1]);
    assert.ok(h(cap) > h(svg) + 40, `captioned ${h(cap)} px vs paper ${h(svg)} px`);
    const capPng = await Deno.readFile(out.captioned!.png!);
    assert.equal(pngText(capPng).Title, "Test accuracy under weight noise");
    // side file
    const side = JSON.parse(await Deno.readTextFile(out.json!));
    assert.equal(out.json, join(dir, "acc_test.json"));
    assert.equal(side.figure, "acc_test");
    assert.equal(side.title, "Test accuracy under weight noise");
    assert.equal(side.subtitle, "two models, η on the weights");
    assert.equal(side.caption, prov);
    assert.equal(side.provenance, prov);
    assert.deepEqual(side.series, ["A + BN", "A no BN"]);
    assert.deepEqual(side.files, {
      svg: "acc_test.svg",
      png: "acc_test.png",
      pdf: "acc_test.pdf",
      captioned: { svg: "acc_test.captioned.svg", png: "acc_test.captioned.png" },
    });
    // nothing temporary left behind
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "acc_test.captioned.png",
      "acc_test.captioned.svg",
      "acc_test.json",
      "acc_test.pdf",
      "acc_test.png",
      "acc_test.svg",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportFigure / exportTable default to the scratch area; results/<kind> only when publishing", async () => {
  const root = await Deno.makeTempDir();
  const saved = { dir: Deno.env.get("NOISELAB_RESULTS_DIR"), pub: Deno.env.get("NOISELAB_PUBLISH") };
  const restore = (k: string, v: string | undefined) =>
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  try {
    Deno.env.set("NOISELAB_RESULTS_DIR", root);
    Deno.env.delete("NOISELAB_PUBLISH");
    const fig = bnCountChart([{
      bnLayers: 0,
      eta: 0.1,
      normalized: 0.9,
      normalizedLo: 0.8,
      normalizedHi: 1,
    }]);
    const a = await exportFigure(fig, "d1", { formats: ["svg"] });
    assert.equal(a.svg, join(root, "scratch", "figures", "d1.svg"));
    assert.equal(await exportTable([{ a: 1 }], "t1"), join(root, "scratch", "tables", "t1.csv"));
    Deno.env.set("NOISELAB_PUBLISH", "1");
    const b = await exportFigure(fig, "d1", { formats: ["svg"] });
    assert.equal(b.svg, join(root, "figures", "d1.svg"));
    assert.equal(await exportTable([{ a: 1 }], "t1"), join(root, "tables", "t1.csv"));
  } finally {
    restore("NOISELAB_RESULTS_DIR", saved.dir);
    restore("NOISELAB_PUBLISH", saved.pub);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("six series, two pairs with identical data: six distinct (symbol, dash) pairs in plot and legend", () => {
  const names = ["kernels", "kernels twin", "+ affine", "+ statistics", "all", "folded"];
  const curve = [0, 0, 1, 1, 2, 3]; // series 0 = 1 and 2 = 3 coincide exactly
  const points = names.flatMap((s, i) =>
    [0, 0.1, 0.2].map((x) => {
      const y = 90 - (curve[i] + 1) * 50 * x;
      return { series: s, x, y, lo: y - 5, hi: y + 5 };
    })
  );
  const fig = bandChart(points, { xLabel: "η", yLabel: "acc", yDomain: [0, 100], legendTitle: "noise on" });
  const svg = renderSvg(fig);
  const plotCombos = names.map((s) => {
    const esc = s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const line = new RegExp(`<g[^>]*aria-description="${esc}"[^>]*aria-label="line"[^>]*>(<g[^>]*>)?<path`)
      .exec(svg);
    assert.ok(line, `no line drawn for ${s}`);
    const dash = /stroke-dasharray="([^"]*)"/.exec(line[0])?.[1] ?? "";
    const dot = new RegExp(
      `<g[^>]*aria-description="${esc}"[^>]*aria-label="dot"[^>]*>(?:<g[^>]*>)?((?:<path[^>]*>){3})`,
    )
      .exec(svg);
    assert.ok(dot, `no markers drawn for ${s}`);
    const d = /d="([^"]*)"/.exec(dot[1])![1];
    return `${d}|${dash}`;
  });
  assert.equal(new Set(plotCombos).size, 6, plotCombos.join("\n"));
  // the legend shows the same six samples (symbol path + dash), one per series
  const legend = [...svg.matchAll(/<g class="legend-item" data-series="([^"]*)">(.*?)<\/g>/g)];
  assert.deepEqual(legend.map((m) => m[1].replace(/&amp;/g, "&")), names);
  const legendCombos = legend.map((m) =>
    `${/stroke-dasharray="([^"]*)"/.exec(m[2])?.[1] ?? ""}|${/<path d="([^"]*)"/.exec(m[2])![1]}`
  );
  assert.equal(new Set(legendCombos).size, 6);
  assert.deepEqual(legendCombos.map((c) => c.split("|")[0]), plotCombos.map((c) => c.split("|")[1]));
  assert.deepEqual(
    fig.legend.map((l) => [l.symbol, l.dash]),
    seriesStyles(names).map((s) => [s.symbol, s.dash]),
  );
});

Deno.test("accuracy bands are clamped to [0, 100]% and drawn inside the plot frame", () => {
  const s = summarizeByEta(rows(), (r) => r.modelId).map((x) => ({
    ...x,
    accuracyLo: -0.3,
    accuracyHi: 1.4,
  }));
  const fig = accuracyVsEtaChart(s);
  const svg = fig.plotSvg;
  const areas = [...svg.matchAll(/<g[^>]*aria-label="area"[^>]*>(?:<g[^>]*>)?((?:<path[^>]*>)+)/g)];
  assert.equal(areas.length, 2);
  assert.match(svg, /clip-path="url\(#plot-clip-\d+\)"[^>]*aria-label="area"/);
  const ys = areas.flatMap((m) =>
    [...m[1].matchAll(/d="([^"]*)"/g)].flatMap((d) =>
      [...d[1].matchAll(/[ML]([\d.]+),([\d.]+)/g)].map((p) => Number(p[2]))
    )
  );
  // y(100%) and y(0%) in px: the frame is [marginTop 20, height 400 - marginBottom 45] with a 6 px inset
  const top = 20 + 6, bottom = 400 - 45 - 6;
  assert.ok(ys.length > 0);
  assert.ok(
    Math.min(...ys) >= top - 0.01 && Math.max(...ys) <= bottom + 0.01,
    `${Math.min(...ys)}..${Math.max(...ys)}`,
  );
  assert.ok(Math.abs(Math.min(...ys) - top) < 0.01, "the band reaches 100%");
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
