#!/usr/bin/python3
"""Write notebooks/*.ipynb from the cell sources below (outputs empty).

The notebooks are committed; this script is how they are edited consistently
(same parameters cell everywhere, same imports). Run: /usr/bin/python3 tools/build_notebooks.py
"""
import os
import textwrap

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


PARAMS = [
    # (name, TS type, comment)
    ("dataset", "string | null", '"cifar10" | "cifar100"'),
    ("source", "string | null", '"auto" | "jpeg" | "binary"'),
    ("models", "string[] | null", 'architectures, e.g. ["resnet20", "vgg11"]'),
    ("width", "number | Record<string, number> | null", "base width: one number, or per model {vgg11: 32} (default ResNet 16, VGG 64)"),
    ("shortcut", "string | null", '"projection" (Keras ResNet v1, the paper\'s) | "A" (He et al., parameter-free)'),
    ("residualInit", "string | null", '"scaled" | "zero": init of a BN-free ResNet branch\'s last conv'),
    ("bnEpsilon", "number | null", "BN epsilon (Keras 1e-3, PyTorch 1e-5)"),
    ("bnMomentum", "number | null", "BN moving-average momentum (Keras 0.99, PyTorch 0.9)"),
    ("trainSize", "number | null", "training images (stratified subset of the 50 000)"),
    ("testSize", "number | null", "test images for clean accuracy and noise sweeps"),
    ("epochs", "number | null", None),
    ("batchSize", "number | null", None),
    ("optimizer", "string | null", '"sgd" | "adam"'),
    ("lr", "number | null", "peak learning rate"),
    ("lrNoBN", "number | null", "peak learning rate of models without BN (null: lr)"),
    ("nesterov", "boolean | null", "SGD Nesterov momentum"),
    ("weightDecay", "number | null", "L2 on conv/dense kernels"),
    ("schedule", "string | null", '"constant" | "step" | "cosine" | "onecycle"'),
    ("labelSmoothing", "number | null", None),
    ("augment", "boolean | null", "pad-4 crop + flip"),
    ("seeds", "number[] | null", "training seeds: each model is trained once per seed"),
    ("etas", "number[] | null", "noise levels η: σ = η · std(W) per weight tensor"),
    ("draws", "number | null", "Monte Carlo noise draws per η"),
    ("noiseSeed", "number | null", None),
    ("noiseTargets", "string[] | null", 'default ["all"]: every stored array, BN statistics included'),
    ("noiseForm", "string | null", '"additive-std" | "additive-max" | "multiplicative"'),
    ("scoring", "string | null", '"argmax-numpy" (Keras/NumPy: all-NaN logits predict class 0) | "nonfinite-wrong"'),
    ("bnCounts", "number[] | null", "notebook 02: BN layer counts (null: 0, 1, 1/4, 1/2, 3/4, all)"),
    ("etasShown", "number[] | null", "notebook 02: η values in the BN-count chart"),
    ("recalibrateBatches", "number | null", "notebook 03: batches of 128 training images for BN re-estimation"),
    ("snapshots", "number | null", "trajectory snapshots per training run (notebook 05, matched-accuracy comparisons)"),
    ("minCleanAccuracy", "number | null", "findings are stated only for models at least this accurate (CIFAR-10)"),
    ("minCleanAccuracy100", "number | null", "the same threshold for CIFAR-100"),
    ("maxAccuracyGap", "number | null", "BN and no-BN twins count as matched within this clean-accuracy gap"),
    ("backend", "string | null", '"auto" | "noiselab" | "wasm" | "cpu"'),
]


