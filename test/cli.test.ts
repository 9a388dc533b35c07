/**
 * The CLI as a user runs it (`deno run -A lib/cli/main.ts ...`): bad input
 * fails with exit code 2, one line naming the parameter/file and no files
 * left; `models --json`; and a tiny end-to-end train-then-noise run on real
 * CIFAR-10 images.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File } from "../lib/util/fs.ts";
import { projectRoot } from "../lib/util/paths.ts";

const MAIN = join(projectRoot, "lib", "cli", "main.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--max-old-space-size=8192", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    cwd: projectRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Files (recursively) under a folder. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) out.push(p + "/", ...listFiles(p));
      else out.push(p);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/** The meaningful stderr lines (backend notices and the tfjs banner are not errors). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    l.trim() && !l.startsWith("[noiselab]") &&
    !/^=+$|TensorFlow\.js in Node\.js|Ignored build scripts|^[│╭╰]/.test(l)
  );
}

/** A tiny training run (seconds). */
const TINY_TRAIN = [
  "train",
  "--model",
  "resnet8",
  "--width",
  "2",
  "--train-size",
  "20",
  "--test-size",
  "20",
  "--epochs",
  "1",
];

/** Every file under a folder with its sha256 (to assert that a failed command changed nothing). */
async function treeState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of listFiles(dir)) {
    out[p] = p.endsWith("/") ? "dir" : await sha256File(p);
  }
  return out;
}

/** Exit 2, exactly one meaningful stderr line matching `re`, nothing on stdout; returns the line. */
function assertBadInput(r: Run, re: RegExp): string {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0], re);
  assert.equal(r.stdout, "");
  return lines[0];
}

const BAD: [string, string[], RegExp][] = [
  ["unknown command", ["frobnicate"], /unknown command 'frobnicate'/],
  ["unknown flag", ["train", "--epoch", "3"], /--epoch: unknown option/],
  ["unknown model", ["train", "--model", "resnet21"], /--model: .*6n\+2.*21/],
  ["unknown model name", ["train", "--model", "alexnet"], /--model: unknown model "alexnet"/],
  ["unknown dataset", ["train", "--dataset", "mnist"], /--dataset: .*mnist/],
  ["bn count too large", ["train", "--model", "resnet20", "--bn", "20"], /--bn: .*19 BN layers/],
  ["epochs 0", ["train", "--epochs", "0"], /--epochs: must be >= 1/],
  ["batch size not a number", ["train", "--batch-size", "big"], /--batch-size: expected a number/],
  ["train size too large", ["train", "--train-size", "50001"], /--train-size: .*50000/],
  ["missing value", ["train", "--lr"], /--lr: needs a value/],
  ["negative eta", ["noise", "--model", "x", "--eta", "0.1,-0.2"], /--eta: .*>= 0.*-0\.2/],
  ["draws 0", ["noise", "--model", "x", "--eta", "0.1", "--draws", "0"], /--draws: .*>= 1/],
  [
    "unknown target",
    ["noise", "--model", "x", "--eta", "0.1", "--targets", "kernels,weights"],
    /--targets: unknown target "weights"/,
  ],
  [
    "unknown noise type",
    ["noise", "--model", "x", "--eta", "0.1", "--form", "pink"],
    /--form: unknown noise type/,
  ],
  [
    "unknown noise type (--noise-type)",
    ["noise", "--model", "x", "--eta", "0.1", "--noise-type", "pink"],
    /--noise-type: unknown noise type "pink"/,
  ],
  [
    "--form and --noise-type both",
    ["noise", "--model", "x", "--eta", "0.1", "--form", "multiplicative", "--noise-type", "additive-std"],
    /--form: give --noise-type or its deprecated alias --form, not both/,
  ],
  [
    "BN re-estimation with BN folding",
    ["noise", "--model", "x", "--eta", "0.1", "--recalibrate-bn", "2", "--fold-bn"],
    /--recalibrate-bn: BN re-estimation cannot be combined with BN folding/,
  ],
  ["missing eta", ["noise", "--model", "x"], /--eta: required/],
  ["no eta > 0", ["noise", "--model", "x", "--eta", "0"], /--eta: needs at least one noise level > 0/],
  [
    "unknown scoring rule",
    ["noise", "--model", "x", "--eta", "0.1", "--scoring", "numpy"],
    /--scoring: unknown scoring rule 'numpy'; use argmax-numpy, nonfinite-wrong/,
  ],
  [
    "unknown stored model",
    ["noise", "--model", "0123456789ab", "--eta", "0.1"],
    /--model: no stored model '0123456789ab'/,
  ],
  ["unknown data set (data)", ["data", "--dataset", "svhn"], /--dataset: .*svhn/],
  // numbers: not a number, NaN, hex (Number() takes '0x1'), a fraction where an integer is needed
  ["eta not a number", ["noise", "--model", "x", "--eta", "abc"], /--eta: expected a number, got 'abc'$/],
  ["eta NaN", ["noise", "--model", "x", "--eta", "0.1,NaN"], /--eta: expected a number, got 'NaN'$/],
  ["eta in hex", ["noise", "--model", "x", "--eta", "0x1"], /--eta: expected a number, got '0x1'$/],
  [
    "draws 1.5",
    ["noise", "--model", "x", "--eta", "0.1", "--draws", "1.5"],
    /--draws: .*integer >= 1, got '?1\.5'?/,
  ],
  [
    "eta given twice",
    ["noise", "--model", "x", "--eta", "0.1", "--eta=0.2"],
    /--eta: given more than once \('0\.1' and '0\.2'\)/,
  ],
  [
    "bn index beyond the model's BN layers",
    // a tiny run, should the check ever be lost (the empty data folder stops it anyway)
    [...TINY_TRAIN, "--bn", "0,99"],
    /--bn: invalid index 99 \(resnet8 has 7 BN layers.*indices 0\.\.6\)/,
  ],
  [
    "fold-bn with a value",
    ["noise", "--model", "x", "--eta", "0.1", "--fold-bn=yes"],
    /--fold-bn: is a switch and takes no value \(write --fold-bn, or --no-fold-bn for off\)/,
  ],
  [
    "fold-bn followed by a stray word",
    ["noise", "--model", "x", "--eta", "0.1", "--fold-bn", "yes"],
    /unexpected argument 'yes'/,
  ],
];

