/**
 * `noiselab noise`: Monte Carlo weight-noise sweep of a stored model.
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import { backendInfo, initBackend } from "../backend/mod.ts";
import { loadDataset } from "../data/mod.ts";
import { resolveScoringRule, SCORING_RULES } from "../models/predict.ts";
import {
  checkEta,
  checkNoisyEtas,
  noiseSweep,
  type NoiseTarget,
  resolveNoiseSpec,
  type SweepResult,
  sweepSelection,
} from "../noise/mod.ts";
import { SPLIT_SIZES } from "../train/config.ts";
import { loadStoredModel, testData, trainData } from "../train/mod.ts";
import { NoiselabError } from "../util/errors.ts";
import { flagError, numberFlag, numberListFlag, parseFlags } from "./args.ts";
import { backendFlag, COMMON_OPTIONS, unexpectedArgument } from "./common.ts";
import { formatTable, pct, printJson } from "./format.ts";

/** Help text of `noise`. */
export const NOISE_USAGE =
  `usage: noiselab noise --model <id> --eta 0.1,0.2 [--draws 10] [--targets kernels,...]
                      [--form additive-std] [--fold-bn] [--recalibrate-bn K] [--seed S] [--test-size N]
                      [--scoring argmax-numpy|nonfinite-wrong] [--json]
Adds Gaussian noise to a stored model's weights (results/models/<id>/) and
measures test accuracy, --draws times per noise level.
  --model ID             id (or folder) of a trained model (see: noiselab models --stored)
  --eta LIST             noise levels, comma-separated, each >= 0, at least one > 0 (required)
  --draws K              Monte Carlo draws per level (default 10)
  --targets LIST         comma-separated sweeps; each kernels|biases|bn-affine|bn-mean|bn-var|all,
                         or several joined with + for one combined sweep (default kernels)
  --form F               additive-std (sigma = eta*std(W)) | additive-max | multiplicative (default additive-std)
  --fold-bn              fold BN into the convs before adding noise
  --recalibrate-bn K     re-estimate BN statistics after noise from K batches of training images
  --seed S               noise seed (default 0); draw k of eta e uses the stream "S:e:k"
  --test-size N          test images (default: the model's own test subset)
  --batch-size N         inference batch size (default 500)
  --scoring RULE         how a logits row with NaN/Inf is scored: argmax-numpy (default; NumPy/Keras
                         argmax: the first NaN wins, so an all-NaN row predicts class 0, as in the
                         paper) | nonfinite-wrong (such a row counts as wrong). The table shows the
                         share of images with non-finite logits ("non-finite") beside the accuracy.
  --json                 JSON lines on stdout: {"type":"row",...} per draw, then {"type":"summary",...}
                         per level, then {"type":"result",...} per target (progress on stderr)`;

const SOURCE_OF: Record<string, "jpeg" | "binary"> = {
  "cifar10-jpeg": "jpeg",
  "cifar10-binary": "binary",
  "cifar100-binary": "binary",
};

function intFlag(flag: string, raw: string | undefined, def: number, min: number): number {
  if (raw === undefined) return def;
  const v = numberFlag(flag, raw);
  if (!Number.isInteger(v) || v < min) throw flagError(flag, `expected an integer >= ${min}, got '${raw}'`);
  return v;
}

