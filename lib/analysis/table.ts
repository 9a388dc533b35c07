/**
 * Tables: nodejs-polars DataFrames, which render as HTML tables in Jupyter
 * (they implement `Symbol.for("Jupyter.display")`), and CSV export.
 *
 * Why polars and not danfojs: danfojs 1.1.2 bundles tfjs 3.21; importing it in the
 * same process as our tfjs 4.22 re-registers every `cpu` kernel ("The kernel 'X'
 * for backend 'cpu' is already registered") — measured by the lead — so it cannot
 * share the compute process. nodejs-polars 0.25.2 pulls in no tfjs and displays
 * natively as an HTML table.
 * @module
 */
import { tracked } from "../util/pending.ts";
import { assertFreshOutput } from "../util/session.ts";
import { join } from "node:path";
import pl from "nodejs-polars";
import { NoiselabError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { outputDir } from "../util/paths.ts";
import { recordArtifact } from "../notebook/manifest.ts";

/** A polars DataFrame (HTML in notebooks, `writeCSV` for files). */
export type DataFrame = pl.DataFrame;

/** A table row: column name -> value. */
export type Row = Record<string, string | number | boolean | null | undefined>;

/** Options of {@link table}. */
export interface TableOptions {
  /** Round non-integer numbers to this many decimals (default 2; `null` keeps full precision). */
  digits?: number | null;
  /** Column order (default: order of first appearance). */
  columns?: string[];
}

function columnsOf(rows: Row[], order?: string[]): string[] {
  const cols: string[] = [...(order ?? [])];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

/**
 * Build a DataFrame from plain rows: numbers rounded to `digits`, integer-only
 * columns typed Int64 (so CSV shows `3`, not `3.0`), missing values null.
 */
export function table(rows: Row[], opts: TableOptions = {}): DataFrame {
  const cols = columnsOf(rows, opts.columns);
  const digits = opts.digits === undefined ? 2 : opts.digits;
  const series: pl.Series[] = [];
  for (const c of cols) {
    const vals = rows.map((r) => r[c] ?? null);
    const present = vals.filter((v) => v !== null);
    if (present.length && present.every((v) => typeof v === "number")) {
      const nums = vals as (number | null)[];
      if (present.every((v) => Number.isInteger(v))) series.push(pl.Series(c, nums, pl.Int64));
      else {
        const rounded = nums.map((v) =>
          v === null || digits === null || !Number.isFinite(v) ? v : Number(v.toFixed(digits))
        );
        series.push(pl.Series(c, rounded, pl.Float64));
      }
    } else series.push(pl.Series(c, vals.map((v) => v === null ? null : String(v)), pl.Utf8));
  }
  return pl.DataFrame(series);
}

/** Options of {@link exportTable}. */
export interface ExportTableOptions {
  /**
   * Output folder (default `outputDir("tables")`: `results/tables` when `reproduce` publishes, else the
   * git-ignored `results/scratch/tables`).
   */
  dir?: string;
  /**
   * Provenance of the numbers (data copy, model ids, seeds, noise grid and draws, backend, CPU, numerics
   * version): written beside the CSV as `<name>.provenance.json` ({ table, provenance, written }), since a
   * CSV has no place for it.
   */
  provenance?: string;
}

/**
 * Write a DataFrame (or rows) as `<dir>/<name>.csv` atomically (default dir `outputDir("tables")`:
 * `results/tables` only while `reproduce` publishes, else `results/scratch/tables`), with
 * `<name>.provenance.json` beside it when `provenance` is given; records both in the run manifest
 * (lib/notebook/manifest.ts) when one is set. Returns the CSV's path. Throws NoiselabError on a bad name.
 */
export function exportTable(
  df: DataFrame | Row[],
  name: string,
  opts: ExportTableOptions = {},
): Promise<string> {
  assertFreshOutput(`exportTable("${name}")`, df);
  return tracked(`exportTable("${name}")`, exportTableImpl(df, name, opts));
}

async function exportTableImpl(
  df: DataFrame | Row[],
  name: string,
  opts: ExportTableOptions = {},
): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new NoiselabError(
      `exportTable: bad table name "${name}" (use letters, digits, '.', '_', '-')`,
      "name",
    );
  }
  const frame = Array.isArray(df) ? table(df, { digits: null }) : df;
  const dir = opts.dir ?? outputDir("tables");
  const path = join(dir, `${name}.csv`);
  await writeFileAtomic(path, frame.writeCSV().toString());
  const provPath = opts.provenance !== undefined ? join(dir, `${name}.provenance.json`) : undefined;
  if (provPath) {
    await writeFileAtomic(
      provPath,
      JSON.stringify(
        { table: `${name}.csv`, provenance: opts.provenance, written: new Date().toISOString() },
        null,
        2,
      ) +
        "\n",
    );
  }
  await recordArtifact({ kind: "table", name, files: { csv: path, provenance: provPath } });
  return path;
}
