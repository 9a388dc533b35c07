/**
 * `noiselab reproduce [--profile smoke|quick|standard|paper] [--only 01,02]
 *  [-p name=value ...] [--timeout SECONDS]`: execute the notebooks headless on
 * the real Deno Jupyter kernel (one notebook at a time through
 * lib/cli/notebook_runner.ts), save executed copies + HTML exports under
 * `results/notebooks/` with the index page (lib/cli/index_page.ts), and exit
 * non-zero when any cell errors or times out.
 * @module
 */
import { join } from "node:path";
import { NOTEBOOK_IDS, PROFILE_NAMES, type ProfileName, resolveParams } from "../notebook/profiles.ts";
import type { NotebookId } from "../notebook/profiles.ts";
import { NoiselabError } from "../util/errors.ts";
import { projectRoot, resultsDir } from "../util/paths.ts";
import { writeIndex } from "./index_page.ts";
import {
  listNotebooks,
  type NotebookFile,
  parameterNames,
  runNotebook,
  type RunRecord,
  uncommittedNotebooks,
} from "./notebook_runner.ts";

/** The command's name. */
export const name = "reproduce";

/** One line for `noiselab help`. */
export const summary = "run the notebooks of a profile (smoke|quick|standard|paper) into results/notebooks/";

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

/** Help text of `reproduce`. */
export const usage =
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
        throw new NoiselabError(`reproduce: ${flag} needs a value\n${usage}`, flag);
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
        throw new NoiselabError(usage, "help");
      default:
        throw new NoiselabError(`reproduce: unknown argument "${a}"\n${usage}`, a);
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

/** Run `reproduce` (`-h`/`--help`: print {@link usage}). */
export function run(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(usage);
    return Promise.resolve(0);
  }
  return reproduce(argv);
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
        (r.error ? `: ${r.error.split("\n")[0]}` : ""),
    );
    await writeIndex(opts.outDir, runs, opts.profile);
  }
  const index = await writeIndex(opts.outDir, runs, opts.profile);
  const failed = runs.filter((r) => r.status !== "ok");
  console.error(`[reproduce] ${runs.length - failed.length}/${runs.length} notebooks ok; index: ${index}`);
  return failed.length ? 1 : 0;
}
