/**
 * `deno task noiselab reproduce [--profile smoke|quick|standard|paper] [--only 01,02]
 *  [-p name=value ...] [--timeout SECONDS]`: execute the notebooks headless on
 * the real Deno Jupyter kernel (through `tools/run_notebook.py`, nbclient),
 * save executed copies + HTML exports under `results/notebooks/` with an index
 * page, and exit non-zero when any cell errors or times out.
 * @module
 */
import { basename, join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { exists } from "../util/fs.ts";
import { projectRoot, resultsDir } from "../util/paths.ts";
import { writeIndex } from "./index_page.ts";
import { NOTEBOOK_IDS, PROFILE_NAMES, type ProfileName, resolveParams } from "./profiles.ts";
import type { NotebookId } from "./profiles.ts";

/** Parsed command line of `reproduce`. */
export interface ReproduceOptions {
  profile: ProfileName;
  /** Notebook id prefixes to run (null = all). */
  only: string[] | null;
  /** `-p name=value` overrides, injected into every notebook whose parameters cell declares the name. */
  params: Record<string, unknown>;
  /** Per-cell timeout in seconds (0 = none). */
  timeout: number;
  /** Where executed notebooks go (default `results/notebooks`). */
  outDir: string;
  /** Source notebooks (default `notebooks/`). */
  notebooksDir: string;
}

/** Default per-cell timeouts (s) by profile: paper-scale training cells may run for hours. */
export const DEFAULT_CELL_TIMEOUT: Record<ProfileName, number> = {
  smoke: 900,
  quick: 6 * 3600,
  standard: 0,
  paper: 0,
};

export const REPRODUCE_USAGE =
  `usage: noiselab reproduce [--profile smoke|quick|standard|paper] [--only 01,02] [-p name=value ...]
                         [--timeout SECONDS] [--out DIR] [--notebooks DIR]
  --profile   parameter profile of every notebook (lib/notebook/profiles.ts; default quick)
  --only      comma-separated notebook ids (file name prefixes under notebooks/)
  -p          override one notebook parameter, e.g. -p draws=5 -p models=resnet20,vgg11 (JSON values allowed)
  --timeout   per-cell timeout in seconds (0: none; default smoke 900, quick 21600, standard and paper none)
  --out       output folder (default results/notebooks)`;

/** Parse one `-p` value: JSON when it parses, a comma list (elements parsed the same way), else a string. */
export function parseParamValue(raw: string): unknown {
  const one = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  };
  const v = one(raw);
  if (typeof v === "string" && raw.includes(",")) return raw.split(",").map((s) => one(s.trim()));
  return v;
}

/** Parse and validate the arguments of `reproduce` (NoiselabError naming the bad argument). */
export function parseReproduceArgs(argv: string[]): ReproduceOptions {
  let profile: string = "quick";
  let only: string[] | null = null;
  const params: Record<string, unknown> = {};
  let timeout: number | undefined;
  let outDir = join(resultsDir(), "notebooks");
  let notebooksDir = join(projectRoot, "notebooks");
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) {
        throw new NoiselabError(`reproduce: ${flag} needs a value\n${REPRODUCE_USAGE}`, flag);
      }
      return v;
    };
    switch (flag) {
      case "--profile":
        profile = value();
        break;
      case "--only":
        only = value().split(",").map((s) => s.trim()).filter(Boolean);
        break;
      case "-p":
      case "--param": {
        const kv = value();
        const eq = kv.indexOf("=");
        if (eq <= 0) throw new NoiselabError(`reproduce: -p expects name=value, got "${kv}"`, "-p");
        const name = kv.slice(0, eq).trim();
        if (!/^[A-Za-z_$][\w$]*$/.test(name)) {
          throw new NoiselabError(`reproduce: bad parameter name "${name}"`, "-p");
        }
        if (name === "profile") throw new NoiselabError("reproduce: use --profile, not -p profile=...", "-p");
        params[name] = parseParamValue(kv.slice(eq + 1));
        break;
      }
      case "--timeout": {
        const v = value();
        const t = Number(v);
        if (!Number.isFinite(t) || t < 0) {
          throw new NoiselabError(`reproduce: --timeout expects seconds >= 0, got "${v}"`, "--timeout");
        }
        timeout = t;
        break;
      }
      case "--out":
        outDir = value();
        break;
      case "--notebooks":
        notebooksDir = value();
        break;
      case "-h":
      case "--help":
        throw new NoiselabError(REPRODUCE_USAGE, "help");
      default:
        throw new NoiselabError(`reproduce: unknown argument "${a}"\n${REPRODUCE_USAGE}`, a);
    }
  }
  if (!PROFILE_NAMES.includes(profile as ProfileName)) {
    throw new NoiselabError(
      `reproduce: --profile must be one of ${PROFILE_NAMES.join(", ")}, got "${profile}"`,
      "--profile",
    );
  }
  return {
    profile: profile as ProfileName,
    only,
    params,
    timeout: timeout ?? DEFAULT_CELL_TIMEOUT[profile as ProfileName],
    outDir,
    notebooksDir,
  };
}

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
    env: { NO_COLOR: "1", NOISELAB_PUBLISH: "1", NOISELAB_RUN_MANIFEST: join(opts.outDir, `${nb.stem}.manifest.json`) },
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
        if (inRepo) out.push(`${nb.path} is not committed; its results cannot be reproduced from the repository`);
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

