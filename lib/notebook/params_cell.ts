/**
 * The knobs of every notebook's `parameters` cell, in the cell's order, with
 * the TypeScript type and the comment the cell shows. The cell itself is
 * derived from this list (`parametersCellSource`), written into the notebooks by
 * `deno run -A tools/sync_parameters_cell.ts`, and checked by
 * test/notebook_params.test.ts; the values come from the profile table
 * (lib/notebook/profiles.ts), whose keys must be exactly these names.
 */
export const PARAMETER_KNOBS: readonly { name: string; type: string; doc?: string }[] = [
  { name: "dataset", type: "string | null", doc: '"cifar10" | "cifar100"' },
  { name: "source", type: "string | null", doc: '"auto" | "jpeg" | "binary"' },
  { name: "models", type: "string[] | null", doc: 'architectures, e.g. ["resnet20", "vgg11"]' },
  {
    name: "width",
    type: "number | Record<string, number> | null",
    doc: "base width: one number, or per model {vgg11: 32} (default ResNet 16, VGG 64)",
  },
  {
    name: "shortcut",
    type: "string | null",
    doc: '"projection" (Keras ResNet v1, the paper\'s) | "A" (He et al., parameter-free)',
  },
  {
    name: "residualInit",
    type: "string | null",
    doc: '"scaled" | "zero": init of a BN-free ResNet branch\'s last conv',
  },
  { name: "bnEpsilon", type: "number | null", doc: "BN epsilon (Keras 1e-3, PyTorch 1e-5)" },
  { name: "bnMomentum", type: "number | null", doc: "BN moving-average momentum (Keras 0.99, PyTorch 0.9)" },
  { name: "trainSize", type: "number | null", doc: "training images (stratified subset of the 50 000)" },
  { name: "testSize", type: "number | null", doc: "test images for clean accuracy and noise sweeps" },
  { name: "epochs", type: "number | null" },
  { name: "batchSize", type: "number | null" },
  { name: "optimizer", type: "string | null", doc: '"sgd" | "adam"' },
  { name: "lr", type: "number | null", doc: "peak learning rate" },
  { name: "lrNoBN", type: "number | null", doc: "peak learning rate of models without BN (null: lr)" },
  { name: "nesterov", type: "boolean | null", doc: "SGD Nesterov momentum" },
  { name: "weightDecay", type: "number | null", doc: "L2 on conv/dense kernels" },
  { name: "schedule", type: "string | null", doc: '"constant" | "step" | "cosine" | "onecycle"' },
  { name: "labelSmoothing", type: "number | null" },
  { name: "augment", type: "boolean | null", doc: "pad-4 crop + flip" },
  {
    name: "precision",
    type: "string | null",
    doc: '"fp32" | "bf16": training arithmetic (bf16 mixed precision where the CPU has it, else fp32)',
  },
  { name: "seeds", type: "number[] | null", doc: "training seeds: each model is trained once per seed" },
  { name: "etas", type: "number[] | null", doc: "noise levels η: σ = η · std(W) per weight tensor" },
  { name: "draws", type: "number | null", doc: "Monte Carlo noise draws per η" },
  { name: "noiseSeed", type: "number | null" },
  {
    name: "noiseTargets",
    type: "string[] | null",
    doc: 'default ["all"]: every stored array, BN statistics included',
  },
  { name: "noiseForm", type: "string | null", doc: '"additive-std" | "additive-max" | "multiplicative"' },
  {
    name: "scoring",
    type: "string | null",
    doc: '"argmax-numpy" (Keras/NumPy: all-NaN logits predict class 0) | "nonfinite-wrong"',
  },
  {
    name: "fastPath",
    type: "string | null",
    doc:
      'sweep evaluation: "off" | "fp32" (BN folded, fused) | "bf16" (fused, bf16 activations where the CPU has them)',
  },
  {
    name: "bnCounts",
    type: "number[] | null",
    doc: "notebook 02: BN layer counts (null: 0, 1, 1/4, 1/2, 3/4, all)",
  },
  { name: "etasShown", type: "number[] | null", doc: "notebook 02: η values in the BN-count chart" },
  {
    name: "recalibrateBatches",
    type: "number | null",
    doc: "notebook 03: batches of 128 training images for BN re-estimation",
  },
  {
    name: "snapshots",
    type: "number | null",
    doc: "trajectory snapshots per training run (notebook 05, matched-accuracy comparisons)",
  },
  {
    name: "minCleanAccuracy",
    type: "number | null",
    doc: "findings are stated only for models at least this accurate (CIFAR-10)",
  },
  { name: "minCleanAccuracy100", type: "number | null", doc: "the same threshold for CIFAR-100" },
  {
    name: "maxAccuracyGap",
    type: "number | null",
    doc: "BN and no-BN twins count as matched within this clean-accuracy gap",
  },
  {
    name: "inferenceTimes",
    type: "number[] | null",
    doc: "notebook 06: seconds after programming (1 h = 3600, 1 day = 86400, 1 year = 31536000)",
  },
  {
    name: "trainNoise",
    type: "number | null",
    doc: "notebook 06: σ/max|W| of the noise-trained twin's training noise (0: no twin)",
  },
  { name: "backend", type: "string | null", doc: '"auto" | "onednn" | "wasm" | "cpu"' },
];

/** Notebook id → its `parameters` cell source, derived from {@link PARAMETER_KNOBS} (default profile "quick"). */
export function parametersCellSource(notebook: string): string {
  const decl = PARAMETER_KNOBS.map((k) =>
    `const ${k.name}: ${k.type} = null;` + (k.doc ? ` // ${k.doc}` : "")
  );
  // the knob names passed to nb.parameters, filled to 100 columns (as Python's textwrap.wrap does)
  const words = (PARAMETER_KNOBS.map((k) => k.name).join(", ") + ",").split(" ");
  const lines: string[] = [];
  let line = "  " + words[0];
  for (const w of words.slice(1)) {
    if (line.length + 1 + w.length <= 100) line += " " + w;
    else (lines.push(line), line = "  " + w);
  }
  lines.push(line);
  return [
    "// Parameters (this cell is tagged `parameters`; `tools/noiselab reproduce -p name=value` overrides it).",
    "// `profile` picks every default from lib/notebook/profiles.ts:",
    '//   "smoke": pipeline check in seconds, models at chance level (numbers meaningless)',
    '//   "quick": a reduced study sized for 2 CPU cores (the main job, about 20 minutes)',
    '//   "standard": full training split, models trained to 90%+, three training seeds (many hours; resumable)',
    `//   "paper": the paper's scale (ResNet-44/VGG-16, 200 epochs: days on a CPU)`,
    "// Every other knob left at null takes the profile's value; set it to override. The values are",
    "// validated and resolved at the end of THIS cell: a bad value stops here, and a later cell that would",
    "// use results of an earlier run of this cell refuses and says what to re-run.",
    'import * as nb from "../lib/notebook/mod.ts";',
    'import * as an from "../lib/analysis/mod.ts";',
    "",
    'const profile: string = "quick";',
    ...decl,
    "",
    `const P = nb.parameters("${notebook}", {`,
    "  profile,",
    ...lines,
    "});",
  ].join("\n");
}
