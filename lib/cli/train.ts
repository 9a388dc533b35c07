/**
 * `noiselab train`: train (or load from the store) one model.
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import {
  DEFAULT_TRAIN_CONFIG,
  resolveTrainConfig,
  TRAIN_CONFIG_CHOICES,
  TRAIN_CONFIG_KEYS,
} from "../train/config.ts";
import { terminalProgress } from "../train/progress.ts";
import { TrainingAborted, trainOrLoad } from "../train/mod.ts";
import { asFlagError, kebab, parseFlags, trainFlagsToConfig, trainOptionTable } from "./args.ts";
import { backendFlag, COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, pct, printJson } from "./format.ts";

/** The command's name. */
export const name = "train";

/** One line for `noiselab help`. */
export const summary = "train a model, or load it when already stored (every config knob is a flag)";

function trainUsage(): string {
  const knobs = TRAIN_CONFIG_KEYS.map((k) => {
    const d = DEFAULT_TRAIN_CONFIG[k];
    const flag = typeof d === "boolean" ? `--[no-]${kebab(k)}` : `--${kebab(k)}`;
    // the allowed values of a knob with a fixed set: the list the validation uses (lib/train/config.ts)
    const choices = k in TRAIN_CONFIG_CHOICES
      ? TRAIN_CONFIG_CHOICES[k as keyof typeof TRAIN_CONFIG_CHOICES]
      : undefined;
    return `  ${flag.padEnd(22)} default ${JSON.stringify(d)}${
      choices ? `; one of ${choices.join(", ")}` : ""
    }`;
  }).join("\n");
  return `usage: noiselab train [--model resnet20] [--bn all|none|<count>|<i,j,...>] [--epochs E] ... [--json]
Trains a model (or loads it when results/models/<id>/ already holds it; an
interrupted run resumes from its last epoch checkpoint).
Every training knob is a flag:
${knobs}
Other flags:
  --json                 one JSON object on stdout (progress on stderr)
  --backend NAME         auto|onednn|wasm|cpu|tensorflow (default: $NOISELAB_BACKEND or auto; "noiselab" = onednn)
  --data-dir DIR         data folder (default data/ or $NOISELAB_DATA_DIR)
Results go to $NOISELAB_RESULTS_DIR/models/<id>/ (default results/models/<id>/).`;
}

/** Help text of `train`: every training config knob as a flag, with its default. */
export const usage: string = trainUsage();

/** Run `train`. Returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("train", argv, { ...trainOptionTable(), ...COMMON_OPTIONS });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length) throw unexpectedArgument("train", positionals[0]);
  let cfg;
  const asked = trainFlagsToConfig(values);
  try {
    cfg = resolveTrainConfig(asked);
  } catch (e) {
    throw asFlagError(e);
  }
  for (const [k, flag] of [["shortcut", "--shortcut"], ["residualInit", "--residual-init"]] as const) {
    if (asked[k] !== undefined && asked[k] !== cfg[k]) {
      console.error(`[noiselab] ${flag} applies to ResNets only; ${cfg.model} ignores it`);
    }
  }
  const backend = backendFlag(values);
  await initBackend(backend);
  const json = Boolean(values.json);
  const bar = terminalProgress({ label: cfg.model });
  // Ctrl-C stops between steps; the last epoch's checkpoint stays and the same command resumes
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  let t;
  try {
    t = await trainOrLoad(cfg, {
      onProgress: bar,
      dataDir: values["data-dir"] as string | undefined,
      signal: ac.signal,
    });
  } catch (e) {
    if (e instanceof TrainingAborted) {
      bar.stop();
      console.error(`noiselab train: ${e.message}; run the same command again to resume`);
      return 130;
    }
    throw e;
  } finally {
    bar.stop();
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  if (!t) return 1;
  if (json) {
    printJson({
      id: t.id,
      cleanAccuracy: t.cleanAccuracy,
      path: t.path,
      loaded: t.loaded,
      config: t.config,
      provenance: t.provenance,
      history: t.history,
    });
    return 0;
  }
  console.log(
    `${t.loaded ? "loaded" : "trained"} ${t.config.model} (bn ${JSON.stringify(t.config.bn)}) id ${t.id}`,
  );
  console.log(
    `clean accuracy ${
      pct(t.cleanAccuracy)
    } on ${t.provenance.testSize} test images of ${t.provenance.sourceLabel}`,
  );
  console.log(`stored in ${t.path}`);
  // a reduction layout other than the default 2 threads (NOISELAB_REDUCTION_THREADS) changes the weights and the id
  const layout = /reduction_threads=(\d+)/.exec(t.provenance.backend.detail ?? "")?.[1];
  const layoutNote = layout && layout !== "2" ? ` (reduction layout of ${layout} threads)` : "";
  console.log(
    `provenance: data ${t.provenance.dataId}, seed ${t.provenance.seed}, backend ${t.provenance.backend.name}${layoutNote}, ` +
      `lib ${t.provenance.libVersion}, config ${t.provenance.configHash}, ${
        t.provenance.wallSeconds.toFixed(1)
      } s`,
  );
  if (t.history.length) {
    console.log(formatTable(
      ["epoch", "loss", "train acc", "test acc", "lr", "img/s", "seconds"],
      t.history.map((
        h,
      ) => [
        h.epoch,
        h.loss,
        pct(h.trainAccuracy),
        pct(h.testAccuracy),
        h.lr.toExponential(2),
        Math.round(h.imagesPerSec),
        h.seconds,
      ]),
    ));
  }
  return 0;
}
