/**
 * The run manifest: what one notebook run produced, for the index page (`lib/cli/index_page.ts`).
 *
 * `reproduce` sets `NOISELAB_RUN_MANIFEST=<outDir>/<stem>.manifest.json` ({@link manifestPathFor}) for
 * each notebook's kernel. While it is set, {@link recordArtifact} (called by `exportFigure` and
 * `exportTable`), {@link recordFinding} (called by {@link showFinding}) and {@link recordParameters}
 * append to that JSON file ({@link RunManifest}), written atomically after every change. When it is not
 * set (the Jupyter UI, the CLI, tests) they do nothing.
 * @module
 */
import { showMarkdown } from "../analysis/display.ts";
import { NoiselabError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { join } from "node:path";

/** Environment variable naming the manifest file of the running notebook. */
export const RUN_MANIFEST_ENV = "NOISELAB_RUN_MANIFEST";

/** Kinds of exported artefacts. */
export type ArtifactKind = "figure" | "table";

/** One exported artefact of a run. */
export interface ManifestArtifact {
  kind: ArtifactKind;
  /** Export name (file stem), e.g. `"01-accuracy-vs-eta"`. */
  name: string;
  /** Figure or table title, when known. */
  title?: string;
  /**
   * Files written, by role → absolute path. Figures: `svg`, `png`, `pdf` (the paper variant), `json` (side
   * file), `captioned.svg`, `captioned.png`; tables: `csv`, `provenance`.
   */
  files: Record<string, string>;
  /** When it was recorded (ISO 8601). */
  recorded: string;
}

/** The manifest file's content. */
export interface RunManifest {
  version: 1;
  /** Process that wrote it (the notebook's kernel); a manifest of another process is replaced, not extended. */
  pid: number;
  /** First record of this process (ISO 8601). */
  started: string;
  /** Last change (ISO 8601). */
  updated: string;
  /** Exported figures and tables, in export order; re-exporting a name replaces its entry. */
  artifacts: ManifestArtifact[];
  /** One-line findings ({@link showFinding}), in order, without duplicates. */
  findings: string[];
  /** The notebook's resolved parameters ({@link recordParameters}), when recorded. */
  parameters?: Record<string, unknown>;
}

/** Path of the manifest of the running notebook (`$NOISELAB_RUN_MANIFEST`), or undefined when not set. */
export function runManifestPath(): string | undefined {
  const p = Deno.env.get(RUN_MANIFEST_ENV);
  return p ? p : undefined;
}

/** Where `reproduce` keeps the manifest of notebook `stem`: `<outDir>/<stem>.manifest.json`. */
export function manifestPathFor(outDir: string, stem: string): string {
  return join(outDir, `${stem}.manifest.json`);
}

/**
 * Read a manifest file. Returns undefined when the file does not exist; throws NoiselabError naming the
 * file when it is not a manifest (bad JSON or shape).
 */
export async function readRunManifest(path: string): Promise<RunManifest | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let m: RunManifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new NoiselabError(`run manifest ${path} is not valid JSON: ${(e as Error).message}`, path);
  }
  if (!m || m.version !== 1 || !Array.isArray(m.artifacts) || !Array.isArray(m.findings)) {
    throw new NoiselabError(`run manifest ${path} has an unknown shape (want version 1)`, path);
  }
  return m;
}

// Records of one process are applied one after the other (exports may run concurrently).
let queue: Promise<unknown> = Promise.resolve();

function update(change: (m: RunManifest) => void): Promise<void> {
  const path = runManifestPath();
  if (!path) return Promise.resolve();
  const run = async () => {
    const now = new Date().toISOString();
    let m: RunManifest | undefined;
    try {
      m = await readRunManifest(path);
    } catch { /* unreadable: start a new one */ }
    if (!m || m.pid !== Deno.pid) {
      m = { version: 1, pid: Deno.pid, started: now, updated: now, artifacts: [], findings: [] };
    }
    change(m);
    m.updated = now;
    await writeFileAtomic(path, JSON.stringify(m, null, 2) + "\n");
  };
  const p = queue.then(run, run);
  queue = p.catch(() => {});
  return p;
}

/**
 * Record an exported figure or table in the run manifest (no-op when `$NOISELAB_RUN_MANIFEST` is not
 * set). Re-recording the same kind and name replaces the earlier entry. Throws NoiselabError on a bad
 * kind, an empty name or no files; file system errors propagate.
 */
export function recordArtifact(
  artifact: { kind: ArtifactKind; name: string; files: Record<string, string | undefined>; title?: string },
): Promise<void> {
  if (artifact.kind !== "figure" && artifact.kind !== "table") {
    return Promise.reject(
      new NoiselabError(`recordArtifact: kind must be "figure" or "table", got "${artifact.kind}"`, "kind"),
    );
  }
  if (!artifact.name) return Promise.reject(new NoiselabError("recordArtifact: empty name", "name"));
  const files: Record<string, string> = {};
  for (const [k, v] of Object.entries(artifact.files)) if (v) files[k] = v;
  if (!Object.keys(files).length) {
    return Promise.reject(new NoiselabError(`recordArtifact: no files for "${artifact.name}"`, "files"));
  }
  return update((m) => {
    m.artifacts = m.artifacts.filter((a) => !(a.kind === artifact.kind && a.name === artifact.name));
    m.artifacts.push({
      kind: artifact.kind,
      name: artifact.name,
      ...(artifact.title ? { title: artifact.title } : {}),
      files,
      recorded: new Date().toISOString(),
    });
  });
}

