/**
 * `noiselab noise`: Monte Carlo weight-noise sweep of a stored model, in three
 * parts: {@link parseNoiseArgs} (flags → validated request, before any work;
 * the sweep's flags come from lib/noise `SweepConfig`: lib/cli/noise_flags.ts),
 * {@link runNoise} (load the model and data, check the request against the
 * model, run one sweep per target group) and {@link formatNoiseText} /
 * {@link noiseJsonLines} (the output).
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import { backendInfo, type BackendName, initBackend } from "../backend/mod.ts";
import { loadDataset } from "../data/mod.ts";
import {
  noiseSpecOf,
  noiseSweep,
  resolveFastPath,
  type SweepConfig,
  sweepData,
  sweepOptionsFor,
  type SweepResult,
  sweepSelection,
} from "../noise/mod.ts";
import { loadStoredModel, type ModelMeta, SPLIT_SIZES } from "../train/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { flagError, parseFlags } from "./args.ts";
import { backendFlag, COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, pct, printJson } from "./format.ts";
import {
  asSweepFlagError,
  DEPRECATED_SWEEP_FLAGS,
  resolveSweepFlags,
  sweepFlagsUsage,
  sweepOptionTable,
} from "./noise_flags.ts";

/** Help text of `noise`. */
export const NOISE_USAGE =
  `usage: noiselab noise --model <id> --eta 0.1,0.2 [--draws 10] [--targets kernels,...]
                      [--noise-type additive-std] [--fold-bn] [--recalibrate-bn K] [--seed S] [--test-size N]
                      [--scoring argmax-numpy|nonfinite-wrong] [--json]
Adds weight noise to a stored model's weights (results/models/<id>/): Gaussian
forms, or PCM-like inference noise (--noise-type pcm --inference-time 1h
[--drift-compensation] [--pcm-mapping per-channel], η = 1 the nominal device;
lib/noise/models/pcm.ts), with
BN analog, digital or folded (--bn-placement), and measures test accuracy,
--draws times per noise level η. Every knob of the sweep (lib/noise SweepConfig) is a flag:
${sweepFlagsUsage()}
  --targets takes comma-separated sweeps, each a target or several joined with + for one
  combined sweep (kernels,bn-mean+bn-var: two sweeps). --recalibrate-bn K re-estimates the BN
  statistics per draw from K x --recalibrate-batch-size training images: a class-stratified
  subset of the full training split drawn with seed "recal:S" (lib/noise calibrationImages,
  the notebooks' rule too). --scoring argmax-numpy is NumPy/Keras argmax (the first NaN wins,
  so an all-NaN row predicts class 0, as in the paper); nonfinite-wrong counts such a row as
  wrong. The table shows the share of images with non-finite logits ("non-finite").
Other flags:
  --model ID                 id (or folder) of a trained model (see: noiselab models --stored) (required)
  --json                     JSON lines on stdout: {"type":"row",...} per draw, then {"type":"summary",...}
                             per level, then {"type":"result",...} per target (progress on stderr)
  --backend NAME             auto|onednn|wasm|cpu|tensorflow (default: $NOISELAB_BACKEND or auto; "noiselab" = onednn)
  --data-dir DIR             data folder (default data/ or $NOISELAB_DATA_DIR)`;

const SOURCE_OF: Record<string, "jpeg" | "binary"> = {
  "cifar10-jpeg": "jpeg",
  "cifar10-binary": "binary",
  "cifar100-binary": "binary",
};

/** A validated `noise` request: everything checked that can be checked without the model. */
export interface NoiseRequest {
  /** Id (or folder) of the stored model. */
  model: string;
  /** One resolved sweep configuration per target group of `--targets`. */
  configs: SweepConfig[];
  backend: BackendName | "auto" | undefined;
  dataDir: string | undefined;
  json: boolean;
  /** Deprecated flag aliases that were used (their notes are printed on stderr by the command). */
  deprecated: string[];
}

/**
 * Parse and validate `noise`'s flags (no model or data is touched). Returns
 * "help" for `--help`.
 * @throws NoiselabError naming the flag
 */
export function parseNoiseArgs(argv: string[]): NoiseRequest | "help" {
  const { values, positionals } = parseFlags("noise", argv, {
    ...COMMON_OPTIONS,
    model: { type: "string" },
    ...sweepOptionTable(),
  });
  if (values.help) return "help";
  if (positionals.length) throw unexpectedArgument("noise", positionals[0]);
  const model = values.model as string | undefined;
  if (!model) throw flagError("model", "required: the id of a trained model (see: noiselab models --stored)");
  const { configs, deprecated } = resolveSweepFlags(values);
  return {
    model,
    configs,
    backend: backendFlag(values),
    dataDir: values["data-dir"] as string | undefined,
    json: Boolean(values.json),
    deprecated,
  };
}

