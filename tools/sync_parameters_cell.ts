/**
 * Write the derived `parameters` cell (lib/notebook/params_cell.ts) into every
 * notebook under notebooks/, leaving every other cell as it is. The notebooks
 * are the source (edit them in Jupyter); only the shared parameters cell is
 * derived, from one list of knobs, so that all notebooks declare the same knobs
 * in the same way. test/notebook_params.test.ts fails when a notebook's cell
 * differs. Output format is nbformat's (sorted keys, indent 1, sources as line
 * lists), so a run that changes nothing leaves the files byte-identical.
 *
 * Usage: deno run -A tools/sync_parameters_cell.ts [--check]
 */
import { join } from "node:path";
import { listNotebooks } from "../lib/cli/notebook_runner.ts";
import { parametersCellSource } from "../lib/notebook/params_cell.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { writeFileAtomic } from "../lib/util/fs.ts";

/** nbformat's JSON: keys sorted at every level, indent 1, non-ASCII kept. */
function nbformatJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === "object"
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])]))
      : x;
  return JSON.stringify(sort(v), null, 1) + "\n";
}

/** A source string as nbformat stores it: lines keeping their "\n". */
function splitLines(s: string): string[] {
  return s.split(/(?<=\n)/).filter((l) => l.length > 0);
}

const check = Deno.args.includes("--check");
let stale = 0;
for (const f of await listNotebooks(join(projectRoot, "notebooks"))) {
  const text = await Deno.readTextFile(f.path);
  const nb = JSON.parse(text);
  const cell = nb.cells.find((c: { metadata?: { tags?: string[] } }) => c.metadata?.tags?.includes("parameters"));
  if (!cell) throw new Error(`${f.path}: no cell tagged "parameters"`);
  cell.source = splitLines(parametersCellSource(f.id));
  const out = nbformatJson(nb);
  if (out === text) continue;
  stale++;
  if (check) console.error(`${f.path}: parameters cell out of date`);
  else {
    await writeFileAtomic(f.path, out);
    console.error(`wrote ${f.path}`);
  }
}
if (check && stale) Deno.exit(1);
