/**
 * Runs one notebook headless for `reproduce`: `tools/run_notebook.py`
 * (nbclient on the project's Deno Jupyter kernel) on a clean copy, with the
 * parameters injected, a per-cell timeout and the run manifest path set; reads
 * back the runner's status and kills a kernel left behind. Also lists the
 * notebooks of a folder, the names their `parameters` cell declares, and which
 * of them differ from the last commit.
 * @module
 */
import { basename, join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { exists } from "../util/fs.ts";
import { projectRoot } from "../util/paths.ts";

/** A notebook found under notebooks/. */
export interface NotebookFile {
  /** Prefix before the first '-', e.g. "01". */
  id: string;
  /** File name without `.ipynb`. */
  stem: string;
  path: string;
}

/** The notebooks of a folder, sorted by name (`NN-name.ipynb`). */
export async function listNotebooks(dir: string): Promise<NotebookFile[]> {
  if (!(await exists(dir))) throw new NoiselabError(`reproduce: notebook folder ${dir} does not exist`, dir);
  const out: NotebookFile[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".ipynb")) continue;
    const stem = e.name.slice(0, -".ipynb".length);
    out.push({ id: stem.split("-")[0], stem, path: join(dir, e.name) });
  }
  return out.sort((a, b) => a.stem.localeCompare(b.stem));
}

/** Names declared in a notebook's `parameters` cell, with their keyword (const/let/var). */
export async function parameterNames(nbPath: string): Promise<Record<string, string>> {
  const nb = JSON.parse(await Deno.readTextFile(nbPath));
  const cell = (nb.cells ?? []).find((c: { cell_type: string; metadata?: { tags?: string[] } }) =>
    c.cell_type === "code" && c.metadata?.tags?.includes("parameters")
  );
  if (!cell) return {};
  const src = Array.isArray(cell.source) ? cell.source.join("") : String(cell.source);
  const out: Record<string, string> = {};
  for (const m of src.matchAll(/^\s*(?:export\s+)?(const|let|var)\s+([A-Za-z_$][\w$]*)/gm)) out[m[2]] = m[1];
  return out;
}

/** Status written by the runner (`<stem>.status.json`). */
export interface RunStatus {
  notebook: string;
  output: string;
  html: string | null;
  params: Record<string, unknown>;
  status: "ok" | "error" | "timeout" | "dead" | "running";
  seconds: number | null;
  cellsRun: number;
  cellsTotal: number;
  failedCell: number | null;
  error: string | null;
  kernelPid: number | null;
}

/** One entry of the index. */
export interface RunRecord extends NotebookFile {
  status: RunStatus["status"];
  seconds: number;
  error: string | null;
  ipynb: string;
  html: string;
  params: Record<string, unknown>;
  cellsRun: number;
  cellsTotal: number;
  kernelLeft: boolean;
}

function pythonBin(): string {
  try {
    Deno.statSync("/usr/bin/python3");
    return "/usr/bin/python3"; // Debian's interpreter has nbclient; a pyenv python3 on PATH may not
  } catch {
    return "python3";
  }
}

/** True while a process with this pid exists (Linux /proc). */
export function processAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie is dead
  } catch {
    return false;
  }
}

/** Run one notebook through the runner. */
export async function runNotebook(
  nb: NotebookFile,
  opts: { params: Record<string, unknown>; timeout: number; outDir: string },
): Promise<RunRecord> {
  await Deno.mkdir(opts.outDir, { recursive: true });
  const ipynb = join(opts.outDir, `${nb.stem}.ipynb`);
  const html = join(opts.outDir, `${nb.stem}.html`);
  const statusPath = join(opts.outDir, `${nb.stem}.status.json`);
  await Deno.remove(statusPath).catch(() => {});
  await Deno.remove(join(opts.outDir, `${nb.stem}.manifest.json`)).catch(() => {});
  const t0 = performance.now();
  const cmd = new Deno.Command(pythonBin(), {
    args: [
      join(projectRoot, "tools", "run_notebook.py"),
      nb.path,
      ipynb,
      "--html",
      html,
      "--status",
      statusPath,
      "--params",
      JSON.stringify(opts.params),
      "--timeout",
      String(opts.timeout),
      "--kernel-dir",
      join(projectRoot, "tools", "kernel"),
    ],
    // NOISELAB_PUBLISH: only reproduce writes the committed figures and tables (lib/util/paths.ts);
    // NOISELAB_RUN_MANIFEST: the notebook's exports and finding, for the index page.
    env: {
      NO_COLOR: "1",
      NOISELAB_PUBLISH: "1",
      NOISELAB_RUN_MANIFEST: join(opts.outDir, `${nb.stem}.manifest.json`),
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  const out = await cmd.output();
  const seconds = (performance.now() - t0) / 1000;
  let st: RunStatus | undefined;
  try {
    st = JSON.parse(await Deno.readTextFile(statusPath));
  } catch { /* runner crashed before writing a status */ }
  let kernelLeft = false;
  if (st?.kernelPid && processAlive(st.kernelPid)) {
    kernelLeft = true;
    try {
      Deno.kill(st.kernelPid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
  const status: RunStatus["status"] = st?.status && st.status !== "running"
    ? st.status
    : out.code === 0
    ? "ok"
    : "dead";
  return {
    ...nb,
    status: out.code !== 0 && status === "ok" ? "dead" : status,
    seconds: st?.seconds ?? seconds,
    error: st?.error ?? (out.code !== 0 ? `runner exited with code ${out.code}` : null),
    ipynb,
    html,
    params: opts.params,
    cellsRun: st?.cellsRun ?? 0,
    cellsTotal: st?.cellsTotal ?? 0,
    kernelLeft,
  };
}

/**
 * Warnings for notebooks whose source differs from the last commit (edits made in the Jupyter UI
 * are autosaved into notebooks/ and would otherwise flow silently into the committed results), or
 * that are not committed at all. Outputs in the source do not matter (every run starts from a clean
 * copy); code and parameters do. Empty outside a git checkout.
 */
export async function uncommittedNotebooks(nbs: NotebookFile[]): Promise<string[]> {
  const out: string[] = [];
  for (const nb of nbs) {
    let head: string | undefined;
    try {
      const r = await new Deno.Command("git", {
        args: ["show", `HEAD:./${basename(nb.path)}`],
        cwd: join(nb.path, ".."),
        stdout: "piped",
        stderr: "null",
      }).output();
      if (!r.success) {
        const inRepo = await new Deno.Command("git", {
          args: ["rev-parse", "--is-inside-work-tree"],
          cwd: join(nb.path, ".."),
          stdout: "null",
          stderr: "null",
        }).output().then((x) => x.success).catch(() => false);
        if (inRepo) {
          out.push(`${nb.path} is not committed; its results cannot be reproduced from the repository`);
        }
        continue;
      }
      head = new TextDecoder().decode(r.stdout);
    } catch {
      continue; // no git here
    }
    const code = (text: string) => {
      try {
        const j = JSON.parse(text);
        return JSON.stringify((j.cells ?? []).map((c: { cell_type: string; source: string | string[] }) => [
          c.cell_type,
          Array.isArray(c.source) ? c.source.join("") : c.source,
        ]));
      } catch {
        return text;
      }
    };
    if (code(head) !== code(await Deno.readTextFile(nb.path))) {
      out.push(
        `${nb.path} has edits that are not committed (for example parameters changed and autosaved in the ` +
          "Jupyter UI); this run uses them. Commit them, or `git checkout " + nb.path +
          "` to reproduce the committed notebook.",
      );
    }
  }
  return out;
}
