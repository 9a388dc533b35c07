/**
 * The noiselab command line: `deno task noiselab <command>` or
 * `tools/noiselab <command>`.
 *
 * Every command is a module of `lib/cli/` exporting `name`, `summary`,
 * `usage` and `run` (lib/cli/command.ts), listed once in {@link COMMANDS}:
 * dispatch and `noiselab help` both read that list. With `--json`, stdout
 * carries JSON only (progress goes to stderr). Bad input (unknown
 * command/flag/model/dataset/target, bad values, missing or corrupt files)
 * prints one line naming the parameter or file on stderr and exits with code
 * 2, before any work and without leaving files behind. Other failures exit 1.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import * as data from "./data.ts";
import { helpCommand } from "./help.ts";
import * as models from "./models.ts";
import * as plan from "./plan.ts";
import { NOISE_USAGE, noiseCommand } from "./noise.ts";
import * as reproduce from "./reproduce.ts";
import * as slurm from "./slurm.ts";
import * as train from "./train.ts";
import * as worker from "./worker.ts";

// lib/cli/noise.ts is being reworked (issue #10 item 3); until it exports name/summary/usage/run
// itself like the other command modules, this entry adapts it.
const noise: Command = {
  name: "noise",
  summary: "Monte Carlo weight-noise sweep of a stored model",
  usage: NOISE_USAGE,
  run: noiseCommand,
};

/** Every command, in the order `noiselab help` lists them: the one list for dispatch and help. */
export const COMMANDS: readonly Command[] = [
  models,
  train,
  noise,
  data,
  reproduce,
  plan,
  worker,
  slurm,
  helpCommand(() => COMMANDS),
];

/** The command called `name`, or undefined. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Run the CLI with `argv` (without the program name); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // no command, -h and --help ask for the overview
  const name = command === undefined || command === "-h" || command === "--help" ? "help" : command;
  try {
    const cmd = findCommand(name);
    if (!cmd) {
      throw new NoiselabError(
        `unknown command '${command}' (commands: ${COMMANDS.map((c) => c.name).join(", ")})`,
        "command",
      );
    }
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof NoiselabError) {
      console.error(`noiselab ${command ?? ""}: ${e.message}`.replace(/\s+:/, ":"));
      return 2;
    }
    console.error(
      `noiselab ${command ?? ""}: error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
