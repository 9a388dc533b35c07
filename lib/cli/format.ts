/**
 * Output helpers: JSON lines on stdout, aligned text tables for humans.
 * The table formatter is a few lines of padding, not worth a dependency.
 * @module
 */

/** Write one JSON object as a line on stdout. */
export function printJson(obj: unknown): void {
  console.log(JSON.stringify(obj));
}

/** Render rows as an aligned text table (numbers right-aligned). */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmtNum(c) : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  const line = (r: string[]) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}

function fmtNum(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(4)));
}

/** 0.1234 -> "12.34%". */
export function pct(v: number): string {
  return Number.isFinite(v) ? (v * 100).toFixed(2) + "%" : String(v);
}
