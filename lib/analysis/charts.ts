/**
 * The standard charts of the noiselab notebooks, on Observable Plot.
 * Accuracies come in as fractions (0..1) and are drawn in percent.
 * @module
 */
import * as Plot from "@observablehq/plot";
import { type ChartFigure, type LegendItem, plotFigure } from "./figure.ts";
import type { EtaSummary } from "./stats.ts";
import {
  DEFAULT_HEIGHT,
  DEFAULT_WIDTH,
  PALETTE,
  type SeriesStyle,
  seriesStyles,
  SYMBOL_SHAPES,
} from "./style.ts";

/** Label of the noise-level axis (the paper's η: σ of the noise relative to std(W)). */
export const ETA_LABEL = "noise level η = σ_noise / std(W) →";

/** One point of a line with a confidence band. */
export interface BandPoint {
  series: string;
  x: number;
  y: number;
  lo: number;
  hi: number;
}

/** Common options of the chart helpers. */
export interface ChartOptions {
  title?: string;
  subtitle?: string;
  /** Provenance line (drawn under the plot in exported files). */
  caption?: string;
  width?: number;
  height?: number;
  /** Legend heading (e.g. "model"). */
  legendTitle?: string;
  /** Series order / colour assignment (default: order of appearance). */
  seriesOrder?: string[];
  /** Colours for `seriesOrder` (default: the palette). */
  colors?: string[];
}

/** Options of {@link bandChart}. */
export interface BandChartOptions extends ChartOptions {
  xLabel: string;
  yLabel: string;
  yDomain?: [number, number];
  /** Horizontal reference line (e.g. chance accuracy), with its label. */
  reference?: { y: number; label: string };
  /** Use a log-free categorical x (e.g. BN layer counts) — default linear. */
  xTicks?: number[];
  /**
   * Clamp band bounds to this range before drawing (e.g. `[0, 100]` for accuracies in %: an interval
   * never claims an accuracy below 0% or above 100%). Bands are also clipped to the plot frame.
   */
  bandRange?: [number, number];
}

function seriesDomain(points: { series: string }[], order?: string[]): string[] {
  const seen: string[] = [...(order ?? [])];
  for (const p of points) if (!seen.includes(p.series)) seen.push(p.series);
  return seen;
}

/** Legend entries matching per-series marks drawn with {@link seriesStyles}. */
function styleLegend(styles: SeriesStyle[]): LegendItem[] {
  return styles.map((s) => ({ label: s.series, color: s.color, symbol: s.symbol, dash: s.dash }));
}

/**
 * One line and one set of hollow markers per series, each with the series' own colour, dash pattern and
 * marker symbol (constant per mark, tagged `aria-description` = series name). Series that lie exactly on
 * top of each other stay visible: the later line is dashed over the earlier one, and hollow markers of
 * different shapes do not hide each other.
 */
function styledSeriesMarks<T extends { series: string }>(
  data: T[],
  styles: SeriesStyle[],
  channels: { x: string; y: string },
  r = 4,
): Plot.Markish[] {
  const lines: Plot.Markish[] = [], dots: Plot.Markish[] = [];
  for (const st of styles) {
    const pts = data.filter((d) => d.series === st.series);
    lines.push(Plot.line(pts, {
      ...channels,
      stroke: st.color,
      strokeWidth: 1.8,
      strokeDasharray: st.dash || undefined,
      clip: true,
      ariaDescription: st.series,
    }));
    dots.push(Plot.dot(pts, {
      ...channels,
      symbol: SYMBOL_SHAPES[st.symbol] as unknown as Plot.SymbolType,
      r,
      stroke: st.color,
      strokeWidth: 1.5,
      fill: "none",
      clip: true,
      ariaDescription: st.series,
    }));
  }
  return [...lines, ...dots];
}

/**
 * Lines with shaded 95% bands, one colour, dash pattern and marker symbol per series (so series are told
 * apart without colour and coincident series stay visible), plus an optional reference line. Bands are
 * clamped to `bandRange` and clipped to the plot frame.
 */
