/**
 * `noiselab models`: the architectures, and with --stored the trained models.
 * @module
 */
import { modelInfo, modelNames } from "../models/mod.ts";
import { listStoredModels } from "../train/mod.ts";
import { parseFlags } from "./args.ts";
import { COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, pct, printJson } from "./format.ts";

/** The command's name. */
export const name = "models";

/** One line for `noiselab help`. */
export const summary = "list architectures (--stored: trained models in results/models/)";

/** Help text of `models`. */
export const usage = `usage: noiselab models [--stored] [--json]
Lists the architectures (parameters with all BN, BN layers); any resnet<6n+2>
depth is accepted too. --stored lists the trained models in results/models/.`;

/** Run `models`. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("models", argv, {
    ...COMMON_OPTIONS,
    stored: { type: "boolean" },
  });
  if (values.help) return (console.log(usage), 0);
  if (positionals.length) throw unexpectedArgument("models", positionals[0]);
  if (values.stored) {
    const metas = await listStoredModels();
    if (values.json) {
      for (const m of metas) {
        printJson({
          id: m.id,
          model: m.config.model,
          bn: m.config.bn,
          cleanAccuracy: m.cleanAccuracy,
          config: m.config,
          provenance: m.provenance,
        });
      }
    } else {
      console.log(formatTable(
        ["id", "model", "bn", "width", "epochs", "train", "seed", "clean acc", "data"],
        metas.map((
          m,
        ) => [
          m.id,
          m.config.model,
          JSON.stringify(m.config.bn),
          m.config.width ?? "default",
          m.config.epochs,
          m.config.trainSize,
          m.config.seed,
          pct(m.cleanAccuracy),
          m.provenance.dataId,
        ]),
      ));
    }
    return 0;
  }
  const infos = modelNames().map((n) => modelInfo(n));
  if (values.json) {
    for (const i of infos) {
      printJson({
        name: i.name,
        arch: i.arch,
        depth: i.depth,
        params: i.params,
        paramsNoBN: i.paramsNoBN,
        bnLayers: i.bnLayers,
      });
    }
  } else {
    console.log(formatTable(
      ["model", "arch", "depth", "params (BN)", "params (no BN)", "BN layers"],
      infos.map((i) => [i.name, i.arch, i.depth, i.params, i.paramsNoBN, i.bnLayers]),
    ));
    console.log("(any ResNet depth 6n+2 is accepted too: resnet8, resnet14, ...)");
  }
  return 0;
}
