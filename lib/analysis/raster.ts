/**
 * SVG → PNG rasterisation with `@resvg/resvg-js` (prebuilt binary from npm) and the DejaVu fonts loaded
 * explicitly, shared by figure export and inline display (kept apart from export.ts so display.ts does
 * not import the exporter).
 * @module
 */
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { FONT_FAMILY } from "./style.ts";

/** Where the DejaVu fonts live (Debian `fonts-dejavu-core`/`-extra`). */
const FONT_DIRS = ["/usr/share/fonts/truetype/dejavu"];

let fonts: string[] | undefined;
function fontFiles(): string[] {
  if (fonts) return fonts;
  const out: string[] = [];
  for (const d of FONT_DIRS) {
    try {
      for (const e of Deno.readDirSync(d)) if (/^DejaVuSans.*\.ttf$/.test(e.name)) out.push(join(d, e.name));
    } catch { /* folder absent: resvg falls back to system fonts */ }
  }
  return (fonts = out.sort());
}

/**
 * Rasterise a standalone SVG document to PNG bytes (DejaVu Sans, white background). `scale` multiplies
 * the SVG's `width` (CSS px; default 2: crisp in papers and slides).
 */
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
