/**
 * Flags shared by the CLI commands.
 * @module
 */
import { canonicalBackendName } from "../backend/mod.ts";
import type { BackendName } from "../backend/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import type { OptionTable } from "./args.ts";

/** `--json`, `--help`, `--backend`, `--data-dir`. */
export const COMMON_OPTIONS: OptionTable = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  backend: { type: "string" },
  "data-dir": { type: "string" },
};

const BACKENDS = ["auto", "tensorflow", "onednn", "wasm", "cpu"];

/** The `--backend` value, validated (undefined = env / auto). */
export function backendFlag(values: Record<string, unknown>): BackendName | "auto" | undefined {
  const b = typeof values.backend === "string" ? canonicalBackendName(values.backend) : values.backend;
  if (b === undefined) return undefined;
  if (typeof b !== "string" || !BACKENDS.includes(b)) {
    throw new NoiselabError(`--backend: expected one of ${BACKENDS.join(", ")}, got '${b}'`, "--backend");
  }
  return b as BackendName | "auto";
}

/** Error for a stray positional argument. */
export function unexpectedArgument(command: string, arg: string): NoiselabError {
  return new NoiselabError(`unexpected argument '${arg}' (see: noiselab help ${command})`, arg);
}