/** Run `noise`. */
export async function noiseCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("noise", argv, {
    ...COMMON_OPTIONS,
    model: { type: "string" },
    eta: { type: "string" },
    draws: { type: "string" },
    targets: { type: "string" },
    form: { type: "string" },
    "fold-bn": { type: "boolean" },
    "recalibrate-bn": { type: "string" },
    seed: { type: "string" },
    "test-size": { type: "string" },
    "batch-size": { type: "string" },
    scoring: { type: "string" },
  });
  if (values.help) return (console.log(NOISE_USAGE), 0);
  if (positionals.length) throw unexpectedArgument("noise", positionals[0]);

  // ---- validate everything before loading anything
  const modelArg = values.model as string | undefined;
  if (!modelArg) {
    throw flagError("model", "required: the id of a trained model (see: noiselab models --stored)");
  }
  const etaRaw = values.eta as string | undefined;
  if (etaRaw === undefined) {
    throw flagError("eta", "required: comma-separated noise levels, e.g. --eta 0.1,0.2");
  }
  const etas = numberListFlag("eta", etaRaw);
  if (etas.length === 0) throw flagError("eta", "expected at least one noise level");
  for (const e of etas) {
    try {
      checkEta(e);
    } catch {
      throw flagError("eta", `each noise level must be a finite number >= 0, got ${e}`);
    }
  }
  try {
    checkNoisyEtas(etas);
  } catch {
    throw flagError("eta", `needs at least one noise level > 0 (the average is over eta > 0), got ${etaRaw}`);
  }
  let scoring;
  try {
    scoring = resolveScoringRule(values.scoring as string | undefined);
  } catch {
    throw flagError("scoring", `unknown scoring rule '${values.scoring}'; use ${SCORING_RULES.join(", ")}`);
  }
  const draws = intFlag("draws", values.draws as string | undefined, 10, 1);
  const recal = intFlag("recalibrate-bn", values["recalibrate-bn"] as string | undefined, 0, 0);
  const batchSize = intFlag("batch-size", values["batch-size"] as string | undefined, 500, 1);
  const seed = intFlag("seed", values.seed as string | undefined, 0, 0);
  const groups = String(values.targets ?? "kernels").split(",").map((g) => g.trim()).filter(Boolean);
  if (groups.length === 0) throw flagError("targets", "expected at least one target");
  const specs = groups.map((g) => {
    try {
      return resolveNoiseSpec({
        form: (values.form as string | undefined ?? "additive-std") as never,
        targets: g.split("+").map((t) => t.trim()) as NoiseTarget[],
        foldBN: Boolean(values["fold-bn"]),
        recalibrateBN: recal,
      });
    } catch (e) {
      if (e instanceof NoiselabError && e.subject) {
        throw flagError(e.subject, e.message.replace(/^\w+: /, ""));
      }
      throw e;
    }
  });
  if (recal > 0 && values["fold-bn"]) {
    throw flagError("recalibrate-bn", "cannot be combined with --fold-bn (the folded model has no BN)");
  }
  let stored;
  try {
    stored = await loadStoredModel(modelArg);
  } catch (e) {
    if (e instanceof NoiselabError && e.subject === "model") {
      throw flagError("model", e.message.replace(/^model: /, ""));
    }
    throw e;
  }
  const cfg = stored.meta.config;
  for (const spec of specs) {
    try {
      // a target that selects nothing fails before any data is loaded (the message names the model)
      sweepSelection(stored.model, spec, `model ${stored.id}`);
    } catch (e) {
      if (e instanceof NoiselabError && e.subject === "targets") {
        throw flagError("targets", e.message.replace(/^targets: /, ""));
      }
      throw e;
    }
  }
  const testSize = intFlag("test-size", values["test-size"] as string | undefined, cfg.testSize, 1);
  if (testSize > SPLIT_SIZES[cfg.dataset].test) {
    throw flagError(
      "test-size",
      `${testSize} is larger than the ${cfg.dataset} test split (${SPLIT_SIZES[cfg.dataset].test})`,
    );
  }
  const backend = backendFlag(values);

  // ---- work
  await initBackend(backend);
  const prov = stored.meta.provenance;
  const ds = await loadDataset({
    dataset: cfg.dataset,
    source: SOURCE_OF[prov.source] ?? cfg.source,
    dataDir: values["data-dir"] as string | undefined,
  });
  if (ds.dataId !== prov.dataId) {
    throw new NoiselabError(
      `data: the model was trained on data ${prov.dataId} but the data folder now holds ${ds.dataId}`,
      "data",
    );
  }
  const test = testData({ testSize, subsetSeed: cfg.subsetSeed }, ds, stored.meta.normalization);
  const calib = recal > 0 ? trainData(cfg, ds, stored.meta.normalization) : undefined;
  const label = `${ds.sourceLabel}, test subset ${test.n} (subset seed ${cfg.subsetSeed})`;

  const results: SweepResult[] = [];
  const tty = Boolean(process.stderr.isTTY);
  for (const spec of specs) {
    const target = spec.targets.join("+");
    let bar: cliProgress.SingleBar | undefined;
    const res = await noiseSweep(stored.model, { x: test.x, labels: test.labels, label }, {
      etas,
      draws,
      spec,
      seed,
      modelId: stored.id,
      batchSize,
      scoring,
      recalibrateBN: calib
        ? { x: calib.x, batches: recal, label: `${ds.sourceLabel}, training subset` }
        : undefined,
      onProgress: (p) => {
        if (tty) {
          if (!bar) {
            bar = noiseProgressBar(target);
            bar.start(p.total, 0, noiseBarPayload(p.eta, p.draw, "-"));
          }
          bar.update(p.done, noiseBarPayload(p.eta, p.draw, pct(p.accuracy)));
        } else if (p.draw === draws - 1) {
          process.stderr.write(`noise ${target}: eta ${p.eta} done (${p.done}/${p.total})\n`);
        }
      },
    });
    bar?.stop();
    results.push(res);
  }

  const backendDesc = backendInfo();
  if (values.json) {
    for (const r of results) for (const row of r.rows) printJson({ type: "row", ...row });
    for (const r of results) for (const s of r.summary) printJson({ type: "summary", ...s });
    for (const r of results) {
      printJson({
        type: "result",
        modelId: stored.id,
        target: r.provenance.spec.targets.join("+"),
        form: r.provenance.spec.form,
        scoring: r.provenance.scoring,
        cleanAccuracy: r.cleanAccuracy,
        cleanNonFiniteShare: r.cleanNonFiniteShare,
        averageNormalizedAccuracy: r.averageNormalizedAccuracy,
        provenance: { ...r.provenance, backend: backendDesc, model: prov },
      });
    }
    return 0;
  }
  console.log(
    `model ${stored.id}: ${cfg.model} bn ${JSON.stringify(cfg.bn)}, trained clean accuracy ${
      pct(stored.meta.cleanAccuracy)
    }`,
  );
  console.log(
    `data: ${label}; noise seed ${seed}, ${draws} draws per level, backend ${backendDesc.name}, ` +
      `scoring ${scoring}`,
  );
  for (const r of results) {
    const sp = r.provenance.spec;
    console.log(
      `\ntarget ${sp.targets.join("+")}, form ${sp.form}${sp.foldBN ? ", BN folded" : ""}` +
        `${sp.recalibrateBN ? `, BN recalibrated (${sp.recalibrateBN} batches)` : ""}; clean ${
          pct(r.cleanAccuracy)
        } (non-finite ${pct(r.cleanNonFiniteShare)})`,
    );
    console.log(formatTable(
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
    console.log(
      `non-finite = share of test images whose logits are not all finite (NaN/Inf), scored by "${r.provenance.scoring}"`,
    );
    console.log(`average normalized accuracy: ${pct(r.averageNormalizedAccuracy)}`);
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
