/**
 * Figure export to `results/figures/<name>.{svg,png,pdf}`.
 * PNG: `@resvg/resvg-js` (prebuilt binary from npm) with the DejaVu fonts loaded
 * explicitly; PDF: `rsvg-convert -f pdf` (Debian `librsvg2-bin`).
 * @module
 */
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { NoiselabError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { resultsDir } from "../util/paths.ts";
import type { DomElement } from "./dom.ts";
import { type ChartFigure, renderSvg } from "./figure.ts";
import { FONT_FAMILY } from "./style.ts";

/** Where the DejaVu fonts live (Debian `fonts-dejavu-core`/`-extra`). */
const FONT_DIRS = ["/usr/share/fonts/truetype/dejavu"];

/** Export formats. */
export type FigureFormat = "svg" | "png" | "pdf";

/** Options of {@link exportFigure}. */
export interface ExportOptions {
  /** Output folder (default `results/figures`, i.e. `resultsDir()/figures`). */
  dir?: string;
  /** Formats to write (default all three). */
  formats?: FigureFormat[];
  /** Caption (provenance) drawn under the plot; overrides the figure's own. */
  caption?: string;
  /** PNG scale factor (default 2: crisp in papers and slides). */
  pngScale?: number;
}

/** Paths written by {@link exportFigure}. */
export type ExportedFigure = Partial<Record<FigureFormat, string>>;

function fontFiles(): string[] {
  const out: string[] = [];
  for (const d of FONT_DIRS) {
    try {
      for (const e of Deno.readDirSync(d)) if (/^DejaVuSans.*\.ttf$/.test(e.name)) out.push(join(d, e.name));
    } catch { /* folder absent: resvg falls back to system fonts */ }
  }
  return out;
}

/** Rasterise a standalone SVG document to PNG bytes (DejaVu Sans, white background). */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const files = fontFiles();
  const width = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)?.[1] ?? 720);
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "width", value: Math.round(width * scale) },
    font: { fontFiles: files, loadSystemFonts: files.length === 0, defaultFontFamily: FONT_FAMILY },
  });
  return new Uint8Array(resvg.render().asPng());
}

let rsvgChecked: boolean | undefined;
async function hasRsvgConvert(): Promise<boolean> {
  if (rsvgChecked !== undefined) return rsvgChecked;
  try {
    const out = await new Deno.Command("rsvg-convert", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    rsvgChecked = out.success;
  } catch {
    rsvgChecked = false;
  }
  return rsvgChecked;
}

/** Convert a standalone SVG file to PDF with `rsvg-convert` (vector output). */
export async function svgFileToPdf(svgPath: string, pdfPath: string): Promise<void> {
  const tmp = `${pdfPath}.tmp-${Deno.pid}`;
  const out = await new Deno.Command("rsvg-convert", {
    args: ["-f", "pdf", "-o", tmp, svgPath],
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new NoiselabError(
      `rsvg-convert failed on ${svgPath}: ${new TextDecoder().decode(out.stderr).trim()}`,
      svgPath,
    );
  }
  await Deno.rename(tmp, pdfPath);
}

/**
 * Write a figure as `<dir>/<name>.svg|png|pdf` (default dir `results/figures`).
 * Accepts a {@link ChartFigure}, a Plot result (`<svg>` or `<figure>`) or SVG markup.
 * Every file is written atomically; bad names and a missing `rsvg-convert` are
 * reported (NoiselabError) before anything is written.
 */
export async function exportFigure(
  figure: ChartFigure | DomElement | string,
  name: string,
  opts: ExportOptions = {},
): Promise<ExportedFigure> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new NoiselabError(
      `exportFigure: bad figure name "${name}" (use letters, digits, '.', '_', '-')`,
      "name",
    );
  }
  const formats = opts.formats ?? ["svg", "png", "pdf"];
  for (const f of formats) {
    if (!["svg", "png", "pdf"].includes(f)) {
      throw new NoiselabError(`exportFigure: unknown format "${f}"`, "formats");
    }
  }
  if (formats.includes("pdf") && !(await hasRsvgConvert())) {
    throw new NoiselabError(
      "exportFigure: PDF export needs rsvg-convert (Debian package librsvg2-bin; tools/setup.sh installs it)",
      "rsvg-convert",
    );
  }
  const dir = opts.dir ?? join(resultsDir(), "figures");
  let svg: string;
  if (
    opts.caption !== undefined && typeof figure === "object" &&
    (figure as ChartFigure).kind === "noiselab-figure"
  ) {
    svg = renderSvg({ ...(figure as ChartFigure), caption: opts.caption });
  } else svg = renderSvg(figure);
  const out: ExportedFigure = {};
  const svgPath = join(dir, `${name}.svg`);
  // The SVG is always written (the PDF is converted from it).
  await writeFileAtomic(svgPath, svg);
  if (formats.includes("svg")) out.svg = svgPath;
  if (formats.includes("png")) {
    out.png = join(dir, `${name}.png`);
    await writeFileAtomic(out.png, svgToPng(svg, opts.pngScale ?? 2));
  }
  if (formats.includes("pdf")) {
    out.pdf = join(dir, `${name}.pdf`);
    await svgFileToPdf(svgPath, out.pdf);
  }
  if (!formats.includes("svg")) await Deno.remove(svgPath).catch(() => {});
  return out;
}
