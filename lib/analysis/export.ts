/**
 * Figure export. `exportFigure(fig, name)` writes, into `outputDir("figures")` (`results/figures` when
 * `reproduce` publishes, else the git-ignored `results/scratch/figures`):
 *
 * - the paper variant `<name>.svg|png|pdf`: the plot and its legend ALONE (no title, subtitle or
 *   provenance footer drawn); the title, subtitle and provenance are kept in the file's metadata (SVG
 *   `<title>`, `<desc>`, Dublin Core `<metadata>`; PNG text chunks Title, Description, Comment; PDF Info
 *   Title, Subject, Keywords);
 * - a side file `<name>.json` (title, subtitle, caption/provenance, series names, files written);
 * - the presentation variant `<name>.captioned.svg|png` with title, subtitle and provenance footer drawn.
 *
 * PNG: `@resvg/resvg-js` ({@link svgToPng}); PDF: `rsvg-convert -f pdf` (Debian `librsvg2-bin`); PNG and
 * PDF metadata: `exiftool` (Debian `libimage-exiftool-perl`), one process per export.
 * @module
 */
import { tracked } from "../util/pending.ts";
import { assertFreshOutput } from "../util/session.ts";
import { basename, join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { outputDir } from "../util/paths.ts";
import { recordArtifact } from "../notebook/manifest.ts";
import type { DomElement } from "./dom.ts";
import { type ChartFigure, figureSeries, renderSvg, toFigure } from "./figure.ts";
import { svgToPng } from "./raster.ts";

export { svgToPng };

/** Export formats. */
export type FigureFormat = "svg" | "png" | "pdf";

/** Options of {@link exportFigure}. */
export interface ExportOptions {
  /** Output folder (default `outputDir("figures")`: `results/figures` when publishing, else `results/scratch/figures`). */
  dir?: string;
  /** Formats of the paper variant (default all three). */
  formats?: FigureFormat[];
  /** Caption (provenance) of the figure; overrides the figure's own. */
  caption?: string;
  /** PNG scale factor (default 2: crisp in papers and slides). */
  pngScale?: number;
  /** Also write the presentation variant `<name>.captioned.svg|png` (default true; its formats ∩ {svg, png}). */
  captioned?: boolean;
}

/**
 * Paths written by {@link exportFigure}: the paper variant by format, the side file, and the presentation
 * variant.
 */
export type ExportedFigure = Partial<Record<FigureFormat, string>> & {
  /** `<name>.json`: title, subtitle, caption/provenance, series, files. */
  json?: string;
  /** `<name>.captioned.svg|png`: with title, subtitle and provenance footer drawn. */
  captioned?: Partial<Record<"svg" | "png", string>>;
};

/** Content of the side file `<name>.json` written by {@link exportFigure}. */
export interface FigureSideFile {
  figure: string;
  title: string | null;
  subtitle: string | null;
  /** The provenance line (the figure's caption). */
  caption: string | null;
  provenance: string | null;
  /** Series names (legend labels), in legend order. */
  series: string[];
  /** File names (same folder) of the paper variant, and `captioned` of the presentation variant. */
  files: Partial<Record<FigureFormat, string>> & { captioned?: Partial<Record<"svg" | "png", string>> };
  /** ISO 8601 time of writing. */
  written: string;
  generator: string;
}

async function hasTool(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

let rsvgChecked: boolean | undefined;
let exiftoolChecked: boolean | undefined;

/** Convert a standalone SVG file to PDF with `rsvg-convert` (vector output). Throws NoiselabError on failure. */
export async function svgFileToPdf(svgPath: string, pdfPath: string): Promise<void> {
  const out = await new Deno.Command("rsvg-convert", {
    args: ["-f", "pdf", "-o", pdfPath, svgPath],
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    await Deno.remove(pdfPath).catch(() => {});
    throw new NoiselabError(
      `rsvg-convert failed on ${svgPath}: ${new TextDecoder().decode(out.stderr).trim()}`,
      svgPath,
    );
  }
}

/** Text metadata of one PNG or PDF file, for {@link writeFileMetadata}. */
export interface FileMetadata {
  path: string;
  title?: string;
  /** PNG Description / PDF Subject (first part). */
  subtitle?: string;
  /** Provenance line: PNG Comment / PDF Subject (after the subtitle). */
  provenance?: string;
  /** PDF Keywords (comma-joined); PNG has none. */
  keywords?: string[];
}

/** One line for exiftool's argument file (one argument per line, so no newlines). */
const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();

/**
 * Write text metadata into PNG (text chunks Title, Description, Comment, Software; tEXt, or iTXt for
 * non-Latin-1 text such as η) and PDF files (Info dictionary Title, Subject, Keywords, Creator) with
 * ONE `exiftool` process (type taken from the file extension: `.png` / `.pdf`). Throws NoiselabError
 * naming the files when exiftool is missing or fails.
 */
export async function writeFileMetadata(files: FileMetadata[]): Promise<void> {
  if (!files.length) return;
  const args: string[] = [];
  for (const f of files) {
    const png = /\.png$/i.test(f.path);
    if (!png && !/\.pdf$/i.test(f.path)) {
      throw new NoiselabError(`writeFileMetadata: ${f.path} is neither .png nor .pdf`, f.path);
    }
    args.push("-overwrite_original", "-m");
    if (png) {
      if (f.title) args.push(`-PNG:Title=${oneLine(f.title)}`);
      if (f.subtitle) args.push(`-PNG:Description=${oneLine(f.subtitle)}`);
      if (f.provenance) args.push(`-PNG:Comment=${oneLine(`Provenance: ${f.provenance}`)}`);
      args.push("-PNG:Software=noiselab exportFigure");
    } else {
      if (f.title) args.push(`-PDF:Title=${oneLine(f.title)}`);
      const subject = [f.subtitle, f.provenance ? `Provenance: ${f.provenance}` : undefined].filter(Boolean)
        .join(". ");
      if (subject) args.push(`-PDF:Subject=${oneLine(subject)}`);
      if (f.keywords?.length) args.push(`-PDF:Keywords=${oneLine(f.keywords.join(", "))}`);
      args.push("-PDF:Creator=noiselab exportFigure");
    }
    args.push(f.path, "-execute");
  }
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command("exiftool", {
      args: ["-charset", "utf8", "-@", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(args.join("\n") + "\n"));
    await w.close();
    out = await child.output();
  } catch (e) {
    throw new NoiselabError(
      `exiftool could not be started (${(e as Error).message}); it writes the PNG/PDF metadata of ` +
        `${
          files.map((f) => f.path).join(", ")
        } (Debian package libimage-exiftool-perl; tools/setup.sh installs it)`,
      "exiftool",
    );
  }
  const err = new TextDecoder().decode(out.stderr).trim();
  if (!out.success || /\berror\b/i.test(err)) {
    throw new NoiselabError(
      `exiftool failed writing metadata into ${files.map((f) => f.path).join(", ")}: ${
        err || `exit ${out.code}`
      }`,
      files[0].path,
    );
  }
}

const tmpName = (dir: string, name: string, ext: string) =>
  join(dir, `.${name}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}.${ext}`);

/**
 * Write a figure as the paper variant `<dir>/<name>.svg|png|pdf` (plot and legend only; title, subtitle
 * and provenance in the files' metadata), the side file `<name>.json`, and the presentation variant
 * `<name>.captioned.svg|png` (title, subtitle and provenance drawn). Default dir: `outputDir("figures")`
 * (`results/figures` only while `reproduce` publishes, else `results/scratch/figures`).
 * Accepts a {@link ChartFigure}, a Plot result (`<svg>` or `<figure>`) or SVG markup. Records the files
 * in the run manifest (lib/notebook/manifest.ts) when one is set.
 *
 * Every file is written atomically (temp file, metadata, rename). Throws NoiselabError before anything is
 * written on a bad name or format, or when `rsvg-convert` (PDF) or `exiftool` (PNG/PDF metadata) is missing.
 */
export function exportFigure(
  figure: ChartFigure | DomElement | string,
  name: string,
  opts: ExportOptions = {},
): Promise<ExportedFigure> {
  assertFreshOutput(`exportFigure("${name}")`, figure);
  return tracked(`exportFigure("${name}")`, exportFigureImpl(figure, name, opts));
}

async function exportFigureImpl(
  figure: ChartFigure | DomElement | string,
  name: string,
  opts: ExportOptions = {},
): Promise<ExportedFigure> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new NoiselabError(
      `exportFigure: bad figure name "${name}" (use letters, digits, '.', '_', '-')`,
      "name",
    );
  }
  const formats = opts.formats ?? ["svg", "png", "pdf"];
  for (const f of formats) {
    if (!["svg", "png", "pdf"].includes(f)) {
      throw new NoiselabError(`exportFigure: unknown format "${f}" (svg, png, pdf)`, "formats");
    }
  }
  const captioned = opts.captioned === false ? [] : formats.filter((f) => f === "svg" || f === "png");
  if (formats.includes("pdf") && !(rsvgChecked ??= await hasTool("rsvg-convert", ["--version"]))) {
    throw new NoiselabError(
      "exportFigure: PDF export needs rsvg-convert (Debian package librsvg2-bin; tools/setup.sh installs it)",
      "rsvg-convert",
    );
  }
  if (
    (formats.includes("png") || formats.includes("pdf")) &&
    !(exiftoolChecked ??= await hasTool("exiftool", ["-ver"]))
  ) {
    throw new NoiselabError(
      "exportFigure: writing the title and provenance into PNG/PDF metadata needs exiftool " +
        "(Debian package libimage-exiftool-perl; tools/setup.sh installs it)",
      "exiftool",
    );
  }
  const dir = opts.dir ?? outputDir("figures");
  const base = toFigure(figure);
  const fig: ChartFigure = { ...base, caption: opts.caption ?? base.caption };
  const series = figureSeries(fig);
  const scale = opts.pngScale ?? 2;
  const paperSvg = renderSvg(fig, { title: false, subtitle: false, caption: false, metadata: { name } });
  const captionedSvg = renderSvg(fig, { metadata: { name } });
  const meta = { title: fig.title, subtitle: fig.subtitle, provenance: fig.caption };
  const keywords = ["noiselab", name, ...series];

  const out: ExportedFigure = {};
  const path = (suffix: string) => join(dir, `${name}${suffix}`);
  const renames: [string, string][] = [];
  const temps: string[] = [];
  try {
    await Deno.mkdir(dir, { recursive: true });
    // SVGs carry their metadata inline. The paper SVG is needed on disk for the PDF, so it is written
    // even when only a PDF is asked for (removed again below).
    const svgTmp = tmpName(dir, name, "svg");
    temps.push(svgTmp);
    await Deno.writeTextFile(svgTmp, paperSvg);
    if (formats.includes("svg")) renames.push([svgTmp, path(".svg")]);
    const withMeta: FileMetadata[] = [];
    if (formats.includes("png")) {
      const t = tmpName(dir, name, "png");
      temps.push(t);
      await Deno.writeFile(t, svgToPng(paperSvg, scale));
      withMeta.push({ path: t, ...meta });
      renames.push([t, path(".png")]);
    }
    if (formats.includes("pdf")) {
      const t = tmpName(dir, name, "pdf");
      temps.push(t);
      await svgFileToPdf(svgTmp, t);
      withMeta.push({ path: t, ...meta, keywords });
      renames.push([t, path(".pdf")]);
    }
    if (captioned.includes("svg")) {
      const t = tmpName(dir, `${name}.captioned`, "svg");
      temps.push(t);
      await Deno.writeTextFile(t, captionedSvg);
      renames.push([t, path(".captioned.svg")]);
    }
    if (captioned.includes("png")) {
      const t = tmpName(dir, `${name}.captioned`, "png");
      temps.push(t);
      await Deno.writeFile(t, svgToPng(captionedSvg, scale));
      withMeta.push({ path: t, ...meta });
      renames.push([t, path(".captioned.png")]);
    }
    await writeFileMetadata(withMeta);
    for (const [from, to] of renames) await Deno.rename(from, to);
  } finally {
    for (const t of temps) await Deno.remove(t).catch(() => {});
  }
  for (const f of formats) out[f] = path(`.${f}`);
  if (captioned.length) {
    out.captioned = {};
    for (const f of captioned) out.captioned[f] = path(`.captioned.${f}`);
  }
  const side: FigureSideFile = {
    figure: name,
    title: fig.title ?? null,
    subtitle: fig.subtitle ?? null,
    caption: fig.caption ?? null,
    provenance: fig.caption ?? null,
    series,
    files: {
      ...Object.fromEntries(formats.map((f) => [f, basename(path(`.${f}`))])),
      ...(out.captioned
        ? { captioned: Object.fromEntries(Object.entries(out.captioned).map(([k, v]) => [k, basename(v!)])) }
        : {}),
    },
    written: new Date().toISOString(),
    generator: "noiselab exportFigure",
  };
  out.json = path(".json");
  await writeFileAtomic(out.json, JSON.stringify(side, null, 2) + "\n");
  await recordArtifact({
    kind: "figure",
    name,
    title: fig.title,
    files: {
      svg: out.svg,
      png: out.png,
      pdf: out.pdf,
      json: out.json,
      "captioned.svg": out.captioned?.svg,
      "captioned.png": out.captioned?.png,
    },
  });
  return out;
}
