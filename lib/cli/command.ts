/**
 * What a CLI command is. Each command is one module of `lib/cli/` exporting
 * `name`, `summary`, `usage` and `run` (so the module itself is a
 * {@link Command}); `lib/cli/main.ts` lists them in `COMMANDS`, the one list
 * that dispatch and `noiselab help` read.
 *
 * ```ts
 * // lib/cli/hello.ts
 * export const name = "hello";
 * export const summary = "print a greeting";
 * export const usage = "usage: noiselab hello";
 * export function run(argv: string[]): Promise<number> {
 *   console.log("hello", ...argv);
 *   return Promise.resolve(0);
 * }
 * // lib/cli/main.ts: import * as hello from "./hello.ts"; and add `hello` to COMMANDS
 * ```
 * @module
 */

/** A command of the noiselab CLI. */
export interface Command {
  /** The word after `noiselab` (`noiselab <name> ...`). */
  readonly name: string;
  /** One line for the command list of `noiselab help`. */
  readonly summary: string;
  /** The command's help text (`noiselab help <name>`, `noiselab <name> --help`). */
  readonly usage: string;
  /**
   * Runs the command with the arguments after its name and resolves to the exit code.
   * Bad input throws a `NoiselabError` naming the flag or file (main prints it, exit 2),
   * before any work is done; any other error exits 1.
   */
  run(argv: string[]): Promise<number>;
}
