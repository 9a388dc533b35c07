/**
 * Inline display in the Deno Jupyter kernel (`Deno.jupyter.display`), with a
 * plain-text fallback on stdout when not running inside Jupyter (CLI, tests).
 *
 * Charts ({@link showFigure}) go out as one MIME bundle that every viewer can show:
 * `text/html` = `<img src="data:image/svg+xml;base64,…">` (first in the display order of the classic
 * notebook, JupyterLab and nbconvert: a trusted notebook shows the SVG; an untrusted one too, since the
 * classic UI's sanitizer keeps `<img>` with a data: URL; `jupyter nbconvert --to html`, i.e. File >
 * Download as > HTML, copies text/html unsanitized, whereas it passes inline `image/svg+xml` through
 * its HTML cleaner, which strips `<text>`, `<path>`, … and leaves a blank box), `image/svg+xml` (the
 * vector original), `image/png` (for viewers that show neither, e.g. untrusted outputs that drop HTML)
 * and `text/plain`.
 * Explicit `await display(...)` is used rather than a cell's last expression:
 * Deno 2.9's kernel can publish an execute_result after "idle" and stock
 * runners then drop it, whereas display_data is never lost.
 * @module
 */
import { tracked } from "../util/pending.ts";
import { assertFreshOutput, assertParametersOk } from "../util/session.ts";
import { Buffer } from "node:buffer";
import { marked } from "marked";
import { escapeXml } from "./dom.ts";
import type { ExportedFigure } from "./export.ts";
import { type ChartFigure, renderSvg } from "./figure.ts";
import { svgToPng } from "./raster.ts";
import type { DataFrame } from "./table.ts";

/** A Jupyter MIME bundle. */
export type MimeBundle = Record<string, string | object | undefined>;

/** Options passed to `Deno.jupyter.display`. */
export interface DisplayOptions {
  display_id?: string;
  update?: boolean;
}

type JupyterNs = { display(obj: unknown, opts?: DisplayOptions & { raw?: boolean }): Promise<void> };

/** The `Deno.jupyter` namespace, or undefined outside `deno jupyter` (where touching it throws). */
export function jupyter(): JupyterNs | undefined {
  try {
    const j = (Deno as unknown as { jupyter?: JupyterNs }).jupyter;
    return typeof j?.display === "function" ? j : undefined;
  } catch {
    return undefined;
  }
}

/** True inside the Deno Jupyter kernel. */
export function inJupyter(): boolean {
  return jupyter() !== undefined;
}

/** Display a raw MIME bundle (in Jupyter) or print its text/plain (elsewhere). */
export function displayBundle(bundle: MimeBundle, opts: DisplayOptions = {}): Promise<void> {
  assertParametersOk("display");
  return tracked("display", displayBundleImpl(bundle, opts));
}

async function displayBundleImpl(bundle: MimeBundle, opts: DisplayOptions = {}): Promise<void> {
  const j = jupyter();
  if (j) {
    await j.display(bundle, { raw: true, ...opts });
    return;
  }
  if (!opts.update && typeof bundle["text/plain"] === "string") console.log(bundle["text/plain"]);
}

/**
 * Display Markdown (rendered in Jupyter; printed as-is elsewhere). The bundle carries an HTML rendering
 * (the `marked` library, GitHub-flavoured Markdown) beside the Markdown, because the classic UI shows an
 * untrusted notebook's `text/markdown` as raw text and nbconvert/GitHub prefer HTML.
 */
export function showMarkdown(markdown: string): Promise<void> {
  return displayBundle(markdownBundle(markdown));
}

/** The MIME bundle {@link showMarkdown} displays: HTML (rendered by `marked`), Markdown and plain text. */
export function markdownBundle(markdown: string): MimeBundle {
  const html = marked.parse(markdown, { async: false, gfm: true }) as string;
  return {
    "text/html": `<div class="noiselab-markdown">${html}</div>`,
    "text/markdown": markdown,
    "text/plain": markdown,
  };
}

function provenanceHtml(text: string, files?: ExportedFigure): string {
  const paths: string[] = [];
  for (const v of Object.values(files ?? {})) {
    if (typeof v === "string") paths.push(v);
    else if (v && typeof v === "object") {
      for (const p of Object.values(v)) if (typeof p === "string") paths.push(p);
    }
  }
  const f = paths.map((p) => p.replace(/^.*\/results\//, "results/"));
  return `<div style="font-family: 'DejaVu Sans', sans-serif; font-size: 11px; color: #555; margin: 2px 0 12px 0;">` +
    `<b>Provenance:</b> ${escapeXml(text)}` +
    (f.length ? `<br><b>Files:</b> ${escapeXml(f.join(", "))}` : "") + `</div>`;
}

/** Options of {@link showFigure}. */
export interface ShowFigureOptions {
  /** Provenance line shown under the chart (default: the figure's caption). */
  provenance?: string;
  /** Paths of the exported files, listed under the provenance. */
  files?: ExportedFigure;
  /** Scale of the inline PNG fallback relative to the SVG's CSS size (default 1.5). */
  pngScale?: number;
}

/**
 * The MIME bundle of a chart (see the module doc): `text/html` (an `<img>` of the SVG as a data URL),
 * `image/svg+xml`, `image/png` (base64, rendered at `pngScale`, default 1.5) and `text/plain`
 * (`[figure] <title>`). Title, subtitle and legend are drawn; the provenance goes under it as HTML.
 */
export function figureBundle(figure: ChartFigure, opts: { pngScale?: number } = {}): MimeBundle {
  const svg = renderSvg(figure, { caption: false });
  const png = svgToPng(svg, opts.pngScale ?? 1.5);
  const alt = `[figure] ${figure.title ?? ""}`.trim();
  return {
    "text/html": `<img alt="${escapeXml(alt)}" src="data:image/svg+xml;base64,${
      Buffer.from(svg, "utf8").toString("base64")
    }"/>`,
    "image/svg+xml": svg,
    "image/png": Buffer.from(png).toString("base64"),
    "text/plain": alt,
  };
}

/**
 * Display a chart inline ({@link figureBundle}: an SVG image with PNG and text fallbacks, so trusted and
 * untrusted notebooks, HTML exports and other viewers all show it) with its provenance line under it.
 */
export async function showFigure(figure: ChartFigure, opts: ShowFigureOptions = {}): Promise<void> {
  assertFreshOutput("showFigure", figure);
  await displayBundle(figureBundle(figure, { pngScale: opts.pngScale }));
  const prov = opts.provenance ?? figure.caption;
  if (prov) {
    await displayBundle({
      "text/html": provenanceHtml(prov, opts.files),
      "text/plain": `Provenance: ${prov}`,
    });
  }
}

/** Display a DataFrame as an HTML table, optionally with a caption above and provenance under it. */
export async function showTable(
  df: DataFrame,
  opts: { caption?: string; provenance?: string } = {},
): Promise<void> {
  assertFreshOutput("showTable", df);
  const bundle =
    (df as unknown as Record<symbol, () => MimeBundle>)[Symbol.for("Jupyter.display")]?.call(df) ?? {};
  const html = String(bundle["text/html"] ?? "");
  const cap = opts.caption
    ? `<div style="font-weight: bold; margin: 8px 0 4px 0;">${escapeXml(opts.caption)}</div>`
    : "";
  await displayBundle({
    "text/html": cap + html + (opts.provenance ? provenanceHtml(opts.provenance) : ""),
    "text/plain": (opts.caption ? opts.caption + "\n" : "") + df.toString(),
  });
}
