/**
 * The study's front page: `<outDir>/index.html` (and `index.json`), written by `reproduce` after every
 * notebook. One row per executed notebook: its status in THIS invocation (ok / failed / skipped with the
 * reason), or "not run in this invocation" with when it last ran and how that ended; the one-line
 * finding and the figures and tables from the notebook's run manifest (lib/notebook/manifest.ts),
 * figure thumbnails linking to SVG/PNG/PDF, links to the CSV tables, the parameters, the run time, and
 * for a failed notebook the error MESSAGE first, the traceback and cell source folded away. A `--only`
 * run updates its own rows and keeps the others. Every link is relative to `outDir`, so the folder can
 * be browsed from a clone.
 * @module
 */
import { basename, isAbsolute, join, relative, sep } from "node:path";
import { escapeXml } from "../analysis/dom.ts";
import { writeFileAtomic } from "../util/fs.ts";
import {
  type ManifestArtifact,
  manifestPathFor,
  readRunManifest,
  type RunManifest,
} from "../notebook/manifest.ts";
import type { RunRecord } from "./notebook_runner.ts";

/** Status of an index row: a runner status, or "skipped" (not started, for `reason`). */
export type IndexStatus = RunRecord["status"] | "skipped";

/** One row of the index: a {@link RunRecord}, or a skipped notebook, plus when and how it ran. */
export interface IndexEntry extends Omit<RunRecord, "status"> {
  status: IndexStatus;
  /** Why the notebook was skipped (status "skipped"). */
  reason?: string;
  /** When the run finished (ISO 8601); {@link writeIndex} stamps entries of this invocation that lack it. */
  finishedAt?: string;
  /** Profile of that run; {@link writeIndex} stamps entries of this invocation that lack it. */
  profile?: string;
}

/** Content of `index.json`. */
export interface IndexFile {
  version: 2;
  /** Profile of the latest invocation. */
  profile: string;
  /** The latest invocation: when it started (estimated from its runs) and which notebooks it ran. */
  invocation: { started: string; written: string; ran: string[] };
  /** Every row, sorted by notebook; rows not in `invocation.ran` are from earlier invocations. */
  runs: IndexEntry[];
}

/** Options of {@link writeIndex}. */
export interface WriteIndexOptions {
  /** Start of this invocation (ISO 8601); default: the earliest start among its runs. */
  startedAt?: string;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const SEPARATOR = /^-{6,}\s*$/;
/** An exception line, `Name: message` (JS, Deno and Python names). */
const EXCEPTION =
  /^(?:Uncaught (?:\(in promise\) )?)?(?:(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception|Interrupt|Exit)|Error|NotFound|PermissionDenied|AlreadyExists|Interrupted|TimedOut|BadResource|Busy)(?: \[[^\]]*\])?: \S/;

/**
 * Split a runner's error text into its MESSAGE (the exception line `Name: message` and its continuation
 * lines, e.g. `NoiselabError: etas must be >= 0 …`, or the runner's own one-line reason such as a
 * timeout) and the full text (`details`: cell source, traceback). nbclient's error text starts with the
 * failing cell's source between `------------------` lines and ends with `ename: evalue`; the runner
 * keeps its last 20 lines, so the frame may be cut anywhere. ANSI colour codes are removed.
 */
export function errorSummary(text: string): { message: string; details: string } {
  const clean = text.replace(ANSI, "").replace(/\r\n?/g, "\n");
  const lines = clean.split("\n");
  let lastSep = -1;
  lines.forEach((l, i) => {
    if (SEPARATOR.test(l)) lastSep = i;
  });
  const from = lastSep + 1;
  let idx = -1;
  for (let i = lines.length - 1; i >= from && idx < 0; i--) if (EXCEPTION.test(lines[i].trim())) idx = i;
  let message: string;
  if (idx >= 0) {
    const msg = [lines[idx].trim()];
    for (let j = idx + 1; j < lines.length && msg.length < 8; j++) {
      if (!lines[j].trim() || /^\s+at\s/.test(lines[j]) || EXCEPTION.test(lines[j].trim())) break;
      msg.push(lines[j].trim());
    }
    message = msg.join("\n");
  } else {
    const after = lines.slice(from).map((l) => l.trim()).filter(Boolean);
    const pool = after.length ? after : lines.map((l) => l.trim()).filter((l) => l && !SEPARATOR.test(l));
    message = pool.find((l) => !/^An error occurred while executing the following cell/.test(l)) ?? "";
  }
  return { message, details: clean.trim() };
}