export function bandChart(points: BandPoint[], opts: BandChartOptions): ChartFigure {
  const domain = seriesDomain(points, opts.seriesOrder);
  const styles = seriesStyles(domain, opts.colors ?? PALETTE);
  const data = [...points].sort((a, b) => domain.indexOf(a.series) - domain.indexOf(b.series) || a.x - b.x);
  const finite = data.filter((d) => Number.isFinite(d.y));
  const [bLo, bHi] = opts.bandRange ?? [-Infinity, Infinity];
  const bands = finite.filter((d) => Number.isFinite(d.lo) && Number.isFinite(d.hi)).map((d) => ({
    ...d,
    lo: Math.min(bHi, Math.max(bLo, d.lo)),
    hi: Math.min(bHi, Math.max(bLo, d.hi)),
  }));
  // bands, lines and markers are clipped to the plot frame, so an interval never draws over the title or axes
  const marks: Plot.Markish[] = styles.map((st) =>
    Plot.areaY(bands.filter((d) => d.series === st.series), {
      x: "x",
      y1: "lo",
      y2: "hi",
      fill: st.color,
      fillOpacity: 0.15,
      clip: true,
      ariaDescription: st.series,
    })
  );
  marks.push(...styledSeriesMarks(finite, styles, { x: "x", y: "y" }));
  if (opts.reference) {
    marks.push(Plot.ruleY([opts.reference.y], { stroke: "#888", strokeDasharray: "4,3" }));
    marks.push(Plot.text([opts.reference], {
      y: "y",
      text: "label",
      frameAnchor: "right",
      dy: -7,
      fill: "#666",
      fontSize: 11,
    }));
  }
  return plotFigure({
    width: opts.width ?? DEFAULT_WIDTH,
    height: opts.height ?? DEFAULT_HEIGHT,
    marginLeft: 60,
    marginBottom: 45,
    marginRight: 20,
    x: {
      label: opts.xLabel,
      labelAnchor: "right",
      labelOffset: 36,
      ticks: opts.xTicks as number[] | undefined,
      inset: 8, // markers at the first and last x are drawn whole
    },
    y: { label: opts.yLabel, domain: opts.yDomain, grid: true, labelOffset: 48, inset: 6 },
    marks,
  }, {
    title: opts.title,
    subtitle: opts.subtitle,
    caption: opts.caption,
    legendTitle: opts.legendTitle,
    legendItems: styleLegend(styles),
  });
}

/** Accuracy (%) vs η with 95% bands, one line per series (model × BN). */
export function accuracyVsEtaChart(
  summaries: EtaSummary[],
  opts: ChartOptions & { chance?: number } = {},
): ChartFigure {
  return bandChart(
    summaries.map((s) => ({
      series: s.series,
      x: s.eta,
      y: 100 * s.accuracy,
      lo: 100 * s.accuracyLo,
      hi: 100 * s.accuracyHi,
    })),
    {
      title: "Test accuracy under weight noise",
      ...opts,
      xLabel: ETA_LABEL,
      yLabel: "↑ test accuracy (%)",
      yDomain: [0, 100],
      bandRange: [0, 100],
      reference: opts.chance !== undefined ? { y: 100 * opts.chance, label: "chance" } : undefined,
    },
  );
}

/**
 * Top of a normalized-accuracy axis (%): at least 110, at most 150 — interval bounds may reach
 * 1 / clean (e.g. 1000% for a 10% model); marks are clipped to the frame.
 */
function normalizedAxisTop(upperBounds: number[]): number {
  return Math.min(150, Math.max(110, ...upperBounds.filter(Number.isFinite)));
}

/** Normalized accuracy (noisy / clean, %) vs η with 95% bands. */
export function normalizedVsEtaChart(summaries: EtaSummary[], opts: ChartOptions = {}): ChartFigure {
  return bandChart(
    summaries.map((s) => ({
      series: s.series,
      x: s.eta,
      y: 100 * s.normalized,
      lo: 100 * s.normalizedLo,
      hi: 100 * s.normalizedHi,
    })),
    {
      title: "Normalized accuracy under weight noise",
      ...opts,
      xLabel: ETA_LABEL,
      yLabel: "↑ normalized accuracy (% of clean)",
      yDomain: [0, normalizedAxisTop(summaries.map((s) => 100 * s.normalizedHi))],
      bandRange: [0, Infinity],
      reference: { y: 100, label: "clean" },
    },
  );
}

