/**
 * `noiselab models` (architectures, and with --stored the trained models) and
 * `noiselab data` (a data set's counts, statistics and checksums).
 * @module
 */
import { describeDataset, loadDataset } from "../data/mod.ts";
import { modelInfo, modelNames } from "../models/mod.ts";
import { listStoredModels } from "../train/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { parseFlags } from "./args.ts";
import { COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, pct, printJson } from "./format.ts";

/** Help text of `models`. */
export const MODELS_USAGE = `usage: noiselab models [--stored] [--json]
Lists the architectures (parameters with all BN, BN layers); any resnet<6n+2>
depth is accepted too. --stored lists the trained models in results/models/.`;

/** Run `models`. */
export async function modelsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("models", argv, {
    ...COMMON_OPTIONS,
    stored: { type: "boolean" },
  });
  if (values.help) return (console.log(MODELS_USAGE), 0);
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
  }
  return 0;
}

/** Help text of `data`. */
export const DATA_USAGE =
  `usage: noiselab data [--dataset cifar10|cifar100] [--source auto|jpeg|binary] [--data-dir DIR] [--json]
Loads a data set and prints its source, class counts, channel statistics and file checksums.`;

/** Run `data`. */
export async function dataCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("data", argv, {
    ...COMMON_OPTIONS,
    dataset: { type: "string" },
    source: { type: "string" },
  });
  if (values.help) return (console.log(DATA_USAGE), 0);
  if (positionals.length) throw unexpectedArgument("data", positionals[0]);
  const dataset = (values.dataset as string | undefined) ?? "cifar10";
  const source = (values.source as string | undefined) ?? "auto";
  let ds;
  try {
    ds = await loadDataset({
      dataset: dataset as "cifar10",
      source: source as "auto",
      dataDir: values["data-dir"] as string | undefined,
    });
  } catch (e) {
    if (e instanceof NoiselabError && (e.subject === "dataset" || e.subject === "source")) {
      throw new NoiselabError("--" + e.message, "--" + e.subject);
    }
    throw e;
  }
  const d = describeDataset(ds);
  if (values.json) {
    printJson(d);
    return 0;
  }
  console.log(`${d.name}: ${d.sourceLabel} (source ${d.source}, data id ${d.dataId})`);
  console.log(`train ${d.train.n} images, test ${d.test.n} images, ${d.numClasses} classes`);
  console.log(
    `channel mean ${d.stats.mean.map((v) => v.toFixed(4)).join(", ")}; std ${
      d.stats.std.map((v) => v.toFixed(4)).join(", ")
    }`,
  );
  if (d.numClasses <= 20) {
    console.log(formatTable(
      ["class", "name", "train", "test"],
      d.classNames.map((n, i) => [i, n, d.train.perClass[i], d.test.perClass[i]]),
    ));
  }
  console.log(formatTable(["file", "sha256"], d.files.map((f) => [f.path, f.sha256])));
  return 0;
}