def params_cell(nb_id):
    lines = []
    for name, typ, comment in PARAMS:
        line = f"const {name}: {typ} = null;"
        if comment:
            line += f" // {comment}"
        lines.append(line)
    names = "\n".join(textwrap.wrap(", ".join(n for n, _, _ in PARAMS) + ",", 100, initial_indent="  ", subsequent_indent="  "))
    return (
        """// Parameters (this cell is tagged `parameters`; `tools/noiselab reproduce -p name=value` overrides it).
// `profile` picks every default from lib/notebook/profiles.ts:
//   "smoke": pipeline check in seconds, models at chance level (numbers meaningless)
//   "quick": a reduced study sized for 2 CPU cores (the main job, about 20 minutes)
//   "standard": full training split, models trained to 90%+, three training seeds (many hours; resumable)
//   "paper": the paper's scale (ResNet-44/VGG-16, 200 epochs: days on a CPU)
// Every other knob left at null takes the profile's value; set it to override. The values are
// validated and resolved at the end of THIS cell: a bad value stops here, and a later cell that would
// use results of an earlier run of this cell refuses and says what to re-run.
import * as nb from "../lib/notebook/mod.ts";
import * as an from "../lib/analysis/mod.ts";

"""
        + 'const profile: string = "quick";\n'
        + "\n".join(lines)
        + f"""

const P = nb.parameters("{nb_id}", {{
  profile,
{names}
}});
"""
    )


def setup_cell(nb_id, explain=False):
    setup = "nb.setupStudyOrExplain(P)" if explain else "nb.setupStudy(P)"
    return f"""await an.showTable(nb.paramsTable(P), {{ caption: `Parameters in effect (profile ${{P.profile}})` }});
const setup = await {setup};
"""


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text, tags=None):
    c = nbformat.v4.new_code_cell(text.strip())
    if tags:
        c.metadata["tags"] = tags
    return c


def notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "deno", "display_name": "Deno (noiselab)", "language": "typescript"}
    nb.metadata["language_info"] = {
        "name": "typescript",
        "file_extension": ".ts",
        "mimetype": "text/x.typescript",
        "codemirror_mode": "typescript",
        "pygments_lexer": "typescript",
    }
    nb.cells = cells
    # deterministic cell ids keep diffs small
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    return nb


NB01 = notebook([
    md("""
# 01 · BatchNorm vs no BatchNorm under weight noise (CIFAR-10)

**What this reproduces.** Fagbohungbe & Qian (2022) train ResNet and VGG models with and without
BatchNorm (BN) on CIFAR-10, add Gaussian noise to the trained weights at inference (σ = η · std(W) per
weight tensor) and report that BN models lose far more accuracy: average normalized accuracy
ResNet44 41.32% (BN) vs 91.95% (no BN), VGG16 10.75% vs 93.80%.

**How to read it.** The first table lists the parameters in effect (the `parameters` cell picks a profile:
`smoke` only checks the pipeline, `quick` is a reduced study, `standard` trains to 90%+ with three seeds,
`paper` the full scale). Then: clean accuracies; accuracy, normalized accuracy (noisy / clean) and the share of
test images whose logits are not finite (NaN/Inf), each against the noise level η with 95% bands; the paper's
metric (average normalized accuracy over η > 0) beside the paper's numbers, **at the end of training and at
matched clean accuracy** (a BN model and its no-BN twin rarely end equally well trained, and normalized accuracy
depends on how well a model is trained); and an interpretation written from the numbers of *this* run, which
states a finding only when the intervals support it and the models are trained well enough.
A provenance line under every figure says which data, models (ids), seeds, noise draws, backend and CPU produced
it. Figures are also written to `results/figures/` (SVG, PNG, PDF), tables to `results/tables/` (CSV).
"""),
    code(params_cell("01"), tags=["parameters"]),
    code(setup_cell("01")),
    md("## Train (or load) the models\nEach architecture with all BN layers and with none, once per training seed; stored models are reused (`results/models/<id>`)."),
    code("""
const trained = await nb.trainVariants(P, nb.bnVariants(P.models), setup.dataset);
const trainProv = nb.studyProvenance(P, setup.dataset, trained);
await an.showTable(nb.cleanAccuracyTable(trained), { caption: "Clean test accuracy", provenance: trainProv });
"""),
    md("## Noise sweeps\nSame noise draws for every model (paired); results are cached in `results/sweeps/`."),
    code("""
const condition = nb.defaultCondition(P);
const sweeps: nb.VariantSweep[] = [];
for (const tv of trained) sweeps.push(await nb.sweepVariant(P, tv, condition, setup.dataset));
const summary = an.summarizeByEta(sweeps.flatMap((s) => s.rows), (r) => r.series);
const prov = nb.studyProvenance(P, setup.dataset, trained, { cached: sweeps.every((s) => s.fromCache) });
const summaryCsv = await an.exportTable(summary.map((s) => ({ ...s })), "01-sweep-summary", { provenance: prov });
await an.showMarkdown(nb.sweepsNote(sweeps, [summaryCsv]));
"""),
    code("""
const figAcc = an.accuracyVsEtaChart(summary, {
  chance: nb.chanceOf(setup.dataset),
  legendTitle: "model",
  subtitle: `CIFAR-10 test accuracy, ${P.draws} noise draws per η × ${P.seeds.length} training seed(s); shaded: 95% CI`,
  caption: prov,
});
await an.showFigure(figAcc, { files: await an.exportFigure(figAcc, "01-accuracy-vs-eta") });
const figNorm = an.normalizedVsEtaChart(summary, {
  legendTitle: "model",
  subtitle: "noisy accuracy / clean accuracy; shaded: 95% CI",
  caption: prov,
});
await an.showFigure(figNorm, { files: await an.exportFigure(figNorm, "01-normalized-vs-eta") });
const figNaN = an.nonFiniteVsEtaChart(summary, {
  legendTitle: "model",
  subtitle: "share of test images whose logits contain NaN or Inf (mean over draws)",
  caption: prov,
});
await an.showFigure(figNaN, { files: await an.exportFigure(figNaN, "01-nonfinite-vs-eta") });
"""),
    md("## At the end of training and at matched clean accuracy\nFor each architecture, the twin that ends better trained is also swept at its trajectory snapshot whose clean accuracy is closest to the other's final accuracy (same noise draws)."),
    code("""
const matched = await nb.matchedComparisons(P, sweeps, condition, setup.dataset);
const comparison = an.table(nb.bnComparisonRows(sweeps, P.dataset === "cifar10", matched));
await an.exportTable(comparison, "01-average-normalized-accuracy", { provenance: prov });
await an.showTable(comparison, {
  caption: `Average normalized accuracy over η ∈ {${P.etas.filter((e) => e > 0).join(", ")}} (ours) and the paper's`,
  provenance: prov,
});
await an.showMarkdown(nb.interpretBnComparison(sweeps, matched, {
  ...nb.trustOf(P, setup.dataset),
  chance: nb.chanceOf(setup.dataset),
  profile: P.profile,
  paper: P.dataset === "cifar10",
  scale: nb.scaleStatement(P),
  targets: P.noiseTargets,
  etas: P.etas,
}));
"""),
])