for (const [name, args, re] of BAD) {
  Deno.test(`bad input exits 2 with one clear line, no files: ${name}`, async () => {
    const results = await Deno.makeTempDir({ prefix: "noiselab-cli-" });
    // an empty data folder: a command that got past its checks and started work fails differently
    const data = await Deno.makeTempDir({ prefix: "noiselab-nodata-" });
    try {
      const r = await cli(args, { NOISELAB_RESULTS_DIR: results, NOISELAB_DATA_DIR: data });
      assertBadInput(r, re);
      assert.deepEqual(listFiles(results), []);
      assert.deepEqual(listFiles(data), []);
    } finally {
      await Deno.remove(results, { recursive: true });
      await Deno.remove(data, { recursive: true });
    }
  });
}

Deno.test("stored model: targets that select nothing (--fold-bn, BN targets on a BN-free model) and corrupt model files exit 2 naming the flag/model/file, nothing written", async () => {
  const results = await Deno.makeTempDir({ prefix: "noiselab-cli-store-" });
  const noData = await Deno.makeTempDir({ prefix: "noiselab-nodata-" });
  const copies: string[] = [];
  try {
    const trained = await cli([...TINY_TRAIN, "--json"], { NOISELAB_RESULTS_DIR: results });
    assert.equal(trained.code, 0, trained.stderr);
    const id: string = JSON.parse(trained.stdout).id;
    const state = await treeState(results);

    // BN folding leaves no BN arrays: a target made only of BN parts selects nothing. The check runs
    // before any work: with an empty data folder a command that went on would fail on the data instead.
    const emptied: [string[], RegExp][] = [
      [
        ["--targets", "bn-mean", "--fold-bn"],
        /--targets: bn-mean selects no weight tensor of model \w+ once BN is folded/,
      ],
      [["--fold-bn", "--targets", "kernels,bn-var", "--json"], /--targets: bn-var selects no weight tensor/],
      [
        ["--targets", "bn-affine+bn-mean", "--fold-bn"],
        /--targets: bn-affine\+bn-mean selects no weight tensor/,
      ],
    ];
    for (const [args, re] of emptied) {
      const r = await cli(["noise", "--model", id, "--eta", "0.1", ...args], {
        NOISELAB_RESULTS_DIR: results,
        NOISELAB_DATA_DIR: noData,
      });
      assertBadInput(r, re);
      assert.deepEqual(await treeState(results), state, args.join(" "));
      assert.deepEqual(listFiles(noData), []);
    }

    // BN targets on a model without BatchNorm perturb nothing: exit 2 naming --targets, the model and why,
    // never a normal table of 100% normalized accuracy (issue #9 item 8)
    const twin = await cli([...TINY_TRAIN, "--bn", "none", "--json"], { NOISELAB_RESULTS_DIR: results });
    assert.equal(twin.code, 0, twin.stderr);
    const twinId: string = JSON.parse(twin.stdout).id;
    const twinState = await treeState(results);
    for (const t of ["bn-var", "bn-affine", "bn-mean+bn-var"]) {
      const r = await cli(["noise", "--model", twinId, "--eta", "0.1", "--targets", t], {
        NOISELAB_RESULTS_DIR: results,
        NOISELAB_DATA_DIR: noData,
      });
      const line = assertBadInput(
        r,
        /--targets: \S+ selects no weight tensor of model \w+ \(it has no BatchNorm layer\)/,
      );
      assert.ok(line.includes(`${t} selects no weight tensor of model ${twinId} (`), line);
      assert.deepEqual(await treeState(results), twinState, t);
    }
    // BN re-estimation on a model without BN would re-estimate nothing and say it did: exit 2 naming the flag
    const recal = await cli(["noise", "--model", twinId, "--eta", "0.1", "--recalibrate-bn", "2"], {
      NOISELAB_RESULTS_DIR: results,
      NOISELAB_DATA_DIR: noData,
    });
    assertBadInput(
      recal,
      /--recalibrate-bn: model \w+ has no BatchNorm layer, so there are no BN statistics/,
    );
    assert.deepEqual(await treeState(results), twinState, "--recalibrate-bn");
    await Deno.remove(join(results, "models", twinId), { recursive: true });

    // corrupt copies of the stored model, each in its own results folder
    const modelDir = join(results, "models", id);
    const corruptions: [string, string, (dir: string) => Promise<void>, RegExp][] = [
      [
        "weights.bin cut short",
        "weights.bin",
        async (dir) => {
          const w = join(dir, "weights.bin");
          await Deno.truncate(w, Math.floor((await Deno.stat(w)).size / 2));
        },
        /weights\.bin: \d+ bytes, but model\.json describes \d+ \(truncated or mismatched\)/,
      ],
      [
        "weights.bin missing",
        "weights.bin",
        (dir) => Deno.remove(join(dir, "weights.bin")),
        /weights\.bin: no such file/,
      ],
      [
        "meta.json not JSON",
        "meta.json",
        (dir) => Deno.writeTextFile(join(dir, "meta.json"), '{"id": '),
        /meta\.json: unreadable model metadata/,
      ],
      [
        "model.json not JSON",
        "model.json",
        (dir) => Deno.writeTextFile(join(dir, "model.json"), "{"),
        /model\.json: not a valid model\.json/,
      ],
    ];
    for (const [what, file, corrupt, re] of corruptions) {
      const copy = await Deno.makeTempDir({ prefix: "noiselab-cli-corrupt-" });
      copies.push(copy);
      const dir = join(copy, "models", id);
      await Deno.mkdir(dir, { recursive: true });
      for (const f of ["model.json", "weights.bin", "meta.json"]) {
        await Deno.copyFile(join(modelDir, f), join(dir, f));
      }
      await corrupt(dir);
      const before = await treeState(copy);
      const r = await cli(["noise", "--model", id, "--eta", "0.1", "--draws", "1"], {
        NOISELAB_RESULTS_DIR: copy,
        NOISELAB_DATA_DIR: noData,
      });
      const line = assertBadInput(r, re);
      assert.ok(line.includes(join(dir, file)), `${what}: the line names ${join(dir, file)}: ${line}`);
      assert.deepEqual(await treeState(copy), before, what);
      if (what === "weights.bin cut short") {
        // train finds the same id in the store and must not train over (or load) the broken copy
        const t = await cli([...TINY_TRAIN, "--json"], { NOISELAB_RESULTS_DIR: copy });
        const tline = assertBadInput(t, re);
        assert.ok(tline.includes(join(dir, "weights.bin")), tline);
        assert.deepEqual(await treeState(copy), before, `${what} (train)`);
      }
    }
    assert.deepEqual(await treeState(results), state);
  } finally {
    for (const d of [results, noData, ...copies]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("noise text output: the header names the evaluation fast path that ran, as --json does; no tfjs banner", async () => {
  const results = await Deno.makeTempDir({ prefix: "noiselab-cli-fastpath-" });
  try {
    const env = { NOISELAB_RESULTS_DIR: results };
    const trained = await cli([...TINY_TRAIN, "--json"], env);
    assert.equal(trained.code, 0, trained.stderr);
    const id: string = JSON.parse(trained.stdout).id;
    const noise = (...args: string[]) =>
      cli(["noise", "--model", id, "--eta", "0.1", "--draws", "1", ...args], env);
    const header = (stdout: string) => stdout.split("\n").find((l) => l.startsWith("data: ")) ?? "";
    // a bf16 request where bf16 cannot run (another backend than onednn) is fp32, and the header says so
    const cpu = await noise("--fast-path", "bf16", "--backend", "cpu");
    assert.equal(cpu.code, 0, cpu.stderr);
    assert.match(header(cpu.stdout), /, backend cpu, fast path fp32, scoring argmax-numpy$/);
    assert.match(cpu.stderr, /fastPath "bf16" needs the onednn backend; using fp32/);
    // the model is loaded before initBackend, on tfjs's default cpu backend: no "install tfjs-node" banner
    assert.doesNotMatch(cpu.stderr, /node backend|TensorFlow\.js in Node\.js/);
    // with the default backend: the text names the path --json reports (bf16, or fp32 where the CPU lacks it)
    const text = await noise("--fast-path", "bf16");
    const json = await noise("--fast-path", "bf16", "--json");
    assert.equal(json.code, 0, json.stderr);
    const ran = json.stdout.trim().split("\n").map((l) =>
      JSON.parse(l)
    ).find((o) => o.type === "result").config
      .fastPath;
    assert.ok(ran === "bf16" || ran === "fp32", ran);
    assert.ok(header(text.stdout).includes(`, fast path ${ran}, `), text.stdout);
    assert.doesNotMatch(text.stderr + json.stderr, /node backend|TensorFlow\.js in Node\.js/);
    assert.match(header((await noise()).stdout), /, fast path off, /);
  } finally {
    await Deno.remove(results, { recursive: true }).catch(() => {});
  }
});

Deno.test("missing and corrupt data files: exit 2 naming the file, nothing written", async () => {
  const results = await Deno.makeTempDir({ prefix: "noiselab-cli-" });
  const data = await Deno.makeTempDir({ prefix: "noiselab-data-" });
  const args = [
    "train",
    "--model",
    "resnet8",
    "--width",
    "2",
    "--train-size",
    "20",
    "--test-size",
    "20",
    "--epochs",
    "1",
  ];
  const env = { NOISELAB_RESULTS_DIR: results, NOISELAB_DATA_DIR: data };
  let r = await cli(args, env);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(errorLines(r.stderr).length, 1, r.stderr);
  assert.match(errorLines(r.stderr)[0], /cifar10-jpeg\/SHA256SUMS: missing/);
  // a corrupt archive (right name, wrong bytes): the checksum check names it
  const src = join(projectRoot, "data", "cifar10-jpeg");
  await Deno.mkdir(join(data, "cifar10-jpeg"));
  for (const f of ["SHA256SUMS", "README.md"]) {
    await Deno.copyFile(join(src, f), join(data, "cifar10-jpeg", f));
  }
  for (const f of ["cifar10-train.tar.gz", "cifar10-test.tar.gz"]) {
    await Deno.writeFile(join(data, "cifar10-jpeg", f), new TextEncoder().encode("not a tar.gz"));
  }
  r = await cli(args, env);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(errorLines(r.stderr).length, 1, r.stderr);
  assert.match(errorLines(r.stderr)[0], /cifar10-(train|test)\.tar\.gz/);
  assert.deepEqual(listFiles(results), []);
  await Deno.remove(results, { recursive: true });
  await Deno.remove(data, { recursive: true });
});

Deno.test("models --json: one object per model with name, params, bnLayers", async () => {
  const r = await cli(["models", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const names = rows.map((o) => o.name);
  for (const n of ["resnet20", "resnet44", "vgg16"]) assert.ok(names.includes(n), n);
  const r20 = rows.find((o) => o.name === "resnet20");
  // He et al. 2016 / the paper's table: ResNet-20 has 0.27M parameters and 19 conv+BN pairs
  assert.ok(Math.abs(r20.params - 0.27e6) < 0.005e6, String(r20.params));
  assert.equal(r20.bnLayers, 19);
  for (const o of rows) assert.ok(Number.isInteger(o.params) && Number.isInteger(o.bnLayers));
});

Deno.test("help lists the commands; train help lists every knob", async () => {
  const r = await cli(["help"]);
  assert.equal(r.code, 0);
  for (const c of ["models", "train", "noise", "data", "reproduce"]) {
    assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  }
  const t = await cli(["help", "train"]);
  for (
    const f of ["--train-size", "--weight-decay", "--step-milestones", "--[no-]augment", "--warmup-epochs"]
  ) {
    assert.ok(t.stdout.includes(f), f);
  }
  // a knob with a fixed set of values lists them, from the list the validation uses (its error names it too)
  const { TRAIN_CONFIG_CHOICES } = await import("../lib/train/config.ts");
  const { kebab } = await import("../lib/cli/args.ts");
  for (const [k, allowed] of Object.entries(TRAIN_CONFIG_CHOICES)) {
    const line = t.stdout.split("\n").find((l) => l.trimStart().startsWith(`--${kebab(k)} `));
    assert.ok(line?.endsWith(`; one of ${allowed.join(", ")}`), `${k}: ${line}`);
  }
  assert.match(t.stdout, /--precision +default "fp32"; one of fp32, bf16\n/);
  assertBadInput(
    await cli(["train", "--precision", "fp16"]),
    /--precision: expected one of fp32, bf16, got "fp16"/,
  );
});

Deno.test("commands: one list drives dispatch and help; each has name, summary, usage, run", async () => {
  const { COMMANDS, main } = await import("../lib/cli/main.ts");
  const names = COMMANDS.map((c) => c.name);
  assert.deepEqual(names, [
    "models",
    "train",
    "noise",
    "data",
    "reproduce",
    "plan",
    "worker",
    "slurm",
    "help",
  ]);
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  const run = async (argv: string[]) => {
    printed.length = 0;
    const code = await main(argv);
    return { code, out: printed.join("\n") };
  };
  try {
    const help = await run(["help"]);
    assert.equal(help.code, 0);
    assert.deepEqual(await run([]), help);
    assert.deepEqual(await run(["--help"]), help);
    for (const c of COMMANDS) {
      assert.ok(c.summary && !c.summary.includes("\n"), `${c.name}: one-line summary`);
      assert.ok(help.out.includes(c.summary), `${c.name}: summary listed by help`);
      assert.ok(c.usage.startsWith(`usage: noiselab ${c.name}`), `${c.name}: usage`);
      assert.deepEqual(await run(["help", c.name]), { code: 0, out: c.usage });
      if (c.name !== "help") {
        assert.deepEqual(await run([c.name, "--help"]), { code: 0, out: c.usage }, c.name);
      }
    }
  } finally {
    console.log = log;
  }
  const error = console.error;
  console.error = () => {};
  try {
    assert.equal(await main(["help", "frobnicate"]), 2);
    assert.equal(await main(["frobnicate"]), 2);
  } finally {
    console.error = error;
  }
});

Deno.test("end to end on real CIFAR-10: train learns, stored model is reused, large noise hurts", async () => {
  const results = await Deno.makeTempDir({ prefix: "noiselab-e2e-" });
  // pin the code version: other work on lib/ between the two runs must not change the id here
  const env = { NOISELAB_RESULTS_DIR: results, NOISELAB_LIB_VERSION: "e2e-test" };
  // resnet8 width 8 on 300 training images, 5 epochs: 27-32% test accuracy across seeds on 200 test
  // images (chance 10%; the same run with mismatched labels reached 15%)
  const train = [
    "train",
    "--model",
    "resnet8",
    "--width",
    "8",
    "--train-size",
    "300",
    "--test-size",
    "200",
    "--epochs",
    "5",
    "--lr",
    "0.01",
    "--batch-size",
    "32",
    "--no-augment",
    "--json",
  ];
  const r = await cli(train, env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(r.stdout.trim().split("\n").length, 1, "train --json prints exactly one object");
  assert.ok(out.cleanAccuracy > 0.22, `clean accuracy ${out.cleanAccuracy} is too close to chance`);
  assert.equal(out.loaded, false);
  assert.match(out.id, /^[0-9a-f]{12}$/);
  assert.equal(out.path, join(results, "models", out.id));
  for (const f of ["model.json", "weights.bin", "meta.json"]) {
    assert.ok(Deno.statSync(join(out.path, f)).isFile, f);
  }
  assert.equal(out.provenance.seed, 0);
  assert.equal(out.provenance.trainSize, 300);
  assert.match(out.provenance.sourceLabel, /CIFAR-10/);
  assert.ok(out.provenance.backend.name);
  assert.equal(out.history.length, 5);

  const again = await cli(train, env);
  assert.equal(again.code, 0, again.stderr);
  const out2 = JSON.parse(again.stdout);
  assert.equal(out2.loaded, true);
  assert.equal(out2.id, out.id);
  assert.equal(out2.cleanAccuracy, out.cleanAccuracy);

  const n = await cli([
    "noise",
    "--model",
    out.id,
    "--eta",
    "0,1.5",
    "--draws",
    "3",
    "--targets",
    "kernels",
    "--json",
  ], env);
  assert.equal(n.code, 0, n.stderr);
  const lines = n.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const rows = lines.filter((o) => o.type === "row");
  const summ = lines.filter((o) => o.type === "summary");
  assert.equal(rows.length, 6);
  assert.equal(summ.length, 2);
  assert.deepEqual(lines.slice(0, 6), rows, "rows come first");
  for (const row of rows) {
    for (const k of ["eta", "draw", "target", "accuracy", "normalizedAccuracy"]) assert.ok(k in row, k);
    assert.equal(row.target, "kernels");
  }
  // eta 0 is the clean model: exactly the stored clean accuracy
  for (const row of rows.filter((o) => o.eta === 0)) {
    assert.equal(row.accuracy, out.cleanAccuracy);
    assert.equal(row.normalizedAccuracy, 1);
  }
  const big = summ.find((s) => s.eta === 1.5);
  assert.ok(big.mean < out.cleanAccuracy - 0.1, `eta 1.5 accuracy ${big.mean} vs clean ${out.cleanAccuracy}`);
  // every draw reports its share of non-finite logits rows and the scoring rule (default NumPy's argmax)
  for (const row of rows) {
    assert.equal(row.nonFiniteShare, 0);
    assert.equal(row.scoring, "argmax-numpy");
  }
  for (const q of summ) assert.equal(q.nonFiniteShare, 0);
  const res = lines.find((o) => o.type === "result");
  assert.equal(res.scoring, "argmax-numpy");
  assert.equal(res.provenance.scoring, "argmax-numpy");
  // targets that select no tensor: exit 2 naming --targets, nothing printed on stdout
  const none = await cli(
    ["noise", "--model", out.id, "--eta", "0.1", "--targets", "bn-mean", "--fold-bn", "--json"],
    env,
  );
  assert.equal(none.code, 2, none.stderr);
  assert.match(errorLines(none.stderr).join("\n"), /--targets: bn-mean selects no weight tensor/);
  assert.equal(none.stdout, "");
  // the table shows the non-finite share beside the accuracy; --scoring is passed through
  // (--form: the deprecated alias of --noise-type still works, with a note on stderr)
  const table = await cli(
    [
      "noise",
      "--model",
      out.id,
      "--eta",
      "0.5",
      "--draws",
      "2",
      "--scoring",
      "nonfinite-wrong",
      "--form",
      "additive-std",
    ],
    env,
  );
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /mean acc\s+non-finite/);
  assert.match(table.stdout, /scored by "nonfinite-wrong"/);
  assert.match(table.stdout, /noise type additive-std/);
  assert.match(table.stderr, /--form is deprecated: use --noise-type/);
  await Deno.remove(results, { recursive: true });
});