/**
 * The `reproduce` command. Bad arguments or parameter values raise a
 * NoiselabError before any notebook runs. Returns the exit code: 0 when every
 * selected notebook ran without error, 1 otherwise.
 */
export async function reproduce(argv: string[]): Promise<number> {
  const opts = parseReproduceArgs(argv);
  const all = await listNotebooks(opts.notebooksDir);
  const selected = opts.only
    ? all.filter((n) => opts.only!.includes(n.id) || opts.only!.includes(n.stem))
    : all;
  if (opts.only) {
    const missing = opts.only.filter((o) => !all.some((n) => n.id === o || n.stem === o));
    if (missing.length) {
      throw new NoiselabError(
        `reproduce: --only names unknown notebook(s) ${missing.join(", ")} (have: ${
          all.map((n) => n.id).join(", ")
        })`,
        "--only",
      );
    }
  }
  if (!selected.length) {
    throw new NoiselabError(`reproduce: no notebooks in ${opts.notebooksDir}`, opts.notebooksDir);
  }
  // Validate every override against every notebook before running anything.
  const plans: { nb: NotebookFile; params: Record<string, unknown> }[] = [];
  const used = new Set<string>();
  for (const nb of selected) {
    const declared = await parameterNames(nb.path);
    if (!("profile" in declared)) {
      throw new NoiselabError(
        `reproduce: ${nb.path} has no 'profile' in its cell tagged 'parameters'`,
        nb.path,
      );
    }
    const params: Record<string, unknown> = { profile: opts.profile };
    for (const [k, v] of Object.entries(opts.params)) {
      if (k in declared) {
        params[k] = v;
        used.add(k);
      }
    }
    if ((NOTEBOOK_IDS as readonly string[]).includes(nb.id)) {
      const { profile: _p, ...rest } = params;
      resolveParams(nb.id as NotebookId, opts.profile, rest); // throws NoiselabError on a bad value
    }
    plans.push({ nb, params });
  }
  const unused = Object.keys(opts.params).filter((k) => !used.has(k));
  if (unused.length) {
    throw new NoiselabError(
      `reproduce: parameter(s) ${unused.join(", ")} not declared by any selected notebook`,
      "-p",
    );
  }
  for (const w of await uncommittedNotebooks(selected)) console.error(`[reproduce] warning: ${w}`);
  const runs: RunRecord[] = [];
  for (const { nb, params } of plans) {
    console.error(`[reproduce] ${nb.stem} (profile ${opts.profile}) ...`);
    const r = await runNotebook(nb, { params, timeout: opts.timeout, outDir: opts.outDir });
    if (r.kernelLeft) {
      r.error = `${r.error ?? ""}\nkernel process was still running after the runner exited (killed)`.trim();
      if (r.status === "ok") r.status = "dead";
    }
    runs.push(r);
    console.error(
      `[reproduce] ${nb.stem}: ${r.status} in ${r.seconds.toFixed(1)} s` +
        (r.error ? `: ${r.error.split("\n").slice(-1)[0]}` : ""),
    );
    await writeIndex(opts.outDir, runs, opts.profile);
  }
  const index = await writeIndex(opts.outDir, runs, opts.profile);
  const failed = runs.filter((r) => r.status !== "ok");
  console.error(`[reproduce] ${runs.length - failed.length}/${runs.length} notebooks ok; index: ${index}`);
  return failed.length ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await reproduce(Deno.args));
  } catch (e) {
    if (e instanceof NoiselabError) {
      console.error(e.message);
      Deno.exit(2);
    }
    throw e;
  }
}