/** One point of {@link bnCountChart}: normalized accuracy of a model with `bnLayers` BN layers at noise `eta`. */
export interface BnCountPoint {
  bnLayers: number;
  eta: number;
  normalized: number;
  normalizedLo: number;
  normalizedHi: number;
}

/** Normalized accuracy (%) vs number of BN layers, one line per η. */
export function bnCountChart(points: BnCountPoint[], opts: ChartOptions = {}): ChartFigure {
  const etas = [...new Set(points.map((p) => p.eta))].sort((a, b) => a - b);
  const label = (e: number) => `η = ${e}`;
  return bandChart(
    points.map((p) => ({
      series: label(p.eta),
      x: p.bnLayers,
      y: 100 * p.normalized,
      lo: 100 * p.normalizedLo,
      hi: 100 * p.normalizedHi,
    })),
    {
      title: "Normalized accuracy vs number of BatchNorm layers",
      legendTitle: "noise level",
      seriesOrder: etas.map(label),
      ...opts,
      xLabel: "number of BatchNorm layers →",
      yLabel: "↑ normalized accuracy (% of clean)",
      yDomain: [0, Math.max(110, ...points.map((p) => 100 * p.normalizedHi).filter(Number.isFinite))],
      xTicks: [...new Set(points.map((p) => p.bnLayers))].sort((a, b) => a - b),
      bandRange: [0, Infinity],
      reference: { y: 100, label: "clean" },
    },
  );
}

/** One bar of {@link barChart}. */
export interface BarRow {
  /** Category on the vertical axis (e.g. noise target). */
  label: string;
  /** Value (already in display units). */
  value: number;
  lo?: number;
  hi?: number;
  /** Colour group (e.g. model); bars of one label are stacked side by side by group. */
  group?: string;
}

/** Horizontal bars with optional 95% error bars, grouped by `group` (one colour per group). */
export function barChart(
  rows: BarRow[],
  opts: ChartOptions & { xLabel: string; xDomain?: [number, number]; labelOrder?: string[] },
): ChartFigure {
  const labels = opts.labelOrder ?? [...new Set(rows.map((r) => r.label))];
  const groups = seriesDomain(rows.map((r) => ({ series: r.group ?? "" })), opts.seriesOrder);
  const data = rows.map((r) => ({ ...r, group: r.group ?? "", v: Number.isFinite(r.value) ? r.value : 0 }));
  const grouped = groups.length > 1;
  const marks: Plot.Markish[] = [
    Plot.barX(data, {
      x: "v",
      y: grouped ? "group" : "label",
      fy: grouped ? "label" : undefined,
      fill: "group",
    }),
    Plot.ruleY(data.filter((d) => d.lo !== undefined && Number.isFinite(d.lo)), {
      x1: "lo",
      x2: "hi",
      y: grouped ? "group" : "label",
      fy: grouped ? "label" : undefined,
      stroke: "black",
    }),
    Plot.text(data, {
      x: (d: { v: number; hi?: number }) => Math.max(d.v, Number.isFinite(d.hi) ? d.hi as number : d.v),
      y: grouped ? "group" : "label",
      fy: grouped ? "label" : undefined,
      text: (d: BarRow) => Number.isFinite(d.value) ? d.value.toFixed(1) : "NaN",
      dx: 4,
      textAnchor: "start",
      fontSize: 11,
    }),
    Plot.ruleX([0]),
  ];
  const maxV = Math.max(1, ...data.map((d) => Math.max(d.v, d.hi ?? 0)).filter(Number.isFinite));
  return plotFigure({
    width: opts.width ?? DEFAULT_WIDTH,
    height: opts.height ?? Math.max(160, 40 + labels.length * (grouped ? groups.length * 18 + 10 : 28)),
    marginLeft: 230,
    marginRight: 40,
    marginBottom: 40,
    x: { label: opts.xLabel, domain: opts.xDomain ?? [0, maxV * 1.12], grid: true },
    y: grouped ? { axis: null, domain: groups } : { label: null, domain: labels },
    fy: grouped ? { label: null, domain: labels, padding: 0.15, axis: "left" } : undefined,
    color: { type: "categorical", domain: groups, range: opts.colors ?? PALETTE as string[] },
    marks,
  } as Plot.PlotOptions, {
    title: opts.title,
    subtitle: opts.subtitle,
    caption: opts.caption,
    legendTitle: opts.legendTitle,
    legend: grouped,
  });
}

