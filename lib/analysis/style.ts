/**
 * Publication style shared by every chart: DejaVu Sans (the only font family
 * installed on the build machines, and the one resvg/rsvg-convert get), white
 * background, 12 px text, a fixed palette.
 * @module
 */

/** Font family used in every chart (SVG, PNG and PDF all render with it). */
export const FONT_FAMILY = "DejaVu Sans";

/** Default chart size in CSS pixels (the PNG export renders at 2x). */
export const DEFAULT_WIDTH = 720;
/** Default height of the plotting area (title, legend and caption come on top). */
export const DEFAULT_HEIGHT = 400;

/** Base font size (px) for tick labels, legend and axis labels. */
export const FONT_SIZE = 12;

/**
 * Categorical palette (Observable's "observable10", colour-blind friendly order),
 * used in series order so the same series keeps its colour across charts when the
 * caller passes the same domain.
 */
export const PALETTE: readonly string[] = [
  "#4269d0",
  "#efb118",
  "#ff725c",
  "#6cc5b0",
  "#3ca951",
  "#ff8ab7",
  "#a463f2",
  "#97bbf5",
  "#9c6b4e",
  "#9498a0",
];

/** Colour of secondary text (subtitle, provenance caption). */
export const MUTED = "#555555";

/**
 * Dash patterns of multi-series line charts, in series order (SVG `stroke-dasharray`, px; `""` = solid).
 * With {@link SERIES_SYMBOLS} (7 entries) every series of a chart with up to 42 series gets its own
 * (symbol, dash) pair, so series are told apart without colour and coincident lines stay visible
 * (a dashed line drawn over a solid one shows both colours).
 */
export const SERIES_DASHES: readonly string[] = ["", "7,3", "2,2.5", "9,3,2,3", "4,4", "12,3,2,3,2,3"];

/** Names of the hollow marker symbols of multi-series charts, in series order. */
export const SERIES_SYMBOLS = [
  "circle",
  "square",
  "triangle",
  "diamond",
  "triangle-down",
  "plus",
  "times",
] as const;

/** A marker symbol name (see {@link SERIES_SYMBOLS}). */
export type SeriesSymbol = typeof SERIES_SYMBOLS[number];

/** The path-drawing calls a symbol makes (d3-path / CanvasPath subset, as Observable Plot passes). */
export interface SymbolContext {
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  arc(x: number, y: number, r: number, a0: number, a1: number): void;
  closePath(): void;
}

/** A marker symbol in Observable Plot's (d3-shape's) protocol: `draw(context, size)`, size = area in px². */
export interface SymbolType {
  draw(context: SymbolContext, size: number): void;
}

function poly(ctx: SymbolContext, pts: [number, number][]): void {
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
  ctx.closePath();
}

/**
 * The marker shapes, drawn with the same code in the plot (as Plot `symbol` objects) and in the legend
 * ({@link symbolPath}), so the legend matches the marks. Each has about the area of a circle of the
 * same `size` (π r²), so no series looks heavier than another.
 */
export const SYMBOL_SHAPES: Readonly<Record<SeriesSymbol, SymbolType>> = {
  circle: {
    draw(ctx, size) {
      const r = Math.sqrt(size / Math.PI);
      ctx.moveTo(r, 0);
      ctx.arc(0, 0, r, 0, 2 * Math.PI);
      ctx.closePath();
    },
  },
  square: {
    draw(ctx, size) {
      const h = Math.sqrt(size) / 2;
      poly(ctx, [[-h, -h], [h, -h], [h, h], [-h, h]]);
    },
  },
  triangle: {
    draw(ctx, size) {
      const s = Math.sqrt(size * 4 / Math.sqrt(3)) * 1.1; // side of an equilateral triangle, a little larger
      const h = s * Math.sqrt(3) / 2;
      poly(ctx, [[0, -2 * h / 3], [s / 2, h / 3], [-s / 2, h / 3]]);
    },
  },
  diamond: {
    draw(ctx, size) {
      const a = Math.sqrt(size / 2) * 1.15;
      poly(ctx, [[0, -a], [a, 0], [0, a], [-a, 0]]);
    },
  },
  "triangle-down": {
    draw(ctx, size) {
      const s = Math.sqrt(size * 4 / Math.sqrt(3)) * 1.1;
      const h = s * Math.sqrt(3) / 2;
      poly(ctx, [[0, 2 * h / 3], [-s / 2, -h / 3], [s / 2, -h / 3]]);
    },
  },
  plus: {
    draw(ctx, size) {
      const a = Math.sqrt(size / Math.PI) * 1.35;
      ctx.moveTo(-a, 0);
      ctx.lineTo(a, 0);
      ctx.moveTo(0, -a);
      ctx.lineTo(0, a);
    },
  },
  times: {
    draw(ctx, size) {
      const a = Math.sqrt(size / Math.PI) * 1.05;
      ctx.moveTo(-a, -a);
      ctx.lineTo(a, a);
      ctx.moveTo(-a, a);
      ctx.lineTo(a, -a);
    },
  },
};

const fmt = (v: number) => String(Math.round(v * 1000) / 1000);

/** SVG path data (`d`) of a marker symbol centred on (0, 0); `size` = area in px² (Plot: r² π). */
export function symbolPath(symbol: SeriesSymbol, size: number): string {
  let d = "";
  const ctx: SymbolContext = {
    moveTo: (x, y) => void (d += `M${fmt(x)},${fmt(y)}`),
    lineTo: (x, y) => void (d += `L${fmt(x)},${fmt(y)}`),
    // full circles only (what the shapes above draw): two half arcs
    arc: (x, y, r) =>
      void (d += `M${fmt(x + r)},${fmt(y)}A${fmt(r)},${fmt(r)},0,1,1,${fmt(x - r)},${fmt(y)}` +
        `A${fmt(r)},${fmt(r)},0,1,1,${fmt(x + r)},${fmt(y)}`),
    closePath: () => void (d += "Z"),
  };
  SYMBOL_SHAPES[symbol].draw(ctx, size);
  return d;
}

/** How one series of a multi-series chart is drawn. */
export interface SeriesStyle {
  /** Series name (legend label). */
  series: string;
  /** Stroke/fill colour. */
  color: string;
  /** Marker symbol. */
  symbol: SeriesSymbol;
  /** SVG dash pattern of its line (`""` = solid). */
  dash: string;
}

/**
 * Styles of the series of one chart, in order: colour `i mod colours`, symbol `i mod 7`, dash `i mod 6`,
 * so the (symbol, dash) pairs of up to 42 series are all different and no two series depend on colour
 * alone to be told apart.
 */
export function seriesStyles(series: string[], colors: readonly string[] = PALETTE): SeriesStyle[] {
  return series.map((s, i) => ({
    series: s,
    color: colors[i % colors.length],
    symbol: SERIES_SYMBOLS[i % SERIES_SYMBOLS.length],
    dash: SERIES_DASHES[i % SERIES_DASHES.length],
  }));
}
