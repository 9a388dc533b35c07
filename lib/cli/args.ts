/**
 * Argument parsing for the CLI: `node:util`'s `parseArgs` (strict) with
 * errors turned into NoiselabErrors naming the flag, plus the mapping of every
 * training config knob to a `--kebab-case` flag.
 * @module
 */
import { parseArgs } from "node:util";
import { NoiselabError } from "../util/errors.ts";
import { DEFAULT_TRAIN_CONFIG, TRAIN_CONFIG_KEYS, type TrainConfig } from "../train/config.ts";

/** Option table in `parseArgs` form. */
export type OptionTable = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/** `stepMilestones` -> `step-milestones`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Parse `argv` strictly; unknown flags / missing values become a NoiselabError naming the flag. */
export function parseFlags(
  command: string,
  argv: string[],
  options: OptionTable,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  // `--eta -1`: parseArgs refuses values that start with a dash; join negative numbers to their flag
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = argv[i + 1];
    const name = a.startsWith("--") ? a.slice(2) : undefined;
    if (name && options[name]?.type === "string" && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs(
      {
        args,
        options,
        strict: true,
        allowPositionals: true,
        allowNegative: true,
        tokens: true,
      } as Parameters<typeof parseArgs>[0],
    );
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'(-{1,2}[^' ]+)/.exec(msg)?.[1] ?? "argument";
    let why = msg.split(". ")[0];
    if (/Unknown option/.test(msg)) why = `unknown option for '${command}' (see: noiselab help ${command})`;
    else if (/argument missing/.test(msg)) why = "needs a value";
    else if (/ambiguous/.test(msg)) why = `a value starting with '-' must be written as ${flag}=VALUE`;
    else if (/does not take an argument/.test(msg)) {
      why = `is a switch and takes no value (write ${flag}, or --no-${flag.slice(2)} for off)`;
    }
    throw new NoiselabError(`${flag}: ${why}`, flag);
  }
  // a value flag given twice (`--eta 0.1 ... --eta 0.2`) would silently keep the last one
  const seen = new Map<string, string>();
  for (const t of (parsed as { tokens?: { kind: string; name?: string; value?: string }[] }).tokens ?? []) {
    if (t.kind !== "option" || !t.name || options[t.name]?.type !== "string" || options[t.name].multiple) {
      continue;
    }
    if (seen.has(t.name)) {
      throw new NoiselabError(
        `--${t.name}: given more than once ('${seen.get(t.name)}' and '${t.value}'); give it once`,
        `--${t.name}`,
      );
    }
    seen.set(t.name, t.value ?? "");
  }
  return {
    values: parsed.values as Record<string, string | boolean | undefined>,
    positionals: parsed.positionals,
  };
}

/** A NoiselabError for a flag value. */
export function flagError(flag: string, why: string): NoiselabError {
  return new NoiselabError(`--${flag}: ${why}`, `--${flag}`);
}

/** Decimal notation only: `Number()` would also take `0x10`, `0b1`, `0o7` and `Infinity`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Parse a number flag written in decimal notation (the config validation checks ranges later). */
export function numberFlag(flag: string, raw: string): number {
  const t = raw.trim();
  const v = Number(t);
  if (!DECIMAL.test(t) || !Number.isFinite(v)) throw flagError(flag, `expected a number, got '${raw}'`);
  return v;
}

/** Parse a comma-separated list of numbers. */
export function numberListFlag(flag: string, raw: string): number[] {
  if (raw.trim() === "") return [];
  return raw.split(",").map((s) => numberFlag(flag, s));
}

/** Parse `--bn`: all | none | a count | comma-separated indices (`0,3,5`, or `[0]` for a single index). */
export function bnFlag(raw: string): TrainConfig["bn"] {
  const t = raw.trim();
  if (t === "all" || t === "none") return t;
  if (/^\d+$/.test(t)) return Number(t);
  const list = t.replace(/^\[|\]$/g, "");
  if (/^\d+(,\d+)*$/.test(list) && (t.includes(",") || t.startsWith("["))) return list.split(",").map(Number);
  throw flagError("bn", `expected all, none, a count or a list of indices like 0,3,5; got '${raw}'`);
}

/** Parse a boolean given as a value (`true/false/yes/no/1/0`). */
export function boolValue(flag: string, raw: string): boolean {
  const t = raw.trim().toLowerCase();
  if (["true", "yes", "1", "on"].includes(t)) return true;
  if (["false", "no", "0", "off"].includes(t)) return false;
  throw flagError(flag, `expected true or false, got '${raw}'`);
}

/** The parseArgs option table of every training knob (`--train-size`, `--nesterov` / `--no-nesterov`, ...). */
export function trainOptionTable(): OptionTable {
  const out: OptionTable = {};
  for (const k of TRAIN_CONFIG_KEYS) {
    out[kebab(k)] = { type: typeof DEFAULT_TRAIN_CONFIG[k] === "boolean" ? "boolean" : "string" };
  }
  return out;
}

/** Turn parsed training flags into a partial config (types converted; ranges are checked by resolveTrainConfig). */
export function trainFlagsToConfig(
  values: Record<string, string | boolean | undefined>,
): Partial<TrainConfig> {
  const cfg: Record<string, unknown> = {};
  for (const k of TRAIN_CONFIG_KEYS) {
    const flag = kebab(k);
    const raw = values[flag];
    if (raw === undefined) continue;
    const def = DEFAULT_TRAIN_CONFIG[k];
    if (typeof raw === "boolean") cfg[k] = raw;
    else if (k === "bn") cfg[k] = bnFlag(raw);
    else if (k === "width") cfg[k] = raw === "default" ? null : numberFlag(flag, raw);
    else if (Array.isArray(def)) cfg[k] = numberListFlag(flag, raw);
    else if (typeof def === "number") cfg[k] = numberFlag(flag, raw);
    else cfg[k] = raw.trim();
  }
  return cfg as Partial<TrainConfig>;
}

/** Rewrite a config NoiselabError (`lr: ...`) so that it names the CLI flag (`--lr: ...`). */
export function asFlagError(e: unknown): unknown {
  if (
    e instanceof NoiselabError && e.subject && (TRAIN_CONFIG_KEYS as readonly string[]).includes(e.subject)
  ) {
    const flag = `--${kebab(e.subject)}`;
    const rest = e.message.startsWith(e.subject + ":")
      ? e.message.slice(e.subject.length + 1)
      : " " + e.message;
    return new NoiselabError(`${flag}:${rest}`, flag);
  }
  return e;
}
