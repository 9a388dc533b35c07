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