/**
 * Record a one-line finding (plain text) in the run manifest (no-op when `$NOISELAB_RUN_MANIFEST` is not
 * set; a repeated text is kept once). Throws NoiselabError on an empty text.
 */
export function recordFinding(text: string): Promise<void> {
  const line = text.replace(/\s+/g, " ").trim();
  if (!line) return Promise.reject(new NoiselabError("recordFinding: empty finding", "text"));
  return update((m) => {
    if (!m.findings.includes(line)) m.findings.push(line);
  });
}

/**
 * Record the notebook's resolved parameters (JSON-serialisable values) in the run manifest, shown on the
 * index page instead of the command-line overrides (no-op when `$NOISELAB_RUN_MANIFEST` is not set).
 */
export function recordParameters(params: Record<string, unknown>): Promise<void> {
  const copy = JSON.parse(JSON.stringify(params ?? {}));
  return update((m) => {
    m.parameters = copy;
  });
}

const ABBREVIATIONS = /(?:^|[\s(])(?:e\.g|i\.e|vs|cf|etc|approx|al|fig|Fig|eq|Eq|resp|no|No)\.$/;

/**
 * The one-line form of a Markdown finding: its first line of text (headings skipped when text follows),
 * stripped of Markdown (emphasis, code, links, images, HTML tags, list/quote markers), cut after its
 * first sentence (a `.`, `!` or `?` followed by a space or the end; decimals and common abbreviations
 * such as "e.g." and "vs." do not end a sentence). Returns "" for empty input.
 */
export function findingLine(markdown: string): string {
  const lines = markdown.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
    l && !/^(```|~~~|---+$|\*\*\*+$|___+$|<\/?(div|details|summary)\b)/.test(l)
  );
  const text = lines.find((l) => !l.startsWith("#")) ?? lines[0] ?? "";
  let s = text
    .replace(/^#+\s*/, "")
    .replace(/^(>\s*)+/, "")
    .replace(/^([-*+]|\d+[.)])\s+/, "")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/(\*\*|__)(.+?)\1/g, "$2")
    .replace(/(^|[\s(])[*_]([^*_\s][^*_]*?)[*_](?=$|[\s).,;:!?])/g, "$1$2")
    .replace(/~~(.+?)~~/g, "$1")
    .replace(/\\([\\`*_{}[\]()#+\-.!])/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
  const re = /[.!?](?=\s|$)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const head = s.slice(0, m.index + 1);
    if (ABBREVIATIONS.test(head)) continue;
    s = head;
    break;
  }
  return s;
}

const VERDICT =
  /\*\*(Finding|Inconclusive at this scale|Inconclusive|No difference shown|No trend can be (?:claimed|computed)|Not interpretable|Most of the gap comes from[^*]*)(:?)\*\*/i;

/**
 * The verdicts of an interpretation (lib/notebook/interpret.ts) on one line: for every line holding a
 * verdict (**Finding:**, **Inconclusive at this scale:**, **No difference shown**, ...), the model it is
 * about (the bold label that starts its list item, on that line or an indented line above) and the
 * verdict's first sentence, joined
 * by " · ". Returns "" when the Markdown holds no verdict.
 */
export function verdictSummary(markdown: string): string {
  const out: string[] = [];
  let item: string | undefined; // label of the list item the current line belongs to
  for (const raw of markdown.split(/\r?\n/)) {
    const bullet = /^\s*[-*]\s+\*\*([^*]+)\*\*/.exec(raw);
    if (bullet) item = bullet[1];
    else if (!/^\s+\S/.test(raw)) item = undefined; // an unindented line ends the list item
    const m = VERDICT.exec(raw);
    if (!m) continue;
    const label = item;
    let sentence = findingLine(raw.slice(m.index));
    if (sentence.length > 220) sentence = sentence.slice(0, 217).replace(/\s+\S*$/, "") + "…";
    out.push(label && label !== m[1] ? `${label}: ${sentence}` : sentence);
  }
  return out.join(" · ");
}

/**
 * Display a finding as Markdown (rendered in Jupyter, printed elsewhere, like `showMarkdown`) and record
 * its one-line form ({@link findingLine}, or `opts.line` when given) as the notebook's finding in the run
 * manifest, which the index page shows. Resolves to nothing, so that a cell ending in
 * `await showFinding(...)` shows no stray `Out[..]`. Throws NoiselabError when the Markdown has no text.
 */
export async function showFinding(markdown: string, opts: { line?: string } = {}): Promise<void> {
  const line = (opts.line ?? (verdictSummary(markdown) || findingLine(markdown))).trim();
  if (!line) throw new NoiselabError("showFinding: the finding has no text", "markdown");
  await showMarkdown(markdown);
  await recordFinding(line);
}