/** What {@link runNoise} measured. */
export interface NoiseRun {
  modelId: string;
  meta: ModelMeta;
  /** The test data's provenance label. */
  dataLabel: string;
  configs: SweepConfig[];
  /** One result per config, in order. */
  results: SweepResult[];
}

/** Rename a NoiselabError about the model (`model: ...`) or a config field to the flag. */
function asModelFlagError(e: unknown): unknown {
  if (e instanceof NoiselabError && e.subject === "model") {
    return flagError("model", e.message.replace(/^model: /, ""));
  }
  return asSweepFlagError(e);
}

/**
 * Load the stored model, check every sweep against it (targets that select
 * nothing, a test size beyond the split: before any data is loaded), load the
 * data, and run one sweep per config with the same images (lib/noise
 * `sweepData`: the model's test subset, calibration images by the one rule).
 * @throws NoiselabError naming the flag / model / file
 */
export async function runNoise(req: NoiseRequest): Promise<NoiseRun> {
  let stored;
  try {
    stored = await loadStoredModel(req.model);
  } catch (e) {
    throw asModelFlagError(e);
  }
  const cfg = stored.meta.config;
  for (const config of req.configs) {
    try {
      // a target that selects nothing fails before any data is loaded (the message names the model)
      sweepSelection(stored.model, noiseSpecOf(config), `model ${stored.id}`);
    } catch (e) {
      throw asModelFlagError(e);
    }
    if (config.recalibrateBatches > 0 && stored.meta.provenance.bnLayers === 0) {
      // re-estimating BN statistics of a model without BN would change nothing and report that it did
      throw flagError(
        "recalibrate-bn",
        `model ${stored.id} has no BatchNorm layer, so there are no BN statistics to re-estimate`,
      );
    }
    const testSize = config.testSize ?? cfg.testSize;
    if (testSize > SPLIT_SIZES[cfg.dataset].test) {
      throw flagError(
        "test-size",
        `${testSize} is larger than the ${cfg.dataset} test split (${SPLIT_SIZES[cfg.dataset].test})`,
      );
    }
  }

  await initBackend(req.backend);
  const prov = stored.meta.provenance;
  const ds = await loadDataset({
    dataset: cfg.dataset,
    source: SOURCE_OF[prov.source] ?? cfg.source,
    dataDir: req.dataDir,
  });
  if (ds.dataId !== prov.dataId) {
    throw new NoiselabError(
      `data: the model was trained on data ${prov.dataId} but the data folder now holds ${ds.dataId}`,
      "data",
    );
  }
  const model = { config: cfg, normalization: stored.meta.normalization };
  const results: SweepResult[] = [];
  let dataLabel = "";
  const tty = Boolean(process.stderr.isTTY);
  // the bf16 fast path where it cannot run is fp32, and reported so (lib/noise resolveFastPath)
  const configs = req.configs.map(resolveFastPath);
  for (const config of configs) {
    let inputs;
    try {
      inputs = sweepData(config, ds, model);
    } catch (e) {
      throw asSweepFlagError(e);
    }
    const { test, calibration } = inputs;
    dataLabel = test.label;
    const target = config.targets.join("+");
    let bar: cliProgress.SingleBar | undefined;
    const onProgress = (p: { total: number; done: number; eta: number; draw: number; accuracy: number }) => {
      if (tty) {
        if (!bar) {
          bar = noiseProgressBar(target);
          bar.start(p.total, 0, noiseBarPayload(p.eta, p.draw, "-"));
        }
        bar.update(p.done, noiseBarPayload(p.eta, p.draw, pct(p.accuracy)));
      } else if (p.draw === config.draws - 1) {
        process.stderr.write(`noise ${target}: η ${p.eta} done (${p.done}/${p.total})\n`);
      }
    };
    try {
      results.push(
        await noiseSweep(
          stored.model,
          test,
          sweepOptionsFor(config, { modelId: stored.id, calibration, onProgress }),
        ),
      );
    } finally {
      bar?.stop();
    }
  }
  return { modelId: stored.id, meta: stored.meta, dataLabel, configs, results };
}

/** The `--json` output: a row object per draw, then a summary per level, then a result per sweep. */
export function noiseJsonLines(run: NoiseRun): Record<string, unknown>[] {
  const backendDesc = backendInfo();
  const out: Record<string, unknown>[] = [];
  for (const r of run.results) for (const row of r.rows) out.push({ type: "row", ...row });
  for (const r of run.results) for (const s of r.summary) out.push({ type: "summary", ...s });
  run.results.forEach((r, i) => {
    out.push({
      type: "result",
      modelId: run.modelId,
      target: r.provenance.spec.targets.join("+"),
      form: r.provenance.spec.form,
      noiseType: r.provenance.spec.form,
      scoring: r.provenance.scoring,
      cleanAccuracy: r.cleanAccuracy,
      cleanNonFiniteShare: r.cleanNonFiniteShare,
      averageNormalizedAccuracy: r.averageNormalizedAccuracy,
      config: run.configs[i],
      provenance: { ...r.provenance, backend: backendDesc, model: run.meta.provenance },
    });
  });
  return out;
}

