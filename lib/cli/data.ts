/**
 * `noiselab data`: a data set's counts, channel statistics and checksums.
 * @module
 */
import { describeDataset, loadDataset } from "../data/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { parseFlags } from "./args.ts";
import { COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, printJson } from "./format.ts";

/** The command's name. */
export const name = "data";

/** One line for `noiselab help`. */
export const summary = "describe a data set (counts, channel statistics, checksums)";

/** Help text of `data`. */
export const usage =
  `usage: noiselab data [--dataset cifar10|cifar100] [--source auto|jpeg|binary] [--data-dir DIR] [--json]
Loads a data set and prints its source, class counts, channel statistics and file checksums.`;

/** Run `data`. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("data", argv, {
    ...COMMON_OPTIONS,
    dataset: { type: "string" },
    source: { type: "string" },
  });
  if (values.help) return (console.log(usage), 0);
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