/** A path as a link relative to `from` (POSIX separators, URI-escaped segments). */
function href(from: string, path: string): string {
  const rel = isAbsolute(path) ? relative(from, path) : path;
  return rel.split(sep).map((s) => encodeURIComponent(s)).join("/");
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "—";
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

function fmtTime(iso: string | undefined): string {
  if (!iso) return "unknown time";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
}

const STATUS_TEXT: Record<IndexStatus, string> = {
  ok: "ok",
  error: "failed",
  timeout: "failed (cell timeout)",
  dead: "failed (kernel died)",
  running: "failed (did not finish)",
  skipped: "skipped",
};

function statusCell(r: IndexEntry, now: boolean): string {
  const text = STATUS_TEXT[r.status] ?? r.status;
  const colour = r.status === "ok" ? "#1a7f37" : r.status === "skipped" ? "#9a6700" : "#cf222e";
  const reason = r.status === "skipped" && r.reason ? `: ${escapeXml(r.reason)}` : "";
  if (now) {
    return `<td class="status status-${escapeXml(r.status)}"><b style="color:${colour}">${
      escapeXml(text)
    }</b>${reason}</td>`;
  }
  return `<td class="status status-not-run"><b style="color:#57606a">not run in this invocation</b><br>` +
    `<span class="last-run">last run ${escapeXml(fmtTime(r.finishedAt))}` +
    (r.profile ? ` (profile ${escapeXml(r.profile)})` : "") +
    `: <span style="color:${colour}">${escapeXml(text)}</span>${reason}</span></td>`;
}

function figureLinks(outDir: string, a: ManifestArtifact): string {
  const f = a.files;
  const links = (["svg", "png", "pdf"] as const).filter((k) => f[k]).map((k) =>
    `<a href="${href(outDir, f[k])}">${k.toUpperCase()}</a>`
  );
  if (f["captioned.png"] || f["captioned.svg"]) {
    links.push(`<a href="${href(outDir, f["captioned.png"] ?? f["captioned.svg"])}">captioned</a>`);
  }
  const thumb = f.png ?? f["captioned.png"];
  const title = escapeXml(a.title ? `${a.title} (${a.name})` : a.name);
  const img = thumb
    ? `<a href="${href(outDir, f.svg ?? thumb)}"><img src="${href(outDir, thumb)}" alt="${title}" ` +
      `title="${title}" width="180" loading="lazy"></a><br>`
    : "";
  return `<figure class="thumb">${img}<figcaption>${escapeXml(a.name)}<br>${
    links.join(" · ")
  }</figcaption></figure>`;
}

function paramsCell(params: Record<string, unknown>): string {
  const items = Object.entries(params).map(([k, v]) =>
    `<code>${escapeXml(k)}=${escapeXml(typeof v === "string" ? v : JSON.stringify(v))}</code>`
  );
  return items.length ? items.join("<br>") : "—";
}

async function lastRunTime(r: IndexEntry): Promise<string | undefined> {
  if (r.finishedAt) return r.finishedAt;
  try {
    return (await Deno.stat(r.ipynb)).mtime?.toISOString();
  } catch {
    return undefined;
  }
}

/**
 * The manifest of a row, unless it is older than the row's run (a notebook that ran now but wrote no
 * manifest must not show the findings and figures of an earlier run).
 */
async function manifestOf(outDir: string, r: IndexEntry): Promise<RunManifest | undefined> {
  let m: RunManifest | undefined;
  try {
    m = await readRunManifest(manifestPathFor(outDir, r.stem));
  } catch {
    return undefined;
  }
  if (!m || !r.finishedAt || !Number.isFinite(r.seconds)) return m;
  const start = Date.parse(r.finishedAt) - r.seconds * 1000;
  return Date.parse(m.updated) < start - 5000 ? undefined : m;
}

function row(outDir: string, r: IndexEntry, now: boolean, m: RunManifest | undefined): string {
  const files = [
    `<a href="${href(outDir, basename(r.html))}">HTML</a>`,
    `<a href="${href(outDir, basename(r.ipynb))}">ipynb</a>`,
  ];
  const ran = r.status !== "skipped";
  const findings = m?.findings.length
    ? m.findings.map((f) => `<p class="finding">${escapeXml(f)}</p>`).join("")
    : `<span class="none">${ran ? "no finding recorded" : "—"}</span>`;
  const figures = (m?.artifacts ?? []).filter((a) => a.kind === "figure").map((a) => figureLinks(outDir, a))
    .join("");
  const tables = (m?.artifacts ?? []).filter((a) => a.kind === "table").map((a) =>
    `<a href="${href(outDir, a.files.csv ?? Object.values(a.files)[0])}">${escapeXml(a.name)}.csv</a>` +
    (a.files.provenance ? ` (<a href="${href(outDir, a.files.provenance)}">provenance</a>)` : "")
  ).join("<br>");
  let error = "";
  if (r.error) {
    const { message, details } = errorSummary(r.error);
    error = `<div class="error-message">${escapeXml(message.slice(0, 1500))}</div>` +
      `<details><summary>traceback and cell source</summary><pre>${escapeXml(details)}</pre></details>`;
  }
  const run = ran
    ? `${escapeXml(fmtSeconds(r.seconds))}<br><span class="small">cells ${r.cellsRun}/${r.cellsTotal}` +
      `<br>finished ${escapeXml(fmtTime(r.finishedAt))}</span>`
    : "—";
  return `<tr id="${escapeXml(r.stem)}"${now ? "" : ` class="not-run"`}>` +
    `<td class="notebook"><b>${escapeXml(r.stem)}</b><br>${ran ? files.join(" · ") : ""}</td>` +
    statusCell(r, now) +
    `<td class="findings">${findings}</td>` +
    `<td class="figures">${figures || "—"}</td>` +
    `<td class="tables">${tables || "—"}</td>` +
    `<td class="params">${paramsCell(m?.parameters ?? r.params ?? {})}</td>` +
    `<td class="run">${run}</td>` +
    `<td class="error">${error}</td></tr>`;
}

/**
 * Write `<outDir>/index.html` (the study's front page) and `index.json` ({@link IndexFile}). `current`
 * are the notebooks of THIS invocation (ran, failed or skipped); rows of other notebooks are kept from
 * the previous `index.json` (whatever its profile) and marked "not run in this invocation" with their
 * own last run time and outcome. Entries of this invocation without `finishedAt`/`profile` get them
 * stamped on the objects passed in (the time of `<outDir>/<stem>.status.json`, which the runner writes
 * last, else now; `profile`), so repeated calls during one invocation keep their times. Findings, figures, tables and resolved parameters come from each notebook's run manifest
 * `<outDir>/<stem>.manifest.json`. Returns the index.html path; file system errors propagate.
 */
export async function writeIndex(
  outDir: string,
  current: IndexEntry[],
  profile: string,
  opts: WriteIndexOptions = {},
): Promise<string> {
  const nowIso = new Date().toISOString();
  for (const r of current) {
    // the runner writes <stem>.status.json last (reproduce removes it before the run): its time is the end
    if (!r.finishedAt && r.status !== "skipped") {
      try {
        r.finishedAt = (await Deno.stat(join(outDir, `${r.stem}.status.json`))).mtime?.toISOString();
      } catch { /* no status file: the runner died early */ }
    }
    r.finishedAt ??= nowIso;
    r.profile ??= profile;
  }
  const ranNow = new Set(current.map((r) => r.stem));
  let previous: IndexEntry[] = [];
  try {
    const prev = JSON.parse(await Deno.readTextFile(join(outDir, "index.json"))) as Partial<IndexFile> & {
      profile?: string;
    };
    if (Array.isArray(prev.runs)) {
      previous = prev.runs.filter((r) => r && typeof r.stem === "string" && !ranNow.has(r.stem)).map((r) => ({
        ...r,
        // version-1 files had no per-row profile: it was the file's
        profile: r.profile ?? prev.profile,
      }));
    }
  } catch { /* no previous index (or unreadable): list this invocation only */ }
  for (const r of previous) r.finishedAt ??= await lastRunTime(r);
  const runs = [...previous, ...current].sort((a, b) => a.stem.localeCompare(b.stem));
  const starts = current.filter((r) => r.finishedAt).map((r) =>
    Date.parse(r.finishedAt!) - (Number.isFinite(r.seconds) ? r.seconds : 0) * 1000
  );
  const started = opts.startedAt ?? (starts.length ? new Date(Math.min(...starts)).toISOString() : nowIso);

  const rows: string[] = [];
  for (const r of runs) rows.push(row(outDir, r, ranNow.has(r.stem), await manifestOf(outDir, r)));
  const failedNow = current.filter((r) => r.status !== "ok" && r.status !== "skipped");
  const skippedNow = current.filter((r) => r.status === "skipped");
  const notRun = runs.filter((r) => !ranNow.has(r.stem));
  const summary = [
    `This invocation (profile <b>${escapeXml(profile)}</b>, started ${escapeXml(fmtTime(started))}, ` +
    `index written ${escapeXml(fmtTime(nowIso))}) ran ${current.length - skippedNow.length} notebook(s)` +
    (current.length
      ? `: ${
        current.map((r) =>
          `<a href="#${escapeXml(r.stem)}">${escapeXml(r.id)}</a> ${
            escapeXml(STATUS_TEXT[r.status] ?? r.status)
          }`
        ).join(", ")
      }.`
      : "."),
    failedNow.length
      ? `<b style="color:#cf222e">${failedNow.length} notebook(s) of this invocation failed.</b>`
      : current.length > skippedNow.length
      ? "Every notebook of this invocation ran without error."
      : "",
    notRun.length
      ? `${notRun.length} row(s) marked <i>not run in this invocation</i> show their own last run.`
      : "",
  ].filter(Boolean).join(" ");
  const page = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>noiselab: weight noise vs BatchNorm — notebooks (${
    escapeXml(profile)
  })</title>
<style>
body{font-family:'DejaVu Sans',sans-serif;margin:2em;max-width:110em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}tr.not-run td{background:#f8f8f8;color:#444}
.small,.none,.last-run{font-size:85%;color:#57606a}.finding{margin:0 0 4px 0;max-width:32em}
figure.thumb{display:inline-block;margin:0 8px 8px 0;font-size:80%;text-align:center}
figure.thumb img{border:1px solid #ddd;background:white}
.error-message{font-family:monospace;white-space:pre-wrap;color:#cf222e;max-width:40em}
details pre{white-space:pre-wrap;font-size:80%;max-width:60em}
</style></head>
<body><h1>noiselab: the effect of BatchNorm on weight-noise robustness</h1>
<p>${summary}</p>
<table>
<tr><th>notebook</th><th>status</th><th>finding</th><th>figures</th><th>tables</th><th>parameters</th><th>run time</th><th>error</th></tr>
${rows.join("\n")}
</table>
<p class="small">Figures: the thumbnail links to the SVG; SVG/PNG/PDF are the paper variants (plot only, title and
provenance in the file metadata and the <code>.json</code> beside them), <i>captioned</i> the presentation variant.
Links are relative to this folder.</p>
</body></html>
`;
  const path = join(outDir, "index.html");
  await writeFileAtomic(path, page);
  const file: IndexFile = {
    version: 2,
    profile,
    invocation: { started, written: nowIso, ran: current.map((r) => r.stem) },
    runs,
  };
  await writeFileAtomic(join(outDir, "index.json"), JSON.stringify(file, null, 2) + "\n");
  return path;
}