NB02 = notebook([
    md("""
# 02 · Normalized accuracy vs the number of BatchNorm layers

**What this reproduces.** The paper's second finding: the more BN layers a model has, the worse its noise
resistance. One architecture is trained several times with 0, a few, …, all of its BN layers (the first *k*
convolutions in forward order get BN; the others keep a bias), everything else equal.

**How to read it.** The chart shows normalized accuracy (noisy / clean) against the number of BN layers, one
line per noise level η, with 95% bands. The table lists every model's clean accuracy and average normalized
accuracy; the text states a trend only when every model is trained well enough, their clean accuracies are
close enough to compare, and the intervals support it.
"""),
    code(params_cell("02"), tags=["parameters"]),
    code(setup_cell("02")),
    code("""
const model = P.models[0];
const counts = nb.bnCountsFor(model, P.bnCounts);
const trained = await nb.trainVariants(P, nb.bnCountVariants(model, counts), setup.dataset);
await an.showTable(nb.cleanAccuracyTable(trained), {
  caption: `Clean test accuracy of ${nb.prettyModel(model)} with ${counts.join(", ")} BN layers`,
  provenance: nb.studyProvenance(P, setup.dataset, trained),
});
"""),
    code("""
const sweeps: nb.VariantSweep[] = [];
for (const tv of trained) sweeps.push(await nb.sweepVariant(P, tv, nb.defaultCondition(P), setup.dataset));
const prov = nb.studyProvenance(P, setup.dataset, trained, { cached: sweeps.every((s) => s.fromCache) });
const summary = an.summarizeByEta(sweeps.flatMap((s) => s.rows), (r) => String(r.bnLayers));
const points = summary.filter((s) => P.etasShown.includes(s.eta)).map((s) => ({
  bnLayers: Number(s.series), eta: s.eta, normalized: s.normalized, normalizedLo: s.normalizedLo, normalizedHi: s.normalizedHi,
}));
await an.exportTable(points.map((p) => ({ ...p })), "02-normalized-vs-bn-layers", { provenance: prov });
const figBn = an.bnCountChart(points, {
  subtitle: `${nb.prettyModel(model)}, ${P.draws} noise draws per η × ${P.seeds.length} training seed(s); shaded: 95% CI`,
  caption: prov,
});
await an.showFigure(figBn, { files: await an.exportFigure(figBn, "02-normalized-vs-bn-layers") });
"""),
    code("""
const countTable = an.table(nb.bnComparisonRows(sweeps, false));
await an.exportTable(countTable, "02-bn-layer-table", { provenance: prov });
await an.showTable(countTable, {
  caption: `Noise resistance vs number of BN layers (average over η ∈ {${P.etas.filter((e) => e > 0).join(", ")}})`,
  provenance: prov,
});
await an.showMarkdown(nb.interpretBnCount(sweeps, {
  ...nb.trustOf(P, setup.dataset),
  chance: nb.chanceOf(setup.dataset), profile: P.profile, scale: nb.scaleStatement({ ...P, models: [model] }), etas: P.etas,
}));
"""),
])

