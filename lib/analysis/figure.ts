/**
 * Figures: Observable Plot charts turned into ONE standalone SVG (title,
 * subtitle, legend, plot, caption), exported to SVG/PNG/PDF.
 *
 * Why the composition is hand-written: a Plot with a title or legend returns an
 * HTML `<figure>` (headings + HTML swatches + `<svg>`), which neither resvg nor
 * rsvg-convert can render, and which an `image/svg+xml` notebook output cannot
 * carry. We ask Plot for the bare `<svg>` and draw title/legend/caption as SVG
 * text around it ourselves (a few lines; no kept library does this for Plot).
 * @module
 */
import * as Plot from "@observablehq/plot";
import { type DomElement, escapeXml, plotDocument } from "./dom.ts";
import {
  DEFAULT_HEIGHT,
  DEFAULT_WIDTH,
  FONT_FAMILY,
  FONT_SIZE,
  MUTED,
  PALETTE,
  type SeriesSymbol,
  symbolPath,
} from "./style.ts";

/**
 * One legend entry. With `symbol` and/or `dash` it is drawn as a short line sample with the series' dash
 * pattern and marker (as in the plot); without, as a colour swatch.
 */
export interface LegendItem {
  label: string;
  color: string;
  /** Marker symbol of the series (multi-series line charts). */
  symbol?: SeriesSymbol;
  /** SVG dash pattern of the series' line (`""` = solid line; undefined = no line sample). */
  dash?: string;
}

/** A chart ready to display or export: the bare plot SVG plus its furniture. */
export interface ChartFigure {
  /** Marker so `toFigure` recognises it. */
  readonly kind: "noiselab-figure";
  /** The plot's own `<svg>` markup (axes + marks), without title/legend. */
  plotSvg: string;
  /** Size of the plot area in px. */
  plotWidth: number;
  plotHeight: number;
  title?: string;
  subtitle?: string;
  legendTitle?: string;
  legend: LegendItem[];
  /** Provenance/caption text; drawn under the plot in exported files. */
  caption?: string;
}

/** Options of {@link plotFigure}. */
export interface PlotFigureOptions {
  title?: string;
  subtitle?: string;
  /** Caption (usually the provenance line) drawn under the plot in exported files. */
  caption?: string;
  /** Show a legend for the ordinal colour scale (default: true when there is one). */
  legend?: boolean;
  /** Text in front of the legend entries, e.g. "model". */
  legendTitle?: string;
  /**
   * The legend entries, when the chart styles its series itself (per-series marks with constant
   * colour, symbol and dash: {@link seriesStyles}); replaces the legend read from Plot's colour scale.
   */
  legendItems?: LegendItem[];
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Rough text width in px for DejaVu Sans (average advance ≈ 0.6 em; used only for layout). */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

function wrap(text: string, maxChars: number): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let cur = "";
  for (const w of words) {
    if (cur && (cur + " " + w).length > maxChars) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? cur + " " + w : w;
  }
  if (cur) lines.push(cur);
  return lines;
}

/** Normalise Plot's `<svg>`: our font, white background, explicit size. */
function normalisePlotSvg(svg: DomElement): { markup: string; width: number; height: number } {
  const width = Number(svg.getAttribute("width")) || DEFAULT_WIDTH;
  const height = Number(svg.getAttribute("height")) || DEFAULT_HEIGHT;
  svg.setAttribute("font-family", FONT_FAMILY);
  svg.setAttribute("font-size", String(FONT_SIZE));
  svg.setAttribute("xmlns", SVG_NS);
  svg.removeAttribute("style");
  return { markup: svg.outerHTML, width, height };
}

/**
 * Run `Plot.plot` on the server-side DOM and wrap the result as a {@link ChartFigure}.
 * `options.title/subtitle/caption` and the colour legend are moved out of Plot
 * (so Plot returns a bare `<svg>`) and drawn by {@link renderSvg}.
 */
