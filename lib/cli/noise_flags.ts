/**
 * The `noise` command's sweep flags, derived from lib/noise's `SweepConfig`
 * (as lib/cli/args.ts derives `train`'s from `TrainConfig`): one flag per
 * config field, `--kebab-case` of the field unless the CLI's historical name
 * differs (`--eta`, `--fold-bn`, `--recalibrate-bn`), booleans as switches
 * (`--[no-]fold-bn`). Deprecated spellings stay accepted as aliases
 * (`--form` for `--noise-type`). Values are converted here; ranges and names
 * are checked by lib/noise `resolveSweepConfig` (the one validation), whose
 * errors are renamed to the flag the user typed.
 * @module
 */
import {
  DEFAULT_SWEEP_CONFIG,
  type NoiseTarget,
  resolveSweepConfig,
  SWEEP_CONFIG_DOCS,
  SWEEP_CONFIG_KEYS,
  type SweepConfig,
} from "../noise/mod.ts";
import { parseInferenceTime } from "../noise/models/pcm.ts";
import { NoiselabError } from "../util/errors.ts";
import { flagError, kebab, numberFlag, numberListFlag, type OptionTable } from "./args.ts";

/** Flag names that are not the field's kebab-case (the CLI's names since its first version). */
const FLAG_NAMES: Partial<Record<keyof SweepConfig, string>> = {
  etas: "eta",
  foldBN: "fold-bn",
  recalibrateBatches: "recalibrate-bn",
};

/** Deprecated flags still accepted: alias → the field it sets, with the note printed when it is used. */
export const DEPRECATED_SWEEP_FLAGS: Readonly<Record<string, { field: keyof SweepConfig; note: string }>> = {
  form: {
    field: "noiseType",
    note: "--form is deprecated: use --noise-type (the field's term: noise type); --form keeps working",
  },
};

/** The flag (without dashes) of a sweep config field. */
export function sweepFlagName(field: keyof SweepConfig): string {
  return FLAG_NAMES[field] ?? kebab(field);
}

/** The parseArgs option table of every sweep config field, plus the deprecated aliases. */
export function sweepOptionTable(): OptionTable {
  const out: OptionTable = {};
  for (const k of SWEEP_CONFIG_KEYS) {
    out[sweepFlagName(k)] = { type: typeof DEFAULT_SWEEP_CONFIG[k] === "boolean" ? "boolean" : "string" };
  }
  for (const [alias, { field }] of Object.entries(DEPRECATED_SWEEP_FLAGS)) {
    out[alias] = out[sweepFlagName(field)];
  }
  return out;
}

/** Help lines of the sweep flags (default of each field from DEFAULT_SWEEP_CONFIG, doc from SWEEP_CONFIG_DOCS). */
export function sweepFlagsUsage(): string {
  const lines = SWEEP_CONFIG_KEYS.map((k) => {
    const d = DEFAULT_SWEEP_CONFIG[k];
    const flag = typeof d === "boolean" ? `--[no-]${sweepFlagName(k)}` : `--${sweepFlagName(k)}`;
    // etas is required, testSize's doc says its default (the model's own test subset)
    const def = d === null || (Array.isArray(d) && d.length === 0)
      ? ""
      : ` (default ${Array.isArray(d) ? d.join(",") : String(d)})`;
    return `  ${flag.padEnd(26)} ${SWEEP_CONFIG_DOCS[k]}${def}`;
  });
  const aliases = Object.entries(DEPRECATED_SWEEP_FLAGS).map(([a, { field }]) =>
    `  --${a.padEnd(24)} deprecated alias of --${sweepFlagName(field)}`
  );
  return [...lines, ...aliases].join("\n");
}

/** Parsed sweep flags: one partial config per target group, and which deprecated aliases were used. */
export interface SweepFlags {
  /** `--targets a,b+c` gives two sweeps: [a] and [b, c]; without `--targets`, one sweep with the default. */
  partials: Partial<SweepConfig>[];
  /** Deprecated aliases given (e.g. ["form"]). */
  deprecated: string[];
  /** The flag each field was given with (for error messages naming what the user typed). */
  flagOf: Partial<Record<keyof SweepConfig, string>>;
}

