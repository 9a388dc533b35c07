/**
 * `noiselab help [command]`: the overview (built from the command list) or one
 * command's help text.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import type { Command } from "./command.ts";

/** The overview `noiselab help` prints: every command of `commands` with its summary. */
export function overview(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const list = commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n");
  return `noiselab — how Gaussian weight noise hurts CIFAR models with and without BatchNorm

usage: noiselab <command> [flags]      (deno task noiselab ..., or tools/noiselab ...)

commands:
${list}

tools/noiselab also runs: test (the test suite), bench (the engine vs PyTorch benchmark).
--json (where a command has it) prints JSON only on stdout (progress on stderr).
Exit codes: 0 ok, 2 bad input (one line on stderr names the parameter or file), 1 other failure.
Environment: NOISELAB_RESULTS_DIR, NOISELAB_DATA_DIR, NOISELAB_BACKEND, NOISELAB_THREADS;
  engine (README "Compute backends and the engine"): NOISELAB_REDUCTION_THREADS (changes ids),
  NOISELAB_LAYER_FUSION=0 (BN + ReLU unfused; same bits), NOISELAB_PLAN_CHUNK, NOISELAB_AUTOTUNE.`;
}

/**
 * The `help` command over a command list (a function, so that the list may include this command).
 * `help` prints {@link overview}; `help <name>` that command's `usage`; an unknown name is bad input.
 */
export function helpCommand(commands: () => readonly Command[]): Command {
  return {
    name: "help",
    summary: "this text; help <command>: that command's flags",
    usage: "usage: noiselab help [command]\nPrints the list of commands, or a command's flags.",
    run(argv: string[]): Promise<number> {
      const list = commands();
      const topic = argv[0];
      if (topic === undefined || topic === "-h" || topic === "--help") {
        console.log(overview(list));
        return Promise.resolve(0);
      }
      const cmd = list.find((c) => c.name === topic);
      if (!cmd) {
        throw new NoiselabError(
          `unknown command '${topic}' (commands: ${list.map((c) => c.name).join(", ")})`,
          "command",
        );
      }
      console.log(cmd.usage);
      return Promise.resolve(0);
    },
  };
}