export function plotFigure(options: Plot.PlotOptions, fig: PlotFigureOptions = {}): ChartFigure {
  const { title, subtitle, caption, ...rest } = options as Plot.PlotOptions & Record<string, unknown>;
  const color = { ...(rest.color as Record<string, unknown> | undefined ?? {}), legend: false };
  const el = Plot.plot({
    width: DEFAULT_WIDTH,
    height: DEFAULT_HEIGHT,
    ...rest,
    color,
    style: { fontFamily: FONT_FAMILY, fontSize: `${FONT_SIZE}px`, background: "white" },
    document: plotDocument(),
  } as Plot.PlotOptions) as unknown as DomElement & Plot.Plot;
  // Without title/legend/caption Plot returns a bare <svg>; anything else goes through toFigure.
  if (el.tagName.toLowerCase() !== "svg") {
    return { ...toFigure(el), title: fig.title, subtitle: fig.subtitle, caption: fig.caption };
  }
  const { markup, width, height } = normalisePlotSvg(el);
  const legend: LegendItem[] = fig.legend !== false && fig.legendItems ? [...fig.legendItems] : [];
  const scale = el.scale("color");
  if (
    fig.legend !== false && !fig.legendItems && scale &&
    (scale.type === "ordinal" || scale.type === "categorical")
  ) {
    const domain = (scale.domain ?? []) as unknown[];
    const range = (scale.range ?? PALETTE) as string[];
    domain.forEach((d, i) => legend.push({ label: String(d), color: range[i % range.length] }));
  }
  return {
    kind: "noiselab-figure",
    plotSvg: markup,
    plotWidth: width,
    plotHeight: height,
    title: fig.title ?? (typeof title === "string" ? title : undefined),
    subtitle: fig.subtitle ?? (typeof subtitle === "string" ? subtitle : undefined),
    caption: fig.caption ?? (typeof caption === "string" ? caption : undefined),
    legendTitle: fig.legendTitle,
    legend,
  };
}

/**
 * Accept a {@link ChartFigure}, a Plot result (`<svg>` or the `<figure>` Plot
 * returns when it has a title/legend) or SVG markup, and return a ChartFigure.
 */
export function toFigure(x: ChartFigure | DomElement | string): ChartFigure {
  if (typeof x === "object" && (x as ChartFigure).kind === "noiselab-figure") return x as ChartFigure;
  let el: DomElement;
  if (typeof x === "string") {
    const holder = plotDocument().createElement("div");
    holder.innerHTML = x;
    const found = holder.querySelector("svg, figure");
    if (!found) throw new Error("toFigure: the markup contains no <svg> or <figure>");
    el = found;
  } else el = x as DomElement;
  if (el.tagName.toLowerCase() === "svg") {
    const { markup, width, height } = normalisePlotSvg(el);
    return { kind: "noiselab-figure", plotSvg: markup, plotWidth: width, plotHeight: height, legend: [] };
  }
  // A Plot <figure>: h2 = title, h3 = subtitle, swatches = legend, figcaption = caption.
  const plotSvg = Array.from(el.querySelectorAll("svg")).find((s) => !s.closest("span, div"));
  if (!plotSvg) throw new Error("toFigure: the <figure> holds no plot <svg>");
  const legend: LegendItem[] = [];
  for (const sw of Array.from(el.querySelectorAll("span"))) {
    if (!/swatch/.test(sw.getAttribute("class") ?? "")) continue;
    const s = sw.querySelector("svg");
    legend.push({ label: (sw.textContent ?? "").trim(), color: s?.getAttribute("fill") ?? "black" });
  }
  const { markup, width, height } = normalisePlotSvg(plotSvg);
  return {
    kind: "noiselab-figure",
    plotSvg: markup,
    plotWidth: width,
    plotHeight: height,
    title: el.querySelector("h2")?.textContent ?? undefined,
    subtitle: el.querySelector("h3")?.textContent ?? undefined,
    caption: el.querySelector("figcaption")?.textContent ?? undefined,
    legend,
  };
}

/** Options of {@link renderSvg}. */
export interface RenderOptions {
  /** Draw the title above the plot (default true when there is one). */
  title?: boolean;
  /** Draw the subtitle (default true when there is one). */
  subtitle?: boolean;
  /** Draw the caption (provenance) under the plot (default true when there is one). */
  caption?: boolean;
  /**
   * Embed the figure's text as SVG metadata, not drawn: `<title>` (title), `<desc>` (subtitle, then the
   * caption/provenance) and `<metadata>` (Dublin Core RDF: title, description, source = provenance,
   * subject = series names, identifier = `name`). Default false.
   */
  metadata?: boolean | { name?: string };
}

/** Series names of a figure: its legend labels, in legend order. */
export function figureSeries(x: ChartFigure): string[] {
  return x.legend.map((l) => l.label);
}

function metadataBlock(f: ChartFigure, name?: string): string {
  const desc = [f.subtitle, f.caption ? `Provenance: ${f.caption}` : undefined].filter(Boolean).join("\n");
  const dc = (tag: string, v: string | undefined) => v ? `<dc:${tag}>${escapeXml(v)}</dc:${tag}>` : "";
  return (f.title ? `<title>${escapeXml(f.title)}</title>` : "") +
    (desc ? `<desc>${escapeXml(desc)}</desc>` : "") +
    `<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" ` +
    `xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description rdf:about="">` +
    dc("identifier", name) + dc("title", f.title) + dc("description", f.subtitle) + dc("source", f.caption) +
    dc("subject", figureSeries(f).join("; ")) + dc("creator", "noiselab") + dc("format", "image/svg+xml") +
    `</rdf:Description></rdf:RDF></metadata>`;
}

