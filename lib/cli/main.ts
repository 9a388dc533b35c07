/**
 * The noiselab command line: `deno task noiselab <command>` or
 * `tools/noiselab <command>`.
 *
 * Commands: models, train, noise, data, reproduce, help. With `--json`,
 * stdout carries JSON only (progress goes to stderr). Bad input (unknown
 * command/flag/model/dataset/target, bad values, missing or corrupt files)
 * prints one line naming the parameter or file on stderr and exits with code
 * 2, before any work and without leaving files behind. Other failures exit 1.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { DATA_USAGE, dataCommand, MODELS_USAGE, modelsCommand } from "./info.ts";
import { NOISE_USAGE, noiseCommand } from "./noise.ts";
import { trainCommand, trainUsage } from "./train.ts";

/** Top-level usage text. */
export const USAGE = `noiselab — how Gaussian weight noise hurts CIFAR models with and without BatchNorm

usage: noiselab <command> [flags]      (deno task noiselab ..., or tools/noiselab ...)

commands:
  models      list architectures (--stored: trained models in results/models/)
  train       train a model, or load it when already stored (every config knob is a flag)
  noise       Monte Carlo weight-noise sweep of a stored model
  data        describe a data set (counts, channel statistics, checksums)
  reproduce   run the notebooks of a profile (smoke|quick|standard|paper) into results/notebooks/
  help [cmd]  this text, or a command's flags

--json on models/train/noise/data prints JSON only on stdout (progress on stderr).
Exit codes: 0 ok, 2 bad input (one line on stderr names the parameter or file), 1 other failure.
Environment: NOISELAB_RESULTS_DIR, NOISELAB_DATA_DIR, NOISELAB_BACKEND, NOISELAB_THREADS.`;

const HELP: Record<string, () => string> = {
  models: () => MODELS_USAGE,
  train: trainUsage,
  noise: () => NOISE_USAGE,
  data: () => DATA_USAGE,
};

async function reproduceCommand(argv: string[]): Promise<number> {
  const mod = await import("../notebook/reproduce.ts");
  return await mod.reproduce(argv);
}

/** Run the CLI with `argv` (without the program name); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h": {
        const topic = rest[0];
        if (topic && !HELP[topic] && topic !== "reproduce") {
          throw new NoiselabError(
            `unknown command '${topic}' (commands: ${Object.keys(HELP).join(", ")}, reproduce)`,
          );
        }
        if (topic === "reproduce") {
          console.log((await import("../notebook/reproduce.ts")).REPRODUCE_USAGE);
          return 0;
        }
        console.log(topic ? HELP[topic]() : USAGE);
        return 0;
      }
      case "models":
        return await modelsCommand(rest);
      case "train":
        return await trainCommand(rest);
      case "noise":
        return await noiseCommand(rest);
      case "data":
        return await dataCommand(rest);
      case "reproduce":
        return await reproduceCommand(rest);
      default:
        throw new NoiselabError(
          `unknown command '${command}' (commands: models, train, noise, data, reproduce, help)`,
          "command",
        );
    }
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
