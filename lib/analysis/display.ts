/**
 * Inline display in the Deno Jupyter kernel (`Deno.jupyter.display`), with a
 * plain-text fallback on stdout when not running inside Jupyter (CLI, tests).
 * Explicit `await display(...)` is used rather than a cell's last expression:
 * Deno 2.9's kernel can publish an execute_result after "idle" and stock
 * runners then drop it, whereas display_data is never lost.
 * @module
 */
import { escapeXml } from "./dom.ts";
import type { ExportedFigure } from "./export.ts";
import { type ChartFigure, renderSvg } from "./figure.ts";
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
export async function displayBundle(bundle: MimeBundle, opts: DisplayOptions = {}): Promise<void> {
  const j = jupyter();
  if (j) {
    await j.display(bundle, { raw: true, ...opts });
    return;
  }
  if (!opts.update && typeof bundle["text/plain"] === "string") console.log(bundle["text/plain"]);
}

/** Display Markdown (rendered in Jupyter; printed as-is elsewhere). */
export function showMarkdown(markdown: string): Promise<void> {
  return displayBundle({ "text/markdown": markdown, "text/plain": markdown });
}

function provenanceHtml(text: string, files?: ExportedFigure): string {
  const f = files
    ? Object.values(files).filter(Boolean).map((p) => String(p).replace(/^.*\/results\//, "results/"))
    : [];
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
}

/** Display a chart inline (`image/svg+xml`) with its provenance line under it. */
export async function showFigure(figure: ChartFigure, opts: ShowFigureOptions = {}): Promise<void> {
  const svg = renderSvg(figure, { caption: false });
  await displayBundle({ "image/svg+xml": svg, "text/plain": `[figure] ${figure.title ?? ""}` });
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