/** A legend sample: a colour swatch, or a short line with the series' dash pattern and marker. */
function legendSample(item: LegendItem, x: number, y: number): { markup: string; width: number } {
  const color = escapeXml(item.color);
  if (item.symbol === undefined && item.dash === undefined) {
    return { markup: `<rect x="${x}" y="${y}" width="14" height="14" fill="${color}"/>`, width: 14 };
  }
  const w = 30, cy = y + 7;
  let m = "";
  if (item.dash !== undefined) {
    m += `<line x1="${x}" y1="${cy}" x2="${x + w}" y2="${cy}" stroke="${color}" stroke-width="1.8"` +
      (item.dash ? ` stroke-dasharray="${escapeXml(item.dash)}"` : "") + `/>`;
  }
  if (item.symbol !== undefined) {
    m += `<path d="${symbolPath(item.symbol, 16 * Math.PI)}" transform="translate(${x + w / 2},${cy})" ` +
      `fill="none" stroke="${color}" stroke-width="1.5"/>`;
  }
  return { markup: m, width: w };
}

/**
 * Compose the figure into ONE standalone SVG document (with `xmlns`, white background, DejaVu Sans):
 * title, subtitle, legend, the plot, caption — each text part optional ({@link RenderOptions}; the paper
 * variant of {@link exportFigure} draws the legend and plot only and keeps the text as metadata).
 */
export function renderSvg(x: ChartFigure | DomElement | string, opts: RenderOptions = {}): string {
  const f = toFigure(x);
  const W = Math.max(f.plotWidth, 320);
  const pad = 12;
  const parts: string[] = [];
  let y = 0;
  if (f.title && opts.title !== false) {
    y += 24;
    for (const line of wrap(f.title, Math.floor((W - 2 * pad) / (16 * 0.62)))) {
      parts.push(`<text x="${pad}" y="${y}" font-size="16" font-weight="bold">${escapeXml(line)}</text>`);
      y += 20;
    }
    y -= 20;
  }
  if (f.subtitle && opts.subtitle !== false) {
    y += 18;
    for (const line of wrap(f.subtitle, Math.floor((W - 2 * pad) / (12 * 0.6)))) {
      parts.push(`<text x="${pad}" y="${y}" font-size="12" fill="${MUTED}">${escapeXml(line)}</text>`);
      y += 16;
    }
    y -= 16;
  }
  if (f.legend.length) {
    y += 12;
    let lx = pad;
    let rowY = y;
    if (f.legendTitle) {
      parts.push(
        `<text x="${lx}" y="${rowY + 11}" font-size="12" font-weight="bold">${
          escapeXml(f.legendTitle)
        }</text>`,
      );
      lx += textWidth(f.legendTitle, 12) + 10;
    }
    for (const item of f.legend) {
      const sampleW = item.symbol === undefined && item.dash === undefined ? 14 : 30;
      const w = sampleW + 6 + textWidth(item.label, 12) + 16;
      if (lx + w > W - pad && lx > pad + 1) {
        lx = pad;
        rowY += 20;
      }
      const sample = legendSample(item, lx, rowY);
      parts.push(
        `<g class="legend-item" data-series="${escapeXml(item.label)}">${sample.markup}` +
          `<text x="${lx + sample.width + 6}" y="${rowY + 11.5}" font-size="12">${
            escapeXml(item.label)
          }</text></g>`,
      );
      lx += w;
    }
    y = rowY + 14;
  }
  const top = y > 0 ? y + 8 : 0;
  // Nested <svg>: keeps Plot's own coordinate system and <style> untouched.
  const inner = f.plotSvg.replace(/^<svg\b/, `<svg x="0" y="${top}"`);
  parts.push(inner);
  y = top + f.plotHeight;
  if (f.caption && opts.caption !== false) {
    y += 6;
    for (const line of wrap(f.caption, Math.floor((W - 2 * pad) / (10 * 0.6)))) {
      y += 13;
      parts.push(`<text x="${pad}" y="${y}" font-size="10" fill="${MUTED}">${escapeXml(line)}</text>`);
    }
  }
  const H = Math.ceil(y + 8);
  const meta = opts.metadata
    ? metadataBlock(f, typeof opts.metadata === "object" ? opts.metadata.name : undefined)
    : "";
  return `<svg xmlns="${SVG_NS}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="${FONT_FAMILY}" font-size="${FONT_SIZE}" color="black" fill="black">` + meta +
    `<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>` + parts.join("") + `</svg>\n`;
}