/**
 * Convert parsed flag values into partial sweep configs (types only: ranges, names and the
 * "at least one η > 0" rule are checked by {@link resolveSweepFlags}). Giving both a field's flag
 * and its deprecated alias is an error naming both.
 * @throws NoiselabError naming the flag
 */
export function sweepFlagsToConfigs(values: Record<string, string | boolean | undefined>): SweepFlags {
  const cfg: Record<string, unknown> = {};
  const flagOf: Partial<Record<keyof SweepConfig, string>> = {};
  const deprecated: string[] = [];
  const raws: [keyof SweepConfig, string, string | boolean][] = [];
  for (const k of SWEEP_CONFIG_KEYS) {
    const flag = sweepFlagName(k);
    if (values[flag] !== undefined) raws.push([k, flag, values[flag]!]);
  }
  for (const [alias, { field }] of Object.entries(DEPRECATED_SWEEP_FLAGS)) {
    if (values[alias] === undefined) continue;
    if (values[sweepFlagName(field)] !== undefined) {
      throw flagError(alias, `give --${sweepFlagName(field)} or its deprecated alias --${alias}, not both`);
    }
    deprecated.push(alias);
    raws.push([field, alias, values[alias]!]);
  }
  let groups: NoiseTarget[][] | undefined;
  for (const [k, flag, raw] of raws) {
    flagOf[k] = flag;
    if (typeof raw === "boolean") cfg[k] = raw;
    else if (k === "etas") cfg[k] = numberListFlag(flag, raw);
    else if (k === "targets") {
      groups = raw.split(",").map((g) => g.trim()).filter(Boolean).map((g) =>
        g.split("+").map((t) => t.trim()) as NoiseTarget[]
      );
      if (groups.length === 0) throw flagError(flag, "expected at least one target");
    } else if (k === "testSize" && ["model", "default"].includes(raw.trim())) cfg[k] = null;
    else if (k === "inferenceTime") cfg[k] = parseInferenceTime(raw, `--${flag}`);
    else if (typeof DEFAULT_SWEEP_CONFIG[k] === "number" || k === "testSize") cfg[k] = numberFlag(flag, raw);
    else cfg[k] = raw.trim();
  }
  const partials = (groups ?? [undefined]).map((targets) =>
    (targets ? { ...cfg, targets } : { ...cfg }) as Partial<SweepConfig>
  );
  return { partials, deprecated, flagOf };
}

/**
 * Rewrite a sweep config NoiselabError (`etas: ...`) so that it names the flag the user typed
 * (`--eta: ...`; `--form: ...` when the deprecated alias was used).
 */
export function asSweepFlagError(
  e: unknown,
  flagOf: Partial<Record<keyof SweepConfig, string>> = {},
): unknown {
  if (!(e instanceof NoiselabError) || !e.subject) return e;
  const field = e.subject as keyof SweepConfig;
  if (!(SWEEP_CONFIG_KEYS as readonly string[]).includes(field)) return e;
  const flag = `--${flagOf[field] ?? sweepFlagName(field)}`;
  const rest = e.message.startsWith(`${field}:`) ? e.message.slice(field.length + 1) : ` ${e.message}`;
  // the resolver's messages name fields; on the command line they are flags
  const text = rest.replace(/\bfoldBN\b/g, "--fold-bn");
  return new NoiselabError(`${flag}:${text}`, flag);
}

/**
 * Parse and validate the sweep flags: one resolved `SweepConfig` per target group, every value
 * checked by lib/noise `resolveSweepConfig` before any model or data is loaded.
 * @throws NoiselabError naming the flag
 */
export function resolveSweepFlags(
  values: Record<string, string | boolean | undefined>,
): { configs: SweepConfig[]; deprecated: string[] } {
  const { partials, deprecated, flagOf } = sweepFlagsToConfigs(values);
  try {
    return { configs: partials.map((p) => resolveSweepConfig(p)), deprecated };
  } catch (e) {
    throw asSweepFlagError(e, flagOf);
  }
}
