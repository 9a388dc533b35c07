/** The run manifest: what a notebook run exported and found, for the index page. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { bnCountChart, exportFigure, exportTable } from "../lib/analysis/mod.ts";
import { readRunManifest, RUN_MANIFEST_ENV } from "../lib/notebook/manifest.ts";
import {
  findingLine,
  recordArtifact,
  recordFinding,
  recordParameters,
  showFinding,
} from "../lib/notebook/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";

async function withManifest(fn: (dir: string, path: string | undefined) => Promise<void>, set = true) {
  const dir = await Deno.makeTempDir({ prefix: "noiselab-manifest-" });
  const saved = Deno.env.get(RUN_MANIFEST_ENV);
  const path = set ? join(dir, "nb.manifest.json") : undefined;
  if (path) Deno.env.set(RUN_MANIFEST_ENV, path);
  else Deno.env.delete(RUN_MANIFEST_ENV);
  try {
    await fn(dir, path);
  } finally {
    if (saved === undefined) Deno.env.delete(RUN_MANIFEST_ENV);
    else Deno.env.set(RUN_MANIFEST_ENV, saved);
    await Deno.remove(dir, { recursive: true });
  }
}

const fig = () =>
  bnCountChart([{ bnLayers: 0, eta: 0.1, normalized: 0.9, normalizedLo: 0.8, normalizedHi: 1 }], {
    title: "BN count",
  });

Deno.test("manifest: exportFigure, exportTable, showFinding and recordParameters record into $NOISELAB_RUN_MANIFEST", async () => {
  await withManifest(async (dir, path) => {
    const f = await exportFigure(fig(), "02-bn", { dir, formats: ["svg", "png"] });
    const csv = await exportTable([{ a: 1 }], "02-table", { dir, provenance: "p" });
    await showFinding(
      "**Finding (quick):** BN keeps 68.0% [56.8–79.1] vs 88.8% without, e.g. at η = 0.1. Second sentence.\n\nMore.",
    );
    const line = "Finding (quick): BN keeps 68.0% [56.8–79.1] vs 88.8% without, e.g. at η = 0.1.";
    await recordParameters({ profile: "quick", etas: [0, 0.1] });
    // re-exporting a name replaces its entry
    await exportFigure(fig(), "02-bn", { dir, formats: ["svg"], captioned: false });
    const m = (await readRunManifest(path!))!;
    assert.equal(m.version, 1);
    assert.equal(m.pid, Deno.pid);
    assert.deepEqual(m.artifacts.map((a) => [a.kind, a.name]), [["table", "02-table"], ["figure", "02-bn"]]);
    const figure = m.artifacts[1];
    assert.equal(figure.title, "BN count");
    assert.deepEqual(figure.files, { svg: f.svg, json: f.json });
    assert.deepEqual(m.artifacts[0].files, { csv, provenance: join(dir, "02-table.provenance.json") });
    assert.deepEqual(m.findings, [line]);
    assert.deepEqual(m.parameters, { profile: "quick", etas: [0, 0.1] });
  });
});

Deno.test("manifest: no-op without $NOISELAB_RUN_MANIFEST; concurrent records all land; another process's manifest is replaced", async () => {
  await withManifest(async (dir) => {
    await recordFinding("x");
    await exportTable([{ a: 1 }], "t", { dir });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["t.csv"]);
  }, false);
  await withManifest(async (_dir, path) => {
    await Deno.writeTextFile(
      path!,
      JSON.stringify({ version: 1, pid: -1, started: "x", updated: "x", artifacts: [], findings: ["stale"] }),
    );
    await Promise.all([1, 2, 3, 4, 5].map((i) => recordFinding(`finding ${i}`)));
    await recordFinding("finding 3"); // kept once
    const m = (await readRunManifest(path!))!;
    assert.deepEqual(m.findings, [1, 2, 3, 4, 5].map((i) => `finding ${i}`));
    await assert.rejects(() => recordFinding("  "), NoiselabError);
    await assert.rejects(
      () => recordArtifact({ kind: "plot" as "figure", name: "x", files: { a: "b" } }),
      NoiselabError,
    );
    await assert.rejects(() => recordArtifact({ kind: "table", name: "x", files: {} }), NoiselabError);
    await Deno.writeTextFile(path!, "{not json");
    await assert.rejects(
      () => readRunManifest(path!),
      (e: Error) => e instanceof NoiselabError && e.message.includes(path!),
    );
  });
});

Deno.test("findingLine: first line of text, Markdown stripped, cut after the first sentence", () => {
  assert.equal(
    findingLine("### Finding\n\n**BN hurts** robustness: 68% vs 89%. Then more."),
    "BN hurts robustness: 68% vs 89%.",
  );
  assert.equal(
    findingLine("> _Observed_ (inconclusive), see [the table](t.csv) and `bn_var`!"),
    "Observed (inconclusive), see the table and bn_var!",
  );
  assert.equal(findingLine("- one item without a full stop\n- two"), "one item without a full stop");
  assert.equal(
    findingLine("ResNet-20 vs. VGG-11 at η = 0.1: 93.6% vs 94.6%. Next."),
    "ResNet-20 vs. VGG-11 at η = 0.1: 93.6% vs 94.6%.",
  );
  assert.equal(findingLine("<b>HTML</b> text"), "HTML text");
  assert.equal(findingLine(""), "");
});

Deno.test("verdictSummary: one line of the interpretation's verdicts, per model, for the index page", async () => {
  const { verdictSummary } = await import("../lib/notebook/manifest.ts");
  const md = [
    "### What these numbers say",
    "",
    "Average normalized accuracy = mean over η ∈ {0.05, 0.1}. A finding is stated only for models at ≥ 70%.",
    "",
    "- **ResNet-20**: 68.0% vs 88.8%. **Inconclusive at this scale:** the no-BN model is below 70%. More text.",
    "- **VGG-11**: 81.2% vs 92.6%. **No difference shown:** the intervals overlap at the end of training.",
    "",
    "**Scale:** quick.",
  ].join("\n");
  assert.equal(
    verdictSummary(md),
    "ResNet-20: Inconclusive at this scale: the no-BN model is below 70%. · " +
      "VGG-11: No difference shown: the intervals overlap at the end of training.",
  );
  assert.equal(verdictSummary("no verdict here"), "");
  // the verdict on an indented continuation line of the model's list item
  assert.equal(
    verdictSummary("- **ResNet-20** (72.0% vs 54.7%): numbers.\n  **Inconclusive at this scale:** too weak.\n\nAfter."),
    "ResNet-20: Inconclusive at this scale: too weak.",
  );
  assert.equal(verdictSummary("**Finding:** BN hurts. Details."), "Finding: BN hurts.");
});