NB03 = notebook([
    md("""
# 03 · Where BatchNorm breaks: which stored arrays cause the damage

**What this adds to the paper.** The paper perturbs the trained models and concludes that BN hurts noise
resistance. But a BN layer stores four arrays — γ, β, the moving mean μ and the moving variance σ² — and noise on
σ² can make it negative (NaN outputs). Hardware would normally fold BN into the convolution weights or keep it
digital. Here the *same* trained BN models (notebook 01's, loaded from the store) are swept under conditions
named by exactly which arrays get noise, with the same noise draws throughout:

(a) kernels only · (b) kernels + BN γ, β · (c) kernels + BN γ, β, μ, σ² · (d) every stored array (kernels,
biases, BN γ, β, μ, σ² — the paper's likely setting) · (e) BN folded into the convolutions first, then noise on the
folded kernels only · (f) BN folded, noise on folded kernels and folded biases · (g) noise on every stored array,
then BN μ, σ² re-estimated on a few training batches. The no-BN twins get (a) and (d) as references, and the
kernel-only comparison is repeated at matched clean accuracy.

**How to read it.** One chart per model (normalized accuracy vs η per condition, 95% bands), a bar chart of
the average normalized accuracy per condition with the no-BN twin as reference, and a text that reports every
number and states a conclusion only when the intervals and the models' training support it.
"""),
    code(params_cell("03"), tags=["parameters"]),
    code(setup_cell("03")),
    code("""
const all = await nb.trainVariants(P, nb.bnVariants(P.models), setup.dataset);
const first = all.filter((v) => v.seed === P.seeds[0]); // attribution uses the first training seed
const bnModels = first.filter((v) => v.bnLayers > 0);
const noBnModels = first.filter((v) => v.bnLayers === 0);
const conditions = nb.attributionConditions(P);
const results: nb.VariantSweep[] = [];
for (const tv of bnModels) {
  for (const c of conditions) results.push(await nb.sweepVariant(P, tv, c, setup.dataset, { series: c.label }));
}
const refs: nb.VariantSweep[] = [];
for (const tv of noBnModels) {
  for (const c of nb.referenceConditions(P)) refs.push(await nb.sweepVariant(P, tv, c, setup.dataset, { series: c.label }));
}
const kernelsOnly = [...results, ...refs].filter((r) => r.condition.key === "kernels");
const matchedKernels = await nb.matchedComparisons(P, kernelsOnly, conditions[0], setup.dataset);
const prov = nb.studyProvenance(P, setup.dataset, first, {
  noise: `${P.noiseForm}, conditions ${conditions.map((c) => c.key).join("/")}`,
  cached: [...results, ...refs].every((s) => s.fromCache),
});
await an.showMarkdown(nb.sweepsNote([...results, ...refs, ...matchedKernels.filter((m) => m.matched.leader !== "none")
  .map((m) => (m.matched.leader === "bn" ? m.matched.bn : m.matched.noBn).sweep)]));
"""),
    code("""
for (const tv of bnModels) {
  const rows = [...results.filter((r) => r.variant === tv), ...refs.filter((r) => r.variant.model === tv.model)].flatMap((r) => r.rows);
  const summary = an.summarizeByEta(rows, (r) => r.series);
  const fig = an.attributionChart(summary, {
    title: `${tv.label}: which stored arrays break it under noise`,
    subtitle: `${P.draws} paired noise draws per η; shaded: 95% CI`,
    caption: prov,
  });
  await an.showFigure(fig, { files: await an.exportFigure(fig, `03-attribution-${tv.model}`) });
}
"""),
    code("""
const bars = [...results, ...refs].map((r) => {
  const ci = nb.avgNormalizedCI(r.result.rows);
  const twin = bnModels.find((b) => b.model === r.variant.model);
  return { label: r.condition.label, value: 100 * ci.mean, lo: 100 * ci.lo, hi: 100 * ci.hi, group: twin ? twin.label : r.variant.label, model: r.variant.label };
});
const figBars = an.barChart(bars, {
  title: "Average normalized accuracy per noise condition",
  subtitle: `mean over η ∈ {${P.etas.filter((e) => e > 0).join(", ")}}; error bars: 95% CI over paired draws`,
  xLabel: "average normalized accuracy (% of clean) →",
  legendTitle: "model",
  caption: prov,
});
await an.showFigure(figBars, { files: await an.exportFigure(figBars, "03-attribution-bars") });
const attrTable = an.table(bars.map((b) => ({
  model: b.model, condition: b.label, "avg. normalized acc. (%)": b.value,
  "95% CI": Number.isFinite(b.lo) ? `${b.lo.toFixed(1)}–${b.hi.toFixed(1)}` : "undefined (1 draw)",
})));
await an.exportTable(attrTable, "03-attribution", { provenance: prov });
await an.showTable(attrTable, { caption: "Average normalized accuracy per condition", provenance: prov });
"""),
    code("""
await an.showMarkdown(nb.interpretAttribution(
  bnModels.map((tv) => {
    const twin = noBnModels.find((n) => n.model === tv.model);
    const ref = (key: string) => refs.find((r) => r.variant === twin && r.condition.key === key)?.result.rows;
    return {
      model: tv.label,
      clean: { bn: tv.trained.cleanAccuracy, noBn: twin ? twin.trained.cleanAccuracy : NaN },
      conditions: results.filter((r) => r.variant === tv).map((r) => ({ key: r.condition.key, label: r.condition.label, rows: r.result.rows })),
      reference: { kernels: ref("kernels"), all: ref("all") },
      matchedKernels: matchedKernels.find((m) => m.bn.variant.model === tv.model),
    };
  }),
  {
    ...nb.trustOf(P, setup.dataset),
    chance: nb.chanceOf(setup.dataset), profile: P.profile, scale: nb.scaleStatement(P), etas: P.etas,
    nearChance: nb.nearChance([...results, ...refs], nb.chanceOf(setup.dataset)).filter((v, i, a) => a.indexOf(v) === i),
  },
));
"""),
])

