/**
 * Argument parsing shared by `noiselab plan`, `worker` and `slurm`: flags with values
 * (`--flag v` or `--flag=v`), boolean flags, and `-p name=value` overrides parsed like
 * `reproduce`'s ({@link parseParamValue}).
 * @module
 */
import { NoiselabError } from "../util/errors.ts";

/** Parsed arguments: flag values by name (without dashes), booleans as true, and the -p overrides. */
export interface StudyArgs {
  values: Record<string, string>;
  flags: Set<string>;
  params: Record<string, unknown>;
}

/**
 * Parse `argv` for command `cmd`: `valued` flags take a value, `booleans` take none; `-p`/`--param`
 * collects overrides. Unknown flags or missing values raise a NoiselabError naming them (exit 2).
 */
export function parseStudyArgs(
  cmd: string,
  argv: string[],
  valued: string[],
  booleans: string[],
  usage: string,
): StudyArgs {
  const out: StudyArgs = { values: {}, flags: new Set(), params: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new NoiselabError(`${cmd}: ${flag} needs a value\n${usage}`, flag);
      return v;
    };
    if (flag === "-p" || flag === "--param") {
      const kv = value();
      const k = kv.indexOf("=");
      if (k <= 0) throw new NoiselabError(`${cmd}: -p expects name=value, got "${kv}"`, "-p");
      const name = kv.slice(0, k).trim();
      if (name === "profile") throw new NoiselabError(`${cmd}: use --profile, not -p profile=...`, "-p");
      out.params[name] = parseParamValue(kv.slice(k + 1));
    } else if (valued.includes(flag.slice(2)) && flag.startsWith("--")) {
      out.values[flag.slice(2)] = value();
    } else if (booleans.includes(flag.slice(2)) && flag.startsWith("--") && inline === undefined) {
      out.flags.add(flag.slice(2));
    } else {
      throw new NoiselabError(`${cmd}: unknown argument "${a}"\n${usage}`, a);
    }
  }
  return out;
}

/** A positive integer flag value (NoiselabError naming the flag otherwise). */
export function positiveInt(cmd: string, flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new NoiselabError(`${cmd}: --${flag} expects a positive integer, got "${v}"`, `--${flag}`);
  }
  return n;
}

/** Parse one `-p` value as `reproduce` does: JSON when it parses, a comma list (elements parsed the same way), else a string. */
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
