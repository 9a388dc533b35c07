/**
 * noiselab analysis: publication-style charts (Observable Plot on a linkedom DOM),
 * export to SVG/PNG/PDF, polars tables (HTML in notebooks, CSV on disk),
 * provenance lines, inline display in the Deno Jupyter kernel.
 * @module
 */
export * from "./style.ts";
export { type DomDocument, type DomElement, escapeXml, plotDocument } from "./dom.ts";
export * from "./figure.ts";
export * from "./export.ts";
export * from "./stats.ts";
export * from "./charts.ts";
export * from "./table.ts";
export * from "./provenance.ts";
export * from "./display.ts";