NB04 = notebook([
    md("""
# 04 · The same study on CIFAR-100

**What this reproduces.** The paper's third finding: the BN vs no-BN gap also appears on CIFAR-100 (100
classes, chance 1%). This notebook repeats notebook 01 on CIFAR-100 (fine labels).

**Data.** The official CIFAR-100 binary files, vendored in `data/cifar100/` (byte-identical `train.bin` /
`test.bin`, sha256-verified on load); the official release placed in `data/` takes precedence.

**How to read it.** As in notebook 01: clean accuracies, accuracy, normalized accuracy and non-finite share vs η
with 95% bands, the average normalized accuracy at the end of training and at matched clean accuracy, and an
interpretation generated from the numbers (with CIFAR-100's own clean-accuracy threshold).
"""),
    code(params_cell("04"), tags=["parameters"]),
    code(setup_cell("04")),
    code("""
const trained = await nb.trainVariants(P, nb.bnVariants(P.models), setup.dataset);
await an.showTable(nb.cleanAccuracyTable(trained), {
  caption: "Clean test accuracy (CIFAR-100)", provenance: nb.studyProvenance(P, setup.dataset, trained),
});
"""),
    code("""
const condition = nb.defaultCondition(P);
const sweeps: nb.VariantSweep[] = [];
for (const tv of trained) sweeps.push(await nb.sweepVariant(P, tv, condition, setup.dataset));
const summary = an.summarizeByEta(sweeps.flatMap((s) => s.rows), (r) => r.series);
const prov = nb.studyProvenance(P, setup.dataset, trained, { cached: sweeps.every((s) => s.fromCache) });
const summaryCsv = await an.exportTable(summary.map((s) => ({ ...s })), "04-sweep-summary", { provenance: prov });
await an.showMarkdown(nb.sweepsNote(sweeps, [summaryCsv]));
"""),
    code("""
const figAcc = an.accuracyVsEtaChart(summary, {
  title: "CIFAR-100: test accuracy under weight noise",
  chance: nb.chanceOf(setup.dataset), legendTitle: "model",
  subtitle: `${P.draws} noise draws per η × ${P.seeds.length} training seed(s); shaded: 95% CI`, caption: prov,
});
await an.showFigure(figAcc, { files: await an.exportFigure(figAcc, "04-accuracy-vs-eta") });
const figNorm = an.normalizedVsEtaChart(summary, {
  title: "CIFAR-100: normalized accuracy under weight noise", legendTitle: "model",
  subtitle: "noisy / clean accuracy; shaded: 95% CI", caption: prov,
});
await an.showFigure(figNorm, { files: await an.exportFigure(figNorm, "04-normalized-vs-eta") });
const figNaN = an.nonFiniteVsEtaChart(summary, {
  title: "CIFAR-100: test images with non-finite logits", legendTitle: "model",
  subtitle: "share of test images whose logits contain NaN or Inf (mean over draws)", caption: prov,
});
await an.showFigure(figNaN, { files: await an.exportFigure(figNaN, "04-nonfinite-vs-eta") });
"""),
    code("""
const matched = await nb.matchedComparisons(P, sweeps, condition, setup.dataset);
const comparison = an.table(nb.bnComparisonRows(sweeps, false, matched));
await an.exportTable(comparison, "04-average-normalized-accuracy", { provenance: prov });
await an.showTable(comparison, {
  caption: `Average normalized accuracy over η ∈ {${P.etas.filter((e) => e > 0).join(", ")}} (CIFAR-100)`, provenance: prov,
});
await an.showMarkdown(nb.interpretBnComparison(sweeps, matched, {
  ...nb.trustOf(P, setup.dataset),
  chance: nb.chanceOf(setup.dataset), profile: P.profile, paper: false, scale: nb.scaleStatement(P),
  targets: P.noiseTargets, etas: P.etas,
}));
"""),
])

