/**
 * A server-side DOM for Observable Plot. Plot needs `document` to build its SVG;
 * linkedom provides a small standards-following one (no browser needed).
 * @module
 */
import { parseHTML } from "linkedom";

/**
 * The few DOM members noiselab uses (the project compiles without the "dom" lib,
 * which would clash with Deno's own globals).
 */
export interface DomElement {
  tagName: string;
  outerHTML: string;
  innerHTML: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  querySelector(sel: string): DomElement | null;
  querySelectorAll(sel: string): ArrayLike<DomElement>;
  closest(sel: string): DomElement | null;
}

/** The document members noiselab uses. */
export interface DomDocument {
  createElement(tag: string): DomElement;
}

let doc: DomDocument | undefined;

/** The shared linkedom `document` passed to `Plot.plot({document})`. */
export function plotDocument(): DomDocument {
  if (!doc) {
    doc = (parseHTML("<!DOCTYPE html><html><head></head><body></body></html>") as unknown as {
      document: DomDocument;
    })
      .document;
  }
  return doc;
}

/** Escape text for use inside XML/HTML text or attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