/**
 * The warning for a sweep whose clean model already gives non-finite logits (a diverged
 * model from an older store: training now refuses to store one), or null when it does not.
 */
export function cleanWarning(cleanNonFiniteShare: number): string | null {
  if (!(cleanNonFiniteShare > 0)) return null;
  return `warning: without noise the model's logits are already not all finite on ${
    pct(cleanNonFiniteShare)
  } of the test images, so its clean and normalized accuracies measure a broken model ` +
    `(non-finite weights? retrain it with a lower --lr)`;
}

/** The human-readable output: model and data lines, then per sweep a table by noise level. */
export function formatNoiseText(run: NoiseRun): string {
  const cfg = run.meta.config;
  const first = run.configs[0];
  // the evaluation path that ran (the configs are resolved: a bf16 request that fell back reads fp32)
  const fastPath = [...new Set(run.configs.map((c) => c.fastPath))].join("/");
  const out: string[] = [
    `model ${run.modelId}: ${cfg.model} bn ${JSON.stringify(cfg.bn)}, trained clean accuracy ${
      pct(run.meta.cleanAccuracy)
    }`,
    `data: ${run.dataLabel}; noise seed ${first.seed}, ${first.draws} draws per level, backend ${backendInfo().name}, ` +
    `fast path ${fastPath}, scoring ${first.scoring}`,
  ];
  for (const r of run.results) {
    const sp = r.provenance.spec;
    out.push(
      `\ntarget ${sp.targets.join("+")}, noise type ${sp.form}${
        sp.pcm
          ? ` at ${sp.pcm.tInference} s after programming${
            sp.pcm.driftCompensation ? ", drift compensated" : ""
          }${sp.pcm.mapping ? `, ${sp.pcm.mapping} mapping` : ""}`
          : ""
      }${sp.foldBN ? ", BN folded" : ""}${sp.digitalBN ? ", BN digital" : ""}${
        sp.clipSigma ? `, clipped at ${sp.clipSigma}·std(W)` : ""
      }` +
        `${sp.recalibrateBN ? `, BN re-estimated (${sp.recalibrateBN} batches)` : ""}; clean ${
          pct(r.cleanAccuracy)
        } (non-finite ${pct(r.cleanNonFiniteShare)})`,
    );
    out.push(formatTable(
      ["eta", "draws", "mean acc", "non-finite", "95% CI", "normalized"],
      r.summary.map((s) => [
        s.eta,
        s.draws,
        pct(s.mean),
        pct(s.nonFiniteShare),
        Number.isFinite(s.lo) ? `${pct(s.lo)} .. ${pct(s.hi)}` : "-",
        pct(s.normalizedMean),
      ]),
    ));
    out.push(
      `non-finite = share of test images whose logits are not all finite (NaN/Inf), scored by "${r.provenance.scoring}"`,
    );
    out.push(`average normalized accuracy: ${pct(r.averageNormalizedAccuracy)}`);
    const warning = cleanWarning(r.cleanNonFiniteShare);
    if (warning) out.push(warning);
  }
  return out.join("\n");
}

/** Run `noise`: parse, run, print. Returns the exit code (bad input throws a NoiselabError: exit 2). */
export async function noiseCommand(argv: string[]): Promise<number> {
  const req = parseNoiseArgs(argv);
  if (req === "help") return (console.log(NOISE_USAGE), 0);
  for (const alias of req.deprecated) console.error(`[noiselab] ${DEPRECATED_SWEEP_FLAGS[alias].note}`);
  const run = await runNoise(req);
  if (req.json) {
    // once: every target's clean evaluation is the same model's
    const warning = cleanWarning(Math.max(0, ...run.results.map((r) => r.cleanNonFiniteShare)));
    if (warning) console.error(`[noiselab] ${warning}`);
    for (const line of noiseJsonLines(run)) printJson(line);
  } else {
    console.log(formatNoiseText(run));
  }
  return 0;
}

/**
 * The `noise` command's terminal progress bar. The noise level goes into the payload as
 * `noiseLevel`: cli-progress reserves `{eta}` for its own time-to-finish estimate, which
 * overrode a payload field of that name (the bar showed seconds left where η belonged).
 */
export function noiseProgressBar(
  target: string,
  opts: { stream?: NodeJS.WritableStream; noTTYOutput?: boolean } = {},
): cliProgress.SingleBar {
  return new cliProgress.SingleBar({
    stream: opts.stream ?? process.stderr,
    noTTYOutput: opts.noTTYOutput ?? false,
    format: `noise ${target} {bar} {value}/{total} | η {noiseLevel} draw {draw} acc {acc}`,
  }, cliProgress.Presets.shades_classic);
}

/** The payload of {@link noiseProgressBar}: noise level η, draw index, accuracy text. */
export function noiseBarPayload(eta: number, draw: number, acc: string): Record<string, unknown> {
  return { noiseLevel: eta, draw, acc };
}