/**
 * Attribution chart (notebook 03): normalized accuracy vs η, one line per noise
 * condition (kernels only, + BN affine, + BN statistics, all, folded, recalibrated).
 */
export function attributionChart(summaries: EtaSummary[], opts: ChartOptions = {}): ChartFigure {
  return normalizedVsEtaChart(summaries, {
    title: "Which part of BatchNorm breaks under noise",
    legendTitle: "noise on",
    ...opts,
  });
}

export { DEFAULT_HEIGHT, DEFAULT_WIDTH };

/** Share of test images whose logits are not finite (%) vs η, one line per series (the NaN mechanism). */
export function nonFiniteVsEtaChart(summaries: EtaSummary[], opts: ChartOptions = {}): ChartFigure {
  return bandChart(
    summaries.map((s) => ({
      series: s.series,
      x: s.eta,
      y: 100 * s.nonFiniteShare,
      lo: NaN,
      hi: NaN,
    })),
    {
      title: "Test images with non-finite logits under weight noise",
      ...opts,
      xLabel: ETA_LABEL,
      yLabel: "↑ images with NaN/Inf logits (%)",
      yDomain: [0, 100],
      bandRange: [0, 100],
    },
  );
}

/** One point of {@link trajectoryChart}: a snapshot (or final model) of one variant. */
export interface TrajectoryChartPoint {
  series: string;
  /** Clean accuracy (0..1). */
  clean: number;
  /** Average normalized accuracy over η > 0 (0..1) with its interval (NaN = undefined). */
  value: number;
  lo: number;
  hi: number;
  /** Fractional epochs of training (labels the points). */
  epochs: number;
}

/**
 * Robustness along training: average normalized accuracy (%) against clean accuracy (%), one line per
 * variant in training order, 95% interval bars, each point labelled with its epochs. Points at the
 * same x compare BN and no-BN models at matched clean accuracy.
 */
export function trajectoryChart(points: TrajectoryChartPoint[], opts: ChartOptions = {}): ChartFigure {
  const domain = seriesDomain(points, opts.seriesOrder);
  const styles = seriesStyles(domain, opts.colors ?? PALETTE);
  const data = points.filter((p) => Number.isFinite(p.value)).map((p) => ({
    ...p,
    x: 100 * p.clean,
    y: 100 * p.value,
    ylo: Math.max(0, 100 * p.lo),
    yhi: 100 * p.hi,
    label: `${p.epochs.toFixed(1)} ep`,
  }));
  const top = normalizedAxisTop(data.map((d) => d.yhi));
  return plotFigure({
    width: opts.width ?? DEFAULT_WIDTH,
    height: opts.height ?? DEFAULT_HEIGHT,
    marginLeft: 60,
    marginBottom: 45,
    marginRight: 20,
    x: { label: "clean test accuracy (%) →", labelAnchor: "right", labelOffset: 36, grid: true, inset: 8 },
    y: {
      label: "↑ average normalized accuracy (% of clean)",
      domain: [0, top],
      grid: true,
      labelOffset: 48,
      inset: 6,
    },
    marks: [
      ...styles.map((st) =>
        Plot.ruleX(
          data.filter((d) => d.series === st.series && Number.isFinite(d.ylo) && Number.isFinite(d.yhi)),
          {
            x: "x",
            y1: "ylo",
            y2: "yhi",
            stroke: st.color,
            strokeOpacity: 0.6,
            clip: true,
            ariaDescription: st.series,
          },
        )
      ),
      ...styledSeriesMarks(data, styles, { x: "x", y: "y" }, 4.5),
      Plot.text(data, { x: "x", y: "y", text: "label", dy: -10, fontSize: 9, fill: "#555", clip: true }),
      Plot.ruleY([100], { stroke: "#888", strokeDasharray: "4,3" }),
    ],
  }, {
    title: opts.title,
    subtitle: opts.subtitle,
    caption: opts.caption,
    legendTitle: opts.legendTitle,
    legendItems: styleLegend(styles),
  });
}