NB05 = notebook([
    md("""
# 05 · Robustness over training: BN vs no BN at matched clean accuracy

**Why.** A BN model and its BN-free twin trained with the same recipe end at different clean accuracies, and a
model's normalized accuracy depends on how well it is trained (it is bounded below by chance / clean accuracy).
Comparing them only at the end of training mixes "BN" with "trained less well". Every training run keeps
snapshots of its weights along the way (`snapshots` per run, with their clean accuracy); this notebook sweeps
every snapshot of a BN model and of its no-BN twin with the same noise draws and plots robustness against clean
accuracy: points at the same clean accuracy compare the two at matched accuracy.

**How to read it.** One chart per architecture: average normalized accuracy (over η > 0) against clean accuracy,
one line per variant in training order, 95% interval bars, each point labelled with its epochs; a chart of the
share of test images with non-finite logits along training; the table of every point; and a text that pairs
points of matched clean accuracy and states a finding only when those comparisons agree and the models are
trained well enough.
"""),
    code(params_cell("05"), tags=["parameters"]),
    code(setup_cell("05")),
    code("""
// one training seed: the trajectory of the first seed's models (shared with notebook 01 when the parameters match)
const trained = await nb.trainVariants(nb.withParameters(P, { seeds: [P.seeds[0]] }), nb.bnVariants(P.models), setup.dataset);
const condition = nb.defaultCondition(P);
const trajectories: nb.TrajectoryInput[] = [];
for (const m of P.models) {
  const bn = trained.find((t) => t.model === m && t.bnLayers > 0)!, no = trained.find((t) => t.model === m && t.bnLayers === 0)!;
  trajectories.push({
    model: nb.prettyModel(m),
    bn: await nb.trajectorySweeps(P, bn, condition, setup.dataset),
    noBn: await nb.trajectorySweeps(P, no, condition, setup.dataset),
  });
}
const prov = nb.studyProvenance({ ...P, seeds: [P.seeds[0]] }, setup.dataset, trained, { noise: `${P.noiseForm} on ${P.noiseTargets.join("+")}, every trajectory snapshot` });
await an.showMarkdown(nb.sweepsNote(trajectories.flatMap((t) => [...t.bn, ...t.noBn]).map((p) => p.sweep)));
"""),
    code("""
for (const t of trajectories) {
  const pts = [...t.bn, ...t.noBn].map((p) => ({
    series: p.variant.label, clean: p.clean, value: p.avgNormalized.mean, lo: p.avgNormalized.lo, hi: p.avgNormalized.hi, epochs: p.epochs,
  }));
  const fig = an.trajectoryChart(pts, {
    title: `${t.model}: noise robustness along training`,
    subtitle: `average normalized accuracy over η ∈ {${P.etas.filter((e) => e > 0).join(", ")}}, ${P.draws} draws; bars: 95% CI`,
    legendTitle: "model", caption: prov,
  });
  await an.showFigure(fig, { files: await an.exportFigure(fig, `05-trajectory-${t.model.toLowerCase().replace(/[^a-z0-9]+/g, "")}`) });
}
const nfPts = trajectories.flatMap((t) => [...t.bn, ...t.noBn]).map((p) => ({
  series: p.variant.label, x: 100 * p.clean, y: 100 * p.nonFiniteShare, lo: NaN, hi: NaN,
}));
const figNaN = an.bandChart(nfPts, {
  title: "Non-finite logits along training", subtitle: "share of test images with NaN/Inf logits, mean over η > 0 and draws",
  xLabel: "clean test accuracy (%) →", yLabel: "↑ images with NaN/Inf logits (%)", yDomain: [0, 100], legendTitle: "model", caption: prov,
});
await an.showFigure(figNaN, { files: await an.exportFigure(figNaN, "05-nonfinite-along-training") });
"""),
    code("""
const pointTable = an.table(trajectories.flatMap((t) => [...t.bn, ...t.noBn]).map((p) => ({
  model: p.variant.label,
  epochs: Number(p.epochs.toFixed(3)),
  "clean acc. (%)": 100 * p.clean,
  "avg. normalized acc. (%)": 100 * p.avgNormalized.mean,
  "95% CI": Number.isFinite(p.avgNormalized.lo) ? `${(100 * p.avgNormalized.lo).toFixed(1)}–${(100 * p.avgNormalized.hi).toFixed(1)}` : "undefined (1 draw)",
  "non-finite logits (%)": 100 * p.nonFiniteShare,
})));
await an.exportTable(pointTable, "05-trajectory-points", { provenance: prov });
await an.showTable(pointTable, { caption: "Every trajectory point", provenance: prov });
await an.showMarkdown(nb.interpretTrajectory(trajectories, {
  ...nb.trustOf(P, setup.dataset), chance: nb.chanceOf(setup.dataset), profile: P.profile, scale: nb.scaleStatement(P), etas: P.etas,
}));
"""),
])


def main():
    out = os.path.join(ROOT, "notebooks")
    os.makedirs(out, exist_ok=True)
    for name, nb in [
        ("01-bn-vs-no-bn.ipynb", NB01),
        ("02-bn-layer-count.ipynb", NB02),
        ("03-where-bn-breaks.ipynb", NB03),
        ("04-cifar100.ipynb", NB04),
        ("05-robustness-over-training.ipynb", NB05),
    ]:
        nbformat.validate(nb)
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        print("wrote", os.path.join("notebooks", name))


if __name__ == "__main__":
    main()
